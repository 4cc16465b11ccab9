package httpapi

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// Access is one read of personal data (or a denied attempt), with the fields
// NEN 7513 asks for. It holds ids only.
type Access struct {
	At               time.Time
	ActorID          string
	ActorRole        string
	OnBehalfOf       string
	Action           string // read, export, search, ...
	View             string // the route pattern: which data categories
	Purpose          string
	Basis            domain.Basis
	BreakGlassReason string
	Subjects         []uuid.UUID
	Signals          []uuid.UUID
	Outcome          string // allowed, denied
	ClientAddr       string
	RequestID        string
	Network          string
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
