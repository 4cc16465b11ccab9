package domain

// Small-cell suppression (statistical disclosure control): a published
// figure that describes fewer than k signals could single out a resident
// of a rare category in a small neighbourhood, so it is not published.
//
// Primary suppression hides every count c with 0 < c < k. Secondary
// suppression hides more cells, as Statistics Netherlands (CBS) does in its
// tables: wherever figures add up to a published total (the cells of a row
// to the row's total, the rows of a column to the column's total), a
// relation with exactly one hidden figure would give it back by
// subtraction, so the smallest other figure of that relation (a non-zero
// one first) is hidden too, until every relation has no hidden figure or
// at least two. Zero is published: it describes no one.

// MinSuppressK is the smallest k a network may configure; DefaultSuppressK
// the one it starts with.
const (
	MinSuppressK     = 3
	DefaultSuppressK = 5
)

// SuppressK returns k as configured, never below MinSuppressK (0:
// DefaultSuppressK).
func SuppressK(k int) int {
	switch {
	case k == 0:
		return DefaultSuppressK
	case k < MinSuppressK:
		return MinSuppressK
	}
	return k
}

// Relation says that the figure at index Total is the sum of the figures
// at the indexes Parts (all in one slice of figures).
type Relation struct {
	Total int
	Parts []int
}

// Suppress returns which of values to hide for k (SuppressK applies): the
// primary cells (0 < v < k) and the secondary ones that keep each of them
// from being recovered through the relations by subtraction. It is pure
// and deterministic: among equal candidates it hides the lowest index.
// Indexes outside values in a relation are ignored.
func Suppress(values []int, relations []Relation, k int) []bool {
	k = SuppressK(k)
	hidden := make([]bool, len(values))
	for i, v := range values {
		hidden[i] = v > 0 && v < k
	}
	in := func(i int) bool { return i >= 0 && i < len(values) }
	for changed := true; changed; {
		changed = false
		for _, r := range relations {
			if !in(r.Total) {
				continue
			}
			members := append([]int{r.Total}, r.Parts...)
			n := 0
			for _, i := range members {
				if in(i) && hidden[i] {
					n++
				}
			}
			if n != 1 {
				continue
			}
			// Hide the smallest published part, a non-zero one first; when
			// no part is left, the total.
			best := -1
			for _, i := range r.Parts {
				if !in(i) || hidden[i] {
					continue
				}
				if best < 0 || less(values[i], values[best]) {
					best = i
				}
			}
			if best < 0 {
				best = r.Total
			}
			hidden[best] = true
			changed = true
		}
	}
	return hidden
}

// less orders candidates for secondary suppression: non-zero before zero,
// then smaller first.
func less(a, b int) bool {
	if (a == 0) != (b == 0) {
		return b == 0
	}
	return a < b
}
