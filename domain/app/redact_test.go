package app

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// TestPersonalDataRedactsItself logs and prints the personal-data types
// every way a developer might, and finds no personal data in the output.
func TestPersonalDataRedactsItself(t *testing.T) {
	d := SubjectData{Name: "Johanna Geheim", BirthDate: "1941-03-12", Address: "Dorpsstraat 7", Phone: "0612345678"}
	p := domain.Principal{ID: "anna", Name: "Anna Geheim", Roles: []domain.Role{domain.RoleProfessional}}
	sealed := domain.Sealed("Johanna Geheim in ciphertext")
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("raise", "subject", d, "actor", p, "description", sealed)
	log.Info("nested", slog.Group("g", "subject", d, "sealed", sealed))
	fmt.Fprintf(&buf, "%v %+v %#v %s %v %s %v %+v %#v\n", d, d, d, d, sealed, sealed, p, p, p)
	fmt.Fprint(&buf, d, sealed)
	out := buf.String()
	for _, secret := range []string{"Johanna", "Geheim", "1941-03-12", "Dorpsstraat", "0612345678"} {
		if strings.Contains(out, secret) {
			t.Errorf("output holds %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, `"id":"anna"`) {
		t.Errorf("the principal's id should be logged:\n%s", out)
	}
}
