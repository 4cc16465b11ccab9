package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/adapters/clusterkeys"
	"github.com/buurtsignaal/buurtsignaal/adapters/keystore"
	"github.com/buurtsignaal/buurtsignaal/adapters/kurrentdb/kurrenttest"
)

// replicaEnv is the environment of a replica named name on the KurrentDB
// (test) server at url, with the replicas' shared master key.
func replicaEnv(url, master, name string) map[string]string {
	return map[string]string{"BUURTSIGNAAL_STORE": url, "BUURTSIGNAAL_MASTER_KEY": master, "BUURTSIGNAAL_REPLICA": name}
}

func newMasterKey(t *testing.T) string {
	t.Helper()
	m, err := keystore.NewMasterKeyBase64()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestReplicasOnKurrentDBServeEveryResident runs two replicas on one
// KurrentDB (test) server, each with its own data directory: a resident
// raised through A is decrypted and matched through B, and when B erases
// the resident, A answers erased within a second.
func TestReplicasOnKurrentDBServeEveryResident(t *testing.T) {
	srv, master := kurrenttest.Start(t), newMasterKey(t)
	a := startServer(t, "", replicaEnv(srv.URL(), master, "a"))
	b := startServer(t, "", replicaEnv(srv.URL(), master, "b"))

	raised := a.must(201, a.do("POST", "/v1/signals", "carla", raiseBody(secretName)), "raise on A")
	sig, subject := "/v1/signals/"+raised.str("id"), a.subjectOf(raised.str("id"))
	a.must(200, a.do("POST", sig+"/handover", "carla", map[string]any{"team_id": "team-a"}), "handover on A")
	acc := a.must(200, a.do("POST", sig+"/accept", "anna", nil), "accept on A")

	got := b.must(200, b.do("GET", sig+"?min_position="+fmt.Sprint(acc.num("position")), "anna", nil), "read on B")
	if subj, _ := got.body["subject"].(map[string]any); subj["name"] != secretName || got.str("description") != secretDesc {
		t.Fatalf("B does not decrypt the resident raised on A: %s", got.raw)
	}
	again := b.must(201, b.do("POST", "/v1/signals", "anna", raiseBody("johanna TESTPERSOON geheim")), "raise about the same resident on B")
	if again.str("subject_id") != subject || !strings.Contains(string(again.raw), raised.str("id")) {
		t.Fatalf("B does not match the resident raised on A: %s", again.raw)
	}

	b.must(200, b.do("POST", "/v1/subjects/"+subject+"/erasure", "hanna", map[string]any{"reason": "verzoek", "request_ref": "AVG-17"}), "erasure on B")
	erased := time.Now()
	for {
		got := a.must(200, a.do("GET", sig, "anna", nil), "read on A after the erasure")
		if subj, _ := got.body["subject"].(map[string]any); subj["erased"] == true && subj["name"] == nil && got.str("description") == "" {
			t.Logf("A answered erased %v after the erasure on B", time.Since(erased))
			break
		}
		if time.Since(erased) > time.Second {
			t.Fatalf("A still shows the resident 1 s after the erasure on B: %s", got.raw)
		}
		time.Sleep(10 * time.Millisecond)
	}
	found := a.must(200, a.do("POST", "/v1/subjects/search", "hanna", map[string]any{"name": secretName, "birth_date": "1941-03-12"}), "search on A")
	if strings.Contains(string(found.raw), subject) {
		t.Fatalf("A still finds the resident erased on B: %s", found.raw)
	}
}

func runCmd(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut, func(k string) string { return env[k] })
	return out.String(), err
}

// erasedInCluster asks the cluster whether the subject is erased.
func erasedInCluster(t *testing.T, url, master string, id uuid.UUID) bool {
	t.Helper()
	m, err := keystore.MasterKeyFromEnv(master)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := clusterkeys.Open(context.Background(), url, m, clusterkeys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	erased, err := ks.Erased(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return erased
}

// TestErasuresApplyToTheCluster is the restore of a KurrentDB backup older
// than some erasures: the cluster has keys of subjects that erased-subjects
// files list. `erasures apply` with every replica's file erases them (and
// does nothing the second time), and a replica applies its own file when
// it starts.
func TestErasuresApplyToTheCluster(t *testing.T) {
	srv, master := kurrenttest.Start(t), newMasterKey(t)
	dataDir := t.TempDir()
	s := startServer(t, dataDir, replicaEnv(srv.URL(), master, "a"))
	first := uuid.MustParse(s.subjectOf(s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody("Testpersoon Een")), "raise").str("id")))
	second := uuid.MustParse(s.subjectOf(s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody("Testpersoon Twee")), "raise").str("id")))
	s.stop()
	if erasedInCluster(t, srv.URL(), master, first) {
		t.Fatal("erased before the test erased it")
	}

	// Another replica's file lists the first subject.
	otherFile := filepath.Join(t.TempDir(), "erased-subjects")
	if err := os.WriteFile(otherFile, []byte(first.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := replicaEnv(srv.URL(), master, "ops")
	env["BUURTSIGNAAL_DATA_DIR"] = t.TempDir()
	out, err := runCmd(t, env, "erasures", "apply", otherFile)
	if err != nil || !strings.Contains(out, "applied 1 erasures from 2 erased-subjects files") {
		t.Fatalf("erasures apply: %q, %v", out, err)
	}
	if !erasedInCluster(t, srv.URL(), master, first) {
		t.Fatal("erasures apply did not erase the listed subject")
	}
	if out, err := runCmd(t, env, "erasures", "apply", otherFile); err != nil || !strings.Contains(out, "applied 0 erasures") {
		t.Fatalf("erasures apply again: %q, %v", out, err)
	}

	// The replica's own file lists the second: its next start erases it.
	if err := os.WriteFile(erasedFile(Config{DataDir: dataDir}), []byte(second.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	startServer(t, dataDir, replicaEnv(srv.URL(), master, "a")).stop()
	if !erasedInCluster(t, srv.URL(), master, second) {
		t.Fatal("the replica's start did not apply its erased-subjects file")
	}
}

// `erasures scavenge` and --scavenge-interval ask every KurrentDB node to
// scavenge; the interval does so only after an erasure.
func TestScavengesAreRequested(t *testing.T) {
	srv, master := kurrenttest.Start(t), newMasterKey(t)
	env := replicaEnv(srv.URL(), master, "ops")
	env["BUURTSIGNAAL_DATA_DIR"] = t.TempDir()
	out, err := runCmd(t, env, "erasures", "scavenge")
	if err != nil || !strings.Contains(out, "(leader): Started") || len(srv.Scavenges()) != 1 {
		t.Fatalf("erasures scavenge: %q, %v; %d requests", out, err, len(srv.Scavenges()))
	}
	if _, err := runCmd(t, map[string]string{"BUURTSIGNAAL_DATA_DIR": t.TempDir()}, "erasures", "scavenge"); err == nil {
		t.Fatal("scavenge of the embedded store: no error")
	}

	renv := replicaEnv(srv.URL(), master, "a")
	renv["BUURTSIGNAAL_SCAVENGE_INTERVAL"] = "20ms"
	s := startServer(t, "", renv)
	time.Sleep(200 * time.Millisecond)
	if n := len(srv.Scavenges()); n != 1 {
		t.Fatalf("%d scavenges requested without an erasure, want none more", n-1)
	}
	subject := s.subjectOf(s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody(secretName)), "raise").str("id"))
	s.must(200, s.do("POST", "/v1/subjects/"+subject+"/erasure", "hanna", map[string]any{"reason": "verzoek", "request_ref": "AVG-18"}), "erasure")
	deadline := time.Now().Add(5 * time.Second)
	for len(srv.Scavenges()) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no scavenge requested after the erasure")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
