package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/adapters/durablefs/crashfs"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// The moments of TestPowerLoss's cuts.
var targetNames = []string{"group commit", "key creation", "erasure", "key purge", "backup", "outbox", "start", "any", "moment"}

// target is when a round cuts the power: at the k-th operation that match
// accepts.
type target struct {
	name  string
	k     int
	match func(crashfs.Op) bool
}

// pickTarget chooses the next cut; fresh says the server starts in the
// round anyway.
func (l *life) pickTarget(fresh bool) target {
	dir := func(name string) string { return filepath.Join(l.cfg.DataDir, name) + string(filepath.Separator) }
	under := func(op crashfs.Op, d string) bool { return strings.HasPrefix(op.Path, d) }
	wal := func(op crashfs.Op, d string) bool {
		return op.Kind == crashfs.Sync && under(op, d) && strings.HasSuffix(op.Path, ".log")
	}
	events, keys, outbox := dir("events"), dir("keys"), dir("outbox")
	erased := erasedFile(l.cfg)
	backups := l.cfg.BackupDir + string(filepath.Separator)
	any := func(crashfs.Op) bool { return true }
	name := targetNames[l.rng.IntN(len(targetNames))]
	if fresh && name == "moment" {
		name = "start"
	}
	switch name {
	case "group commit":
		return target{name, 1 + l.rng.IntN(40), func(op crashfs.Op) bool { return wal(op, events) }}
	case "key creation":
		return target{name, 1 + l.rng.IntN(12), func(op crashfs.Op) bool { return wal(op, keys) }}
	case "erasure":
		return target{name, 1 + l.rng.IntN(6), func(op crashfs.Op) bool {
			return strings.HasPrefix(op.Path, erased) || op.Kind == crashfs.Sync && op.Dir && op.Path == filepath.Dir(erased)
		}}
	case "key purge":
		return target{name, 1 + l.rng.IntN(30), func(op crashfs.Op) bool { return under(op, keys) && !wal(op, keys) }}
	case "backup":
		return target{name, 1 + l.rng.IntN(80), func(op crashfs.Op) bool { return under(op, backups) }}
	case "outbox":
		return target{name, 1 + l.rng.IntN(20), func(op crashfs.Op) bool { return under(op, outbox) }}
	case "start":
		return target{name, 1 + l.rng.IntN(120), any}
	case "any":
		return target{name, 1 + l.rng.IntN(600), any}
	}
	return target{"moment", 0, func(crashfs.Op) bool { return false }}
}

// driver is the clients of one round.
type driver struct {
	l       *life
	srv     *plServer
	client  *http.Client
	ctx     context.Context
	cutDone chan struct{}
}

func (d *driver) isCut() bool {
	select {
	case <-d.cutDone:
		return true
	default:
		return false
	}
}

type plAnswer struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

// call sends a request; ok is false when the round is over (the clients'
// context ended). A 5xx fails the test: no request here may meet one.
func (d *driver) call(method, path, who string, body any, headers ...string) (plAnswer, bool) {
	var rd io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(d.ctx, method, d.srv.base+path, rd)
	if err != nil {
		d.l.t.Error(err)
		return plAnswer{}, false
	}
	req.Header.Set("Authorization", "Bearer tok-"+who)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := d.client.Do(req)
	if err != nil {
		if d.ctx.Err() == nil {
			d.l.t.Errorf("%s %s: %v", method, pattern(path), err)
		}
		return plAnswer{}, false
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := plAnswer{status: resp.StatusCode, header: resp.Header, raw: raw}
	_ = json.Unmarshal(raw, &a.body)
	if a.status >= 500 && d.ctx.Err() == nil {
		code, _ := a.body["code"].(string)
		d.l.t.Errorf("%s %s as %s: %d %s", method, pattern(path), who, a.status, code)
	}
	return a, d.ctx.Err() == nil
}

// pattern hides ids in a path for messages.
func pattern(path string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if _, err := uuid.Parse(p); err == nil {
			parts[i] = "{id}"
		}
	}
	return strings.Join(parts, "/")
}

// ack records what the server acknowledged, unless the power was cut
// before: a cut's snapshot is taken under the same lock.
func (d *driver) ack(fn func(a *acks)) {
	d.l.mu.Lock()
	defer d.l.mu.Unlock()
	if d.l.cut == nil {
		fn(&d.l.cur)
	}
}

func (d *driver) command(what string, stream string, a plAnswer) {
	version, _ := a.body["version"].(float64)
	position, _ := a.body["position"].(float64)
	d.ack(func(x *acks) {
		x.commands = append(x.commands, ackedCommand{what: what, stream: stream, version: int(version), position: uint64(position)})
	})
}

func (d *driver) read(a plAnswer) {
	id := a.header.Get("X-Request-ID")
	d.ack(func(x *acks) { x.reads = append(x.reads, id) })
}

// pick returns a signal the clients know in one of the states, chosen at
// random (nil when there is none).
func (d *driver) pick(rng *rand.Rand, ok func(*signalState) bool) *signalState {
	d.l.mu.Lock()
	defer d.l.mu.Unlock()
	var c []*signalState
	for _, s := range d.l.signals {
		if ok(s) && !d.l.erased[s.subject] {
			c = append(c, s)
		}
	}
	if len(c) == 0 {
		return nil
	}
	s := *c[rng.IntN(len(c))]
	return &s
}

func (d *driver) setStatus(id uuid.UUID, status string) {
	d.l.mu.Lock()
	defer d.l.mu.Unlock()
	if s := d.l.signals[id]; s != nil && d.l.cut == nil {
		s.status = status
	}
}

// run is one client's loop until the round ends.
func (d *driver) run(who string, rng *rand.Rand, target string) {
	for d.ctx.Err() == nil && !d.isCut() {
		r := rng.IntN(100)
		switch who {
		case "carla", "eva":
			if r < 65 {
				d.raise(who)
			} else {
				d.handover(who, rng)
			}
		case "anna":
			switch {
			case r < 15:
				d.raise(who)
			case r < 35:
				d.accept(rng)
			case r < 55:
				d.followUp(rng)
			case r < 80:
				d.readCase("anna", rng)
			default:
				if a, ok := d.call("GET", "/v1/caseload", "anna", nil); ok && a.status == 200 && strings.Contains(string(a.raw), "Proef Persoon") {
					d.read(a)
				}
			}
		case "bob":
			d.readCase("bob", rng)
		case "hanna":
			erase := 35
			if target == "erasure" || target == "key purge" {
				erase = 70
			}
			switch {
			case r < erase:
				d.erase(rng)
			case r < erase+(100-erase)/2:
				d.search(rng)
			default:
				d.export(rng)
			}
		}
	}
}

func (d *driver) raise(who string) {
	d.l.mu.Lock()
	d.l.names++
	name := fmt.Sprintf("Proef Persoon %d", d.l.names)
	d.l.mu.Unlock()
	a, ok := d.call("POST", "/v1/signals", who, map[string]any{
		"subject":       map[string]any{"name": name, "birth_date": "1950-01-02"},
		"neighbourhood": "centrum", "categories": []string{"loneliness"}, "urgency": "normal",
		"description": "proefbeschrijving " + name, "consent": "informed",
	})
	if !ok || a.status != 201 {
		return
	}
	id, err := uuid.Parse(fmt.Sprint(a.body["id"]))
	if err != nil {
		d.l.t.Errorf("raise answer without an id")
		return
	}
	subject, err := d.subjectOf(id)
	if err != nil {
		if d.ctx.Err() == nil {
			d.l.t.Errorf("the subject of an acknowledged signal: %v", err)
		}
		return
	}
	d.command("raise", "signal-"+id.String(), a)
	d.l.mu.Lock()
	if d.l.cut == nil {
		d.l.signals[id] = &signalState{id: id, subject: subject, raisedBy: who, name: name, status: "raised"}
	}
	d.l.mu.Unlock()
}

// subjectOf reads a signal's subject from the log (a signaller is not told).
func (d *driver) subjectOf(signal uuid.UUID) (uuid.UUID, error) {
	recs, err := d.srv.sys.store.ReadStream(d.ctx, "signal-"+signal.String(), eventlog.Forwards, 0, 1)
	if err != nil {
		return uuid.Nil, err
	}
	if len(recs) != 1 {
		return uuid.Nil, fmt.Errorf("signal stream of %d events", len(recs))
	}
	var raised struct {
		SubjectID uuid.UUID `json:"subject_id"`
	}
	err = json.Unmarshal(recs[0].Data, &raised)
	return raised.SubjectID, err
}

func (d *driver) handover(who string, rng *rand.Rand) {
	s := d.pick(rng, func(s *signalState) bool { return s.status == "raised" && s.raisedBy == who })
	if s == nil {
		return
	}
	if a, ok := d.call("POST", "/v1/signals/"+s.id.String()+"/handover", who, map[string]any{"team_id": "team-a", "note": "overdracht"}); ok && a.status == 200 {
		d.command("handover", "signal-"+s.id.String(), a)
		d.setStatus(s.id, "handed_over")
	}
}

func (d *driver) accept(rng *rand.Rand) {
	s := d.pick(rng, func(s *signalState) bool { return s.status == "handed_over" })
	if s == nil {
		return
	}
	if a, ok := d.call("POST", "/v1/signals/"+s.id.String()+"/accept", "anna", nil); ok && a.status == 200 {
		d.command("accept", "signal-"+s.id.String(), a)
		d.setStatus(s.id, "in_care")
	}
}

func (d *driver) followUp(rng *rand.Rand) {
	s := d.pick(rng, func(s *signalState) bool { return s.status == "in_care" })
	if s == nil {
		return
	}
	a, ok := d.call("POST", "/v1/signals/"+s.id.String()+"/follow-ups", "anna", map[string]any{"kind": "home_visit", "outcome": "reached", "note": "huisbezoek"})
	if ok && a.status == 200 {
		d.command("follow-up", "signal-"+s.id.String(), a)
	}
}

// readCase reads a case of team-a: as its professional, or as another
// team's with a break-glass reason.
func (d *driver) readCase(who string, rng *rand.Rand) {
	s := d.pick(rng, func(s *signalState) bool { return s.status == "handed_over" || s.status == "in_care" })
	if s == nil {
		return
	}
	var headers []string
	if who != "anna" {
		headers = []string{"X-Break-Glass-Reason", "waarneming"}
	}
	a, ok := d.call("GET", "/v1/signals/"+s.id.String(), who, nil, headers...)
	if ok && a.status == 200 && strings.Contains(string(a.raw), s.name) {
		d.read(a)
	}
}

func (d *driver) search(rng *rand.Rand) {
	s := d.pick(rng, func(*signalState) bool { return true })
	if s == nil {
		return
	}
	a, ok := d.call("POST", "/v1/subjects/search", "hanna", map[string]any{"name": s.name, "birth_date": "1950-01-02"})
	if ids, _ := a.body["subject_ids"].([]any); ok && a.status == 200 && len(ids) > 0 {
		d.read(a)
	}
}

func (d *driver) export(rng *rand.Rand) {
	s := d.pick(rng, func(*signalState) bool { return true })
	if s == nil {
		return
	}
	a, ok := d.call("GET", "/v1/subjects/"+s.subject.String()+"/export", "hanna", nil)
	if ok && a.status == 200 && strings.Contains(string(a.raw), s.name) {
		d.read(a)
	}
}

func (d *driver) erase(rng *rand.Rand) {
	s := d.pick(rng, func(*signalState) bool { return true })
	if s == nil {
		return
	}
	d.l.mu.Lock()
	d.l.erased[s.subject] = true // no more commands that seal for it
	d.l.mu.Unlock()
	a, ok := d.call("POST", "/v1/subjects/"+s.subject.String()+"/erasure", "hanna", map[string]any{"reason": "verzoek", "request_ref": "PL-1"})
	if ok && a.status == 200 {
		d.command("erasure", "subject-"+s.subject.String(), a)
		d.ack(func(x *acks) { x.erasures = append(x.erasures, s.subject) })
	}
}

// backup asks the server for a backup over its admin socket after wait.
func (d *driver) backup(wait time.Duration) {
	select {
	case <-time.After(wait):
	case <-d.ctx.Done():
		return
	}
	out, err := askServer(d.ctx, adminSocket(d.l.cfg), d.l.cfg.BackupDir)
	if err != nil {
		if d.ctx.Err() == nil {
			d.l.t.Errorf("backup: %v (after the cuts: %s)", err, strings.Join(d.l.history, "; "))
		}
		return
	}
	var got struct {
		Dir string `json:"dir"`
	}
	if err := json.Unmarshal(out, &got); err != nil || got.Dir == "" {
		d.l.t.Errorf("backup answer: %v", err)
		return
	}
	d.ack(func(x *acks) { x.backups = append(x.backups, got.Dir) })
}
