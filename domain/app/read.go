package app

import (
	"context"
	"errors"
	"slices"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// Reader is the read side's one door to personal data. A read handler
// finds what to show in the read models (ids, codes and sealed bytes), and
// then goes through the Reader for everything that touches accountability
// or keys:
//
//   - Authorize decides with domain.Authorize and records a denial;
//   - Deny records any other refusal (a missing second factor);
//   - Disclose records the access (NEN 7513) and only then hands out a
//     Disclosure, the one way to open sealed data, limited to the subjects
//     the recorded access names; DiscloseTrail does the same for the sealed
//     fields of the audit trail a privacy officer reads;
//   - Record records an access that opens nothing (a case's history).
//
// An access that cannot be recorded fails the read (fail closed): no
// Disclosure, so nothing can be opened. The HTTP server holds a Reader and
// neither the auditor nor the cipher, so a new handler cannot forget the
// record: without it there is nothing to decrypt with.
type Reader struct {
	auditor domain.Auditor
	cipher  domain.Cipher
}

// NewReader returns the Reader that records with auditor and opens with
// cipher (nil: opens nothing). Its fields are its own: a holder of the
// Reader cannot reach either.
func NewReader(auditor domain.Auditor, cipher domain.Cipher) *Reader {
	return &Reader{auditor: auditor, cipher: cipher}
}

// ErrNotDisclosed is the error of opening a subject's sealed data that the
// recorded access does not name: a programming error, answered 500.
var ErrNotDisclosed = errors.New("app: sealed data of a subject the recorded access does not name")

// Authorize decides whether p may do action on t (domain.Authorize). A
// denial is recorded as a denied access (a with outcome "denied" and the
// break-glass reason given) and returned; the recording's own failure is
// joined to it.
func (rd *Reader) Authorize(ctx context.Context, p domain.Principal, action domain.Action, t domain.Target, a domain.Access) (domain.Basis, error) {
	basis, err := domain.Authorize(p, action, t)
	if err != nil {
		a.Outcome, a.Reason = "denied", t.BreakGlassReason
		return "", rd.Deny(ctx, a, err)
	}
	return basis, nil
}

// Deny records a refused access a (its Outcome says why, "denied" when
// empty) and returns cause, joined with the recording's failure if any.
func (rd *Reader) Deny(ctx context.Context, a domain.Access, cause error) error {
	if a.Outcome == "" || a.Outcome == "allowed" {
		a.Outcome = "denied"
	}
	if err := rd.auditor.RecordDenied(ctx, a); err != nil {
		return errors.Join(cause, err)
	}
	return cause
}

// Record records an access that opens no sealed data (fail closed: its
// error fails the read).
func (rd *Reader) Record(ctx context.Context, a domain.Access) error {
	return rd.auditor.RecordAccess(ctx, a)
}

// Disclose records a and returns the Disclosure that opens the sealed data
// of the subjects a names, and no other's. On error nothing was recorded
// and nothing may be shown.
func (rd *Reader) Disclose(ctx context.Context, a domain.Access) (*Disclosure, error) {
	if err := rd.auditor.RecordAccess(ctx, a); err != nil {
		return nil, err
	}
	return &Disclosure{cipher: rd.cipher, subjects: slices.Clone(a.Subjects)}, nil
}

// DiscloseTrail records a, a privacy officer's read of the audit trail or
// of the access reviews, and returns the Disclosure that opens their sealed
// fields (break-glass reasons, on-behalf-of, review notes), which are
// sealed under the key of the subject each record names. It refuses an
// access that is not the privacy officer's (purpose privacy_audit or
// privacy_request).
func (rd *Reader) DiscloseTrail(ctx context.Context, a domain.Access) (*Disclosure, error) {
	if a.Purpose != domain.PurposePrivacyAudit && a.Purpose != domain.PurposePrivacyRequest {
		return nil, &domain.Error{Kind: domain.KindForbidden, Code: "forbidden", Message: "the audit trail is read for a privacy audit or request only"}
	}
	if err := rd.auditor.RecordAccess(ctx, a); err != nil {
		return nil, err
	}
	return &Disclosure{cipher: rd.cipher, trail: true}, nil
}

// Disclosure opens sealed data after its access was recorded. The zero
// value and nil open nothing.
type Disclosure struct {
	cipher   domain.Cipher
	subjects []uuid.UUID
	trail    bool
}

// Open decrypts sealed data of subject. Empty data opens as nil; once the
// subject is erased it returns domain.ErrErased; a subject the recorded
// access does not name is ErrNotDisclosed.
func (d *Disclosure) Open(ctx context.Context, subject uuid.UUID, s domain.Sealed) ([]byte, error) {
	if d == nil || d.cipher == nil || (!d.trail && !slices.Contains(d.subjects, subject)) {
		return nil, ErrNotDisclosed
	}
	if s.Empty() {
		return nil, nil
	}
	return d.cipher.Open(ctx, subject, s)
}
