package httpapi

import (
	"context"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// NopAuditor records nothing; for tests of other concerns only.
type NopAuditor struct{}

func (NopAuditor) RecordAccess(context.Context, domain.Access) error { return nil }
func (NopAuditor) RecordDenied(context.Context, domain.Access) error { return nil }
