// Buurtsignaal console: small keyboard help, no more. In a list of cases
// (a table with class nav-rows), the arrow keys move from a row's link to
// the next or previous row's. Everything works without it.
document.addEventListener('keydown', function (e) {
  if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
  var a = document.activeElement;
  if (!a || a.tagName !== 'A') return;
  var row = a.closest('table.nav-rows tbody tr');
  if (!row) return;
  var next = e.key === 'ArrowDown' ? row.nextElementSibling : row.previousElementSibling;
  var link = next && next.querySelector('a');
  if (link) {
    link.focus();
    e.preventDefault();
  }
});
