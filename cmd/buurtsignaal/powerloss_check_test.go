package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/buurtsignaal/buurtsignaal/adapters/backup"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/adapters/audit"
	"github.com/buurtsignaal/buurtsignaal/adapters/durablefs/crashfs"
	"github.com/buurtsignaal/buurtsignaal/adapters/keystore"
	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
	"github.com/buurtsignaal/buurtsignaal/projections"
)

// reopenAndCheck starts the server on what the last cut left, checks it and
// returns it running. After a partial cut (unsynced blocks and directory
// entries kept at random, in no order) the stores may refuse to open, with
// an error: then it returns nil and the life starts over on an empty disk.
func (l *life) reopenAndCheck() *plServer {
	t := l.t
	c := l.cut
	l.cut = nil
	l.cuts++
	l.history = append(l.history, fmt.Sprintf("%s at %s", c.mode, c.op))
	l.fs = c.fs
	l.must.addAll(c.acked)
	l.tally.acked += c.acked.len()
	l.signals, l.erased = c.signals, c.erased
	srv, err := l.start(l.fs)
	if err != nil && c.mode == crashfs.Partial {
		t.Logf("after a %s at %s (cut %d, %s): the stores refuse to open: %v", c.mode, c.op, l.cuts, c.target, err)
		l.tally.refused++
		l.tally.acked -= c.acked.len() // not checked
		l.startOver()
		return nil
	}
	if err != nil {
		t.Fatalf("after a %s at %s (cut %d, %s): the server does not open: %v", c.mode, c.op, l.cuts, c.target, err)
	}
	for _, problem := range l.check(srv) {
		t.Errorf("after a %s at %s (cut %d, %s): %s", c.mode, c.op, l.cuts, c.target, problem)
	}
	return srv
}

// lose counts an acknowledged operation as lost, once.
func (l *life) lose(key string) {
	if !l.checked[key] {
		l.checked[key] = true
		l.tally.lost++
	}
}

// check returns what is wrong with the reopened server, before it served
// anything, against everything acknowledged before the cuts.
func (l *life) check(srv *plServer) []string {
	ctx := context.Background()
	sys := srv.sys
	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	head, err := sys.store.Head(ctx)
	if err != nil {
		return []string{fmt.Sprintf("head: %v", err)}
	}
	// The projections the server opened, against projections rebuilt from
	// the log: first, before anything else is written.
	if err := sys.runner.WaitFor(ctx, head); err != nil {
		fail("projections: %v", err)
	} else if diff := cmp.Diff(projectionState(sys), l.rebuilt(sys), cmp.Exporter(func(reflect.Type) bool { return true })); diff != "" {
		fail("the projections differ from the ones rebuilt from the log (-opened +rebuilt):\n%s", diff)
	}

	// The whole log: every record's checksum is checked on the way.
	var log []eventlog.RecordedEvent
	for after := uint64(0); ; {
		recs, err := sys.store.ReadAll(ctx, after, 1000)
		if err != nil {
			return append(problems, fmt.Sprintf("read the log: %v", err))
		}
		if len(recs) == 0 {
			break
		}
		log = append(log, recs...)
		after = recs[len(recs)-1].Position
	}
	streams := map[string]int{}
	for _, re := range log {
		streams[re.StreamID]++
	}

	// Every acknowledged command's events.
	for _, c := range l.must.commands {
		if streams[c.stream] < c.version || head < c.position {
			l.lose("command " + c.stream + fmt.Sprint(c.version))
			fail("an acknowledged %s is lost: its stream has %d events, the answer said version %d (head %d, position %d)", c.what, streams[c.stream], c.version, head, c.position)
		}
	}

	// Every read that returned personal data has its access record, and
	// each audit chain's times never go back.
	recorded := map[string]bool{}
	last := map[string]eventlog.RecordedEvent{}
	for _, re := range log {
		if !strings.HasPrefix(re.StreamID, domain.AuditCategory+"-") {
			continue
		}
		recorded[re.Metadata.RequestID] = true
		if prev, ok := last[re.StreamID]; ok && re.Metadata.OccurredAt.Before(prev.Metadata.OccurredAt) {
			fail("audit chain %s goes back in time at revision %d", re.StreamID, re.Revision)
		}
		last[re.StreamID] = re
	}
	for _, id := range l.must.reads {
		if !recorded[id] {
			l.lose("read " + id)
			fail("a read that returned personal data has no access record (request %s)", id)
		}
	}
	rep, err := audit.Verify(ctx, sys.store)
	if err != nil || !rep.OK {
		fail("audit chains do not verify: %v %v", err, rep.Problems)
	}

	// Every acknowledged erasure: the key is gone, the list holds it.
	listed, err := keystore.ReadErased(sys.fs, erasedFile(sys.cfg))
	if err != nil {
		fail("the erased-subjects file: %v", err)
	}
	for _, id := range l.must.erasures {
		erased, err := sys.keys.Erased(ctx, id)
		if err != nil || !erased || !slices.Contains(listed, id) {
			l.lose("erasure " + id.String())
			fail("an acknowledged erasure is undone: erased %t (%v), listed %t", erased, err, slices.Contains(listed, id))
		}
	}

	// Every sealed field of every event opens under its subject's key, or
	// the subject is erased and listed: a key is durable before any event
	// sealed with it.
	problems = append(problems, l.checkSealed(ctx, sys, log, listed)...)

	// Backups: every acknowledged one is whole and restores; none that
	// exists is half written.
	problems = append(problems, l.checkBackups(ctx, sys)...)
	return problems
}

// checkSealed opens every sealed field of the log.
func (l *life) checkSealed(ctx context.Context, sys *system, log []eventlog.RecordedEvent, listed []uuid.UUID) []string {
	var problems []string
	subjectOf := map[string]uuid.UUID{} // signal stream -> subject
	opened := 0
	for _, re := range log {
		ev, err := sys.reg.DecodeVersion(re.Type, re.Metadata.SchemaVersion, re.Data)
		if err != nil {
			problems = append(problems, fmt.Sprintf("event %d (%s) does not decode: %v", re.Position, re.Type, err))
			continue
		}
		var subject uuid.UUID
		switch e := ev.(type) {
		case domain.SignalRaised:
			subjectOf[re.StreamID] = e.SubjectID
		case domain.RecordAccessed:
			if len(e.Subjects) > 0 {
				subject = e.Subjects[0]
			}
		case domain.AccessDenied:
			if len(e.Subjects) > 0 {
				subject = e.Subjects[0]
			}
		}
		switch {
		case subject != uuid.Nil:
		case strings.HasPrefix(re.StreamID, domain.SignalCategory+"-"):
			subject = subjectOf[re.StreamID]
		case strings.HasPrefix(re.StreamID, domain.SubjectCategory+"-"):
			subject, _ = uuid.Parse(strings.TrimPrefix(re.StreamID, domain.SubjectCategory+"-"))
		}
		for _, sealed := range sealedFields(reflect.ValueOf(ev)) {
			opened++
			if subject == uuid.Nil {
				problems = append(problems, fmt.Sprintf("event %d (%s) holds sealed data of no known subject", re.Position, re.Type))
				continue
			}
			_, err := sys.keys.Open(ctx, subject, sealed)
			switch {
			case err == nil:
			case errors.Is(err, domain.ErrErased):
				if !slices.Contains(listed, subject) {
					problems = append(problems, fmt.Sprintf("subject %s is erased but not in the erased-subjects file", subject))
				}
			default:
				l.lose(fmt.Sprintf("sealed %d", re.Position))
				problems = append(problems, fmt.Sprintf("event %d (%s): its sealed data does not open: %v", re.Position, re.Type, err))
			}
		}
	}
	if opened == 0 && len(l.must.commands) > 0 {
		problems = append(problems, "no sealed field in the log: the check checks nothing")
	}
	return problems
}

// sealedFields returns the non-empty domain.Sealed values in v (a struct,
// nested structs and slices of them).
func sealedFields(v reflect.Value) []domain.Sealed {
	var out []domain.Sealed
	sealedType := reflect.TypeFor[domain.Sealed]()
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch {
		case v.Type() == sealedType:
			if v.Len() > 0 {
				out = append(out, v.Interface().(domain.Sealed))
			}
		case v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer:
			if !v.IsNil() {
				walk(v.Elem())
			}
		case v.Kind() == reflect.Struct:
			for i := range v.NumField() {
				if v.Type().Field(i).IsExported() {
					walk(v.Field(i))
				}
			}
		case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Struct:
			for i := range v.Len() {
				walk(v.Index(i))
			}
		}
	}
	walk(v)
	return out
}

// checkBackups checks the backups on the reopened server's disk.
func (l *life) checkBackups(ctx context.Context, sys *system) []string {
	var problems []string
	names, _ := sys.fs.List(l.cfg.BackupDir)
	for _, name := range names {
		if !strings.HasPrefix(name, "backup-") {
			continue
		}
		if _, err := backup.Read(sys.fs, sys.fs.PathJoin(l.cfg.BackupDir, name)); err != nil {
			problems = append(problems, fmt.Sprintf("a backup that exists is not whole: %v", err))
		}
	}
	for _, dir := range l.must.backups {
		if _, err := backup.Read(sys.fs, dir); err != nil {
			l.lose("backup " + dir)
			problems = append(problems, fmt.Sprintf("an acknowledged backup is lost or damaged: %v", err))
			continue
		}
		if l.restored[dir] {
			continue
		}
		l.restored[dir] = true
		// A restore on a copy of this disk, into a data directory of its own.
		cfg, _, err := loadConfig("restore", nil, func(string) string { return "" })
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		cfg.DataDir = l.dir + "-restored/data"
		cfg.ErasedFile = erasedFile(l.cfg)
		cfg.MasterKeyFile = filepath.Join(l.cfg.DataDir, "master-key.json") // a restore needs the same master key
		cfg.LogLevel = "error"
		copyFS := sys.fs.(*crashfs.FS).Crash(crashfs.Kill, l.rng)
		// Without an acknowledged erasure there need be no list yet.
		noErased := len(l.must.erasures) == 0
		if _, err := restore(ctx, copyFS, cfg, dir, noErased, newLogger(discard{}, "error"), io.Discard); err != nil {
			l.lose("backup " + dir)
			problems = append(problems, fmt.Sprintf("an acknowledged backup does not restore: %v", err))
		}
	}
	return problems
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// plState is what the projections hold, for comparison.
type plState struct {
	Cases        []projections.Case
	Subjects     []projections.Subject
	AuditRecords int
	Orgs         []projections.Organisation
}

// projectionState reads the projections of a running server.
func projectionState(sys *system) plState {
	var st plState
	sys.runner.Read(func() { st = stateOf(sys.cases, sys.subjects, sys.audit, sys.orgs, sys.cfg.Network) })
	return st
}

// rebuilt replays the server's log into fresh projections.
func (l *life) rebuilt(sys *system) plState {
	cal, err := calendar(sys.cfg, sys.now())
	if err != nil {
		l.t.Fatal(err)
	}
	cases := projections.NewCases(domain.DefaultNorms(), cal)
	subjects, trail, orgs := projections.NewSubjects(), projections.NewAuditTrail(), projections.NewOrganisations()
	r := projections.NewRunner(sys.store, domain.NewRegistry(), cases, subjects, trail, orgs)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	head, _ := sys.store.Head(ctx)
	if err := r.WaitFor(ctx, head); err != nil {
		l.t.Fatal(err)
	}
	var st plState
	r.Read(func() { st = stateOf(cases, subjects, trail, orgs, sys.cfg.Network) })
	cancel()
	<-done
	return st
}

func stateOf(cases *projections.Cases, subjects *projections.Subjects, trail *projections.AuditTrail, orgs *projections.Organisations, network string) plState {
	var st plState
	cases.All(func(c *projections.Case) bool { st.Cases = append(st.Cases, *c); return true })
	slices.SortFunc(st.Cases, func(a, b projections.Case) int { return strings.Compare(a.ID.String(), b.ID.String()) })
	subjects.All(func(s *projections.Subject) bool { st.Subjects = append(st.Subjects, *s); return true })
	slices.SortFunc(st.Subjects, func(a, b projections.Subject) int { return strings.Compare(a.ID.String(), b.ID.String()) })
	st.AuditRecords = trail.Records()
	for _, o := range orgs.List(network) {
		st.Orgs = append(st.Orgs, *o)
	}
	return st
}
