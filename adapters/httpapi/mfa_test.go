package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/app"
)

type fakeAuth map[string]domain.Principal

func (f fakeAuth) Authenticate(_ context.Context, token string) (domain.Principal, error) {
	p, ok := f[token]
	if !ok {
		return domain.Principal{}, &domain.Error{Kind: domain.KindUnauthenticated, Code: "invalid_token", Message: "no"}
	}
	return p, nil
}

// deniedLog keeps the denials it is given.
type deniedLog struct {
	NopAuditor
	denied []domain.Access
}

func (d *deniedLog) RecordDenied(_ context.Context, a domain.Access) error {
	d.denied = append(d.denied, a)
	return nil
}

// TestPrivacyEndpointsRequireMFA: with RequireMFA (the default in serve), a
// privacy officer signed in with one factor is refused, and the refusal is
// recorded; with two factors the officer is served.
func TestPrivacyEndpointsRequireMFA(t *testing.T) {
	officer := domain.Principal{ID: "hanna", Roles: []domain.Role{domain.RolePrivacyOfficer}, Network: "net"}
	strong := officer
	strong.MFA = true
	log := &deniedLog{}
	s := New(Deps{
		Log:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		Auth: fakeAuth{"weak": officer, "strong": strong}, RequireMFA: true, Reader: app.NewReader(log, nil),
		Verify: func(context.Context) (VerifyReport, error) { return VerifyReport{OK: true, Problems: []string{}}, nil },
	})
	for _, tt := range []struct {
		token string
		want  int
		code  string
	}{{"weak", http.StatusForbidden, "mfa_required"}, {"strong", http.StatusOK, ""}} {
		req := httptest.NewRequest(http.MethodGet, "/v1/audit/verify", nil)
		req.Header.Set("Authorization", "Bearer "+tt.token)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != tt.want {
			t.Fatalf("%s: status %d, want %d: %s", tt.token, rec.Code, tt.want, rec.Body)
		}
		if tt.code != "" {
			var p Problem
			_ = json.Unmarshal(rec.Body.Bytes(), &p)
			if p.Code != tt.code {
				t.Fatalf("%s: problem code %q", tt.token, p.Code)
			}
		}
	}
	if len(log.denied) != 1 || log.denied[0].ActorID != "hanna" || log.denied[0].Outcome != "denied_mfa" {
		t.Errorf("the MFA refusal was recorded as %+v, want one denied_mfa record", log.denied)
	}
}
