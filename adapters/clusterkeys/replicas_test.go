package clusterkeys

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/adapters/keystore"
	"github.com/buurtsignaal/buurtsignaal/adapters/kurrentdb/kurrenttest"
	"github.com/buurtsignaal/buurtsignaal/domain"
)

// reporter is the part of testing.T the replica scenario reports through,
// so a test can also run it where it must fail and look at what it says.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
}

// replicaScenario is issue 17's promise, "every replica serves every
// resident", on two replicas' key stores a and b: a resident registered
// through A is decrypted and matched through B at once, and an erasure
// through B reaches A within a second, also where A had the key cached.
func replicaScenario(ctx context.Context, r reporter, a, b domain.KeyStore) {
	r.Helper()
	name, born := "Testpersoon Gedeeld "+uuid.NewString()[:8], "1941-03-12"
	id := uuid.New()
	ct, err := a.Seal(ctx, id, []byte("gegevens van de bewoner"))
	if err != nil {
		r.Errorf("A: seal: %v", err)
		return
	}
	if err := a.Put(ctx, "net", a.BlindIndex().Token(name, born), id); err != nil {
		r.Errorf("A: put: %v", err)
		return
	}
	if a.BlindIndex().Token(name, born) != b.BlindIndex().Token(name, born) {
		r.Errorf("the replicas' blind index keys differ: a resident's token on A is another on B")
	}
	if got, ok, err := b.Find(ctx, "net", b.BlindIndex().Token(name, born)); err != nil || !ok || got != id {
		r.Errorf("B does not match the resident registered on A: find = %v, %v, %v", got, ok, err)
	}
	if pt, err := b.Open(ctx, id, ct); err != nil || string(pt) != "gegevens van de bewoner" {
		r.Errorf("B cannot decrypt the resident registered on A: %v", err)
	}
	if _, err := a.Open(ctx, id, ct); err != nil { // A has the key cached now
		r.Errorf("A: open: %v", err)
		return
	}
	if err := b.Shred(ctx, id); err != nil {
		r.Errorf("B: shred: %v", err)
		return
	}
	erasedAt := time.Now()
	if erased, err := a.Erased(ctx, id); err != nil || !erased {
		r.Errorf("A does not know the resident erased on B: erased = %v, %v", erased, err)
	}
	if _, ok, err := a.Find(ctx, "net", a.BlindIndex().Token(name, born)); err != nil || ok {
		r.Errorf("A still matches the resident erased on B: %v, %v", ok, err)
	}
	for {
		_, err := a.Open(ctx, id, ct)
		if errors.Is(err, domain.ErrErased) {
			break
		}
		if time.Since(erasedAt) > time.Second {
			r.Errorf("A still decrypts the resident 1 s after the erasure on B (open: %v)", err)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestReplicasShareKeysAndErasures runs the scenario on two replicas of the
// cluster store on one KurrentDB (test) server. With
// BUURTSIGNAAL_TEST_LOCAL_KEYSTORES=1 it runs on a local key store per
// replica instead, as the server had before the cluster store, and fails:
// that is the evidence that the shared store is what makes it pass.
func TestReplicasShareKeysAndErasures(t *testing.T) {
	var a, b domain.KeyStore
	if os.Getenv("BUURTSIGNAAL_TEST_LOCAL_KEYSTORES") == "1" {
		a, b = localReplicas(t)
	} else {
		srv, m := kurrenttest.Start(t), newMaster(t)
		a, b = open(t, srv.URL(), m, testOpts), open(t, srv.URL(), m, testOpts)
	}
	replicaScenario(ctxT(t), t, a, b)
}

// localReplicas opens a local key store per replica, under one master key.
func localReplicas(t *testing.T) (domain.KeyStore, domain.KeyStore) {
	t.Helper()
	m := newMaster(t)
	var out [2]domain.KeyStore
	for i := range out {
		s, err := keystore.Open(filepath.Join(t.TempDir(), fmt.Sprint("replica-", i)), m, keystore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		out[i] = s
	}
	return out[0], out[1]
}

// recorder collects what a scenario reports.
type recorder struct{ failures []string }

func (*recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

// The same scenario on a local key store per replica fails on every
// promise: B neither matches nor decrypts what A registered, and A never
// learns of B's erasure.
func TestLocalKeyStoresPerReplicaDoNotShare(t *testing.T) {
	a, b := localReplicas(t)
	var r recorder
	replicaScenario(ctxT(t), &r, a, b)
	for _, f := range r.failures {
		t.Log(f)
	}
	if len(r.failures) < 4 {
		t.Fatalf("the scenario found %d failures on local stores per replica, want at least 4", len(r.failures))
	}
}
