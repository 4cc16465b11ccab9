package httpapi

import (
	"context"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// Access is one read of personal data (or a denied attempt): the access
// record NEN 7513 asks for (ids only), and a break-glass reason in clear that
// the auditor seals into the record under the first subject's key.
type Access struct {
	domain.AccessRecord
	Reason string
}

// Auditor records accesses. The server calls RecordAccess before any personal
// data leaves it and fails the request when it returns an error (fail closed).
// This is the one hook where the audit trail plugs in.
type Auditor interface {
	RecordAccess(ctx context.Context, a Access) error
	RecordDenied(ctx context.Context, a Access) error
}

// NopAuditor records nothing; for tests of other concerns only.
type NopAuditor struct{}

func (NopAuditor) RecordAccess(context.Context, Access) error { return nil }
func (NopAuditor) RecordDenied(context.Context, Access) error { return nil }
