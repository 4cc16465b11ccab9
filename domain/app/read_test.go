package app_test

import (
	"context"
	"errors"
	"maps"
	"reflect"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/app"
)

// recorder is an auditor that keeps what it records, or fails.
type recorder struct {
	fail            bool
	allowed, denied []domain.Access
}

var errAuditDown = errors.New("audit log unavailable")

func (r *recorder) RecordAccess(_ context.Context, a domain.Access) error {
	if r.fail {
		return errAuditDown
	}
	r.allowed = append(r.allowed, a)
	return nil
}

func (r *recorder) RecordDenied(_ context.Context, a domain.Access) error {
	if r.fail {
		return errAuditDown
	}
	r.denied = append(r.denied, a)
	return nil
}

// plainCipher "opens" by returning the bytes, and counts the opens.
type plainCipher struct {
	domain.Cipher
	opened int
}

func (c *plainCipher) Open(_ context.Context, _ uuid.UUID, b []byte) ([]byte, error) {
	c.opened++
	return b, nil
}

// TestReaderFailsClosed walks every method of the Reader: with an auditor
// that cannot record, none gives anything to open, each fails, and the
// cipher is never called. A method added to the Reader without a row here
// fails the test.
func TestReaderFailsClosed(t *testing.T) {
	ctx := context.Background()
	subject := uuid.New()
	access := domain.Access{AccessRecord: domain.AccessRecord{ActorID: "po", Network: "n", Subjects: []uuid.UUID{subject},
		Purpose: domain.PurposePrivacyAudit, Outcome: "allowed"}}
	denial := errors.New("refused")
	methods := map[string]func(*app.Reader) (*app.Disclosure, error){
		"Disclose":      func(rd *app.Reader) (*app.Disclosure, error) { return rd.Disclose(ctx, access) },
		"DiscloseTrail": func(rd *app.Reader) (*app.Disclosure, error) { return rd.DiscloseTrail(ctx, access) },
		"Record":        func(rd *app.Reader) (*app.Disclosure, error) { return nil, rd.Record(ctx, access) },
		"Deny":          func(rd *app.Reader) (*app.Disclosure, error) { return nil, rd.Deny(ctx, access, denial) },
		"Authorize": func(rd *app.Reader) (*app.Disclosure, error) {
			// A coordinator may not read a case: the denial is recorded.
			p := domain.Principal{ID: "co", Network: "n", Roles: []domain.Role{domain.RoleCoordinator}}
			_, err := rd.Authorize(ctx, p, domain.ActReadCase, domain.Target{Network: "n", Team: "t"}, access)
			return nil, err
		},
	}
	var names []string
	for i := range reflect.TypeFor[*app.Reader]().NumMethod() {
		names = append(names, reflect.TypeFor[*app.Reader]().Method(i).Name)
	}
	if diff := cmp.Diff(slices.Sorted(maps.Keys(methods)), names); diff != "" {
		t.Fatalf("the Reader's methods and the rows of this test differ (-rows +methods):\n%s", diff)
	}
	for name, call := range methods {
		t.Run(name, func(t *testing.T) {
			cipher := &plainCipher{}
			rd := app.NewReader(&recorder{fail: true}, cipher)
			d, err := call(rd)
			if !errors.Is(err, errAuditDown) {
				t.Errorf("err = %v, want the auditor's failure", err)
			}
			if _, oerr := d.Open(ctx, subject, domain.Sealed("x")); !errors.Is(oerr, app.ErrNotDisclosed) {
				t.Errorf("something opens after a failed record: %v", oerr)
			}
			if cipher.opened != 0 {
				t.Errorf("the cipher opened %d times", cipher.opened)
			}
		})
	}
}

// TestDisclosureOpensWhatWasRecorded: a disclosure opens the subjects its
// recorded access names and no other; the trail's opens the sealed fields
// of any record, and only for a privacy officer's purpose.
func TestDisclosureOpensWhatWasRecorded(t *testing.T) {
	ctx := context.Background()
	named, other := uuid.New(), uuid.New()
	for _, tc := range []struct {
		name    string
		purpose string
		trail   bool
		subject uuid.UUID
		want    error
	}{
		{"the named subject", domain.PurposeCare, false, named, nil},
		{"another subject", domain.PurposeCare, false, other, app.ErrNotDisclosed},
		{"the trail, a named subject", domain.PurposePrivacyAudit, true, named, nil},
		{"the trail, another record's subject", domain.PurposePrivacyRequest, true, other, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			audit, cipher := &recorder{}, &plainCipher{}
			rd := app.NewReader(audit, cipher)
			a := domain.Access{AccessRecord: domain.AccessRecord{Subjects: []uuid.UUID{named}, Purpose: tc.purpose}}
			disclose := rd.Disclose
			if tc.trail {
				disclose = rd.DiscloseTrail
			}
			d, err := disclose(ctx, a)
			if err != nil {
				t.Fatal(err)
			}
			got, err := d.Open(ctx, tc.subject, domain.Sealed("sealed"))
			if !errors.Is(err, tc.want) {
				t.Fatalf("open: %v, want %v", err, tc.want)
			}
			if tc.want == nil && string(got) != "sealed" {
				t.Errorf("opened %q", got)
			}
			if len(audit.allowed) != 1 {
				t.Errorf("%d accesses recorded, want 1", len(audit.allowed))
			}
		})
	}
	audit := &recorder{}
	rd := app.NewReader(audit, &plainCipher{})
	if _, err := rd.DiscloseTrail(ctx, domain.Access{AccessRecord: domain.AccessRecord{Purpose: domain.PurposeCare}}); err == nil || len(audit.allowed) != 0 {
		t.Errorf("the trail opens for care: %v, %d recorded", err, len(audit.allowed))
	}
	if _, err := rd.Authorize(ctx, domain.Principal{ID: "co", Network: "n", Roles: []domain.Role{domain.RoleCoordinator}},
		domain.ActReadCase, domain.Target{Network: "n", Team: "t", BreakGlassReason: "curious"}, domain.Access{}); err == nil ||
		len(audit.denied) != 1 || audit.denied[0].Outcome != "denied" || audit.denied[0].Reason != "curious" {
		t.Errorf("a denied read: %v, recorded %+v", err, audit.denied)
	}
}
