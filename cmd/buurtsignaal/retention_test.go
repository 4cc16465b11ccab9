package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/app"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// TestRetentionSweep runs the sweep on the wired system as the clock moves:
// a withdrawn signal's subject is erased after six months, a closed case's
// after two years, an open one's never; each erasure is an event.
func TestRetentionSweep(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	cfg, _, err := loadConfig("test", nil, func(k string) string {
		return map[string]string{"BUURTSIGNAAL_DATA_DIR": t.TempDir(), "BUURTSIGNAAL_TOKENS_FILE": writeTokens(t, t.TempDir())}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	sys, err := openSystem(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), c.now, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	stop, err := sys.startProjections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	who := func(id string) app.Request {
		for _, p := range sys.tokens.Principals() {
			if p.ID == id {
				return app.Request{Actor: p, RequestID: "t"}
			}
		}
		t.Fatalf("no principal %s", id)
		return app.Request{}
	}
	raise := func(name string) (string, string) {
		res, err := sys.app.Raise(ctx, who("carla"), app.RaiseInput{Subject: app.SubjectData{Name: name}, Neighbourhood: "n",
			Categories: []string{"debt"}, Urgency: "normal", Consent: "informed", Description: "d"})
		if err != nil {
			t.Fatal(err)
		}
		return res.ID, res.SubjectID.String()
	}
	step := func(by, id string, build func(app.Sealer) (domain.Command, error)) {
		t.Helper()
		if _, err := sys.app.Execute(ctx, who(by), mustUUID(t, id), func(_ domain.Signal, seal app.Sealer) (domain.Command, error) { return build(seal) }); err != nil {
			t.Fatal(err)
		}
	}
	withdrawn, withdrawnSubj := raise("Een Persoon")
	step("carla", withdrawn, func(seal app.Sealer) (domain.Command, error) {
		r, err := seal("dubbel")
		return domain.WithdrawSignal{Reason: r}, err
	})
	closedSig, closedSubj := raise("Twee Persoon")
	if _, err := sys.app.HandOver(ctx, who("carla"), mustUUID(t, closedSig), "team-a", ""); err != nil {
		t.Fatal(err)
	}
	step("anna", closedSig, func(app.Sealer) (domain.Command, error) { return domain.AcceptHandover{}, nil })
	step("anna", closedSig, func(app.Sealer) (domain.Command, error) { return domain.CloseCase{Outcome: "resolved"}, nil })
	_, openSubj := raise("Drie Persoon")
	head, _ := sys.store.Head(ctx)
	if err := sys.runner.WaitFor(ctx, head); err != nil {
		t.Fatal(err)
	}
	sweep := func(at time.Time) map[string]bool {
		t.Helper()
		c.set(at)
		ids, err := sys.sweep(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		head, _ := sys.store.Head(ctx)
		if err := sys.runner.WaitFor(ctx, head); err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, id := range ids {
			out[id.String()] = true
		}
		return out
	}
	if got := sweep(c.now().AddDate(0, 5, 0)); len(got) != 0 {
		t.Fatalf("after five months: %v", got)
	}
	if got := sweep(time.Date(2026, 9, 15, 0, 0, 0, 0, time.UTC)); !got[withdrawnSubj] || len(got) != 1 {
		t.Fatalf("after six months: %v", got)
	}
	if erased, _ := sys.keys.Erased(ctx, mustUUID(t, withdrawnSubj)); !erased {
		t.Fatal("the withdrawn signal's subject key is still there")
	}
	if got := sweep(time.Date(2028, 3, 10, 0, 0, 0, 0, time.UTC)); !got[closedSubj] || got[openSubj] || len(got) != 1 {
		t.Fatalf("after two years: %v", got)
	}
	var basis string
	sys.runner.Read(func() {
		if s, ok := sys.subjects.Get(mustUUID(t, closedSubj)); !ok || !s.Erased {
			t.Fatal("no SubjectErased projected")
		}
	})
	recs, err := sys.store.ReadStream(ctx, "subject-"+closedSubj, eventlog.Forwards, 0, 10)
	if err != nil || len(recs) != 2 {
		t.Fatalf("subject stream: %d events, %v", len(recs), err)
	}
	if e, err := sys.reg.Decode(recs[1].Type, recs[1].Data); err == nil {
		if er, ok := e.(domain.SubjectErased); ok {
			basis = er.Basis
		}
	}
	if basis != "retention" {
		t.Fatalf("erasure basis %q", basis)
	}
}

func mustUUID(t *testing.T, s string) uuid.UUID {
	t.Helper()
	id, err := uuid.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
