// Package audit writes the access log: one hash-chained RecordAccessed or
// AccessDenied event per request, in this replica's own daily stream
// audit-<replica>-<yyyymmdd>, so audit writes never contend across replicas.
//
// Records are group-committed: one writer goroutine takes every record
// waiting at that moment (up to MaxBatch), chains them (each record carries
// the SHA-256 of the previous record's stored bytes) and appends them in as
// few appends as eventlog.MaxAppendBytes allows (a KurrentDB server's
// default maximum append size; one record listing 50 cases is about 4 KB,
// so a full batch takes a few), each made durable in one synced batch. A
// store that refuses an append as too large gets it split in two, and
// smaller appends from then on. RecordAccess returns only once its record
// is durable: the server fails the read when it errs (fail closed).
//
// Verify recomputes every chain over the stored bytes (ciphertext where a
// field is sealed, so crypto-shredding never breaks a chain) and reports the
// head digest that operators can keep outside the system.
package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// MaxBatch bounds the records of one group commit.
const MaxBatch = 512

// Log is the audit writer. It implements domain.Auditor.
type Log struct {
	store   eventlog.Store
	cipher  domain.Cipher
	replica string
	now     func() time.Time

	reqs chan *pending
	quit chan struct{}
	done chan struct{}
	once sync.Once

	heads map[string]head // per stream: last revision, hash and time; only the writer touches it
	// latest is the latest time the writer has seen (its clock, or a
	// record's): a clock stepped back never takes it to an earlier day's
	// stream. Only the writer touches it.
	latest time.Time
	// maxBytes bounds one append (eventlog.AppendSize); a store that
	// refuses less lowers it. Only the writer touches it.
	maxBytes int
}

var _ domain.Auditor = (*Log)(nil)

type head struct {
	exists bool
	rev    uint64
	hash   string
	at     time.Time // the last record's time
}

type pending struct {
	event domain.Event // RecordAccessed or AccessDenied without its chain
	rec   domain.AccessRecord
	done  chan error
}

// ErrClosed is returned after Close.
var ErrClosed = &domain.Error{Kind: domain.KindUnavailable, Code: "audit_closed", Message: "the audit log is closed"}

// New starts an audit writer for replica; Close stops it.
func New(store eventlog.Store, cipher domain.Cipher, replica string, now func() time.Time) *Log {
	if now == nil {
		now = time.Now
	}
	l := &Log{store: store, cipher: cipher, replica: sanitize(replica), now: now,
		reqs: make(chan *pending, 4*MaxBatch), quit: make(chan struct{}), done: make(chan struct{}), heads: map[string]head{},
		maxBytes: eventlog.MaxAppendBytes}
	go l.writer()
	return l
}

// sanitize keeps a replica name usable in a stream name.
func sanitize(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '.' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "replica"
	}
	return b.String()
}

// Stream returns the audit stream of this replica for the day of t (UTC).
func (l *Log) Stream(t time.Time) string {
	return eventlog.StreamName(domain.AuditCategory, l.replica+"-"+t.UTC().Format("20060102"))
}

// Close stops the writer after the records already queued.
func (l *Log) Close() error {
	l.once.Do(func() { close(l.quit) })
	<-l.done
	return nil
}

// RecordAccess durably records an allowed access. It returns an error when
// the record could not be written: the caller must then not serve the data.
func (l *Log) RecordAccess(ctx context.Context, a domain.Access) error {
	return l.record(ctx, a, false)
}

// RecordDenied durably records a denied attempt.
func (l *Log) RecordDenied(ctx context.Context, a domain.Access) error {
	return l.record(ctx, a, true)
}

func (l *Log) record(ctx context.Context, a domain.Access, denied bool) error {
	rec := a.AccessRecord
	rec.At = rec.At.UTC()
	rec.BreakGlassReason = nil
	if rec.At.IsZero() {
		rec.At = l.now().UTC()
	}
	if a.Reason != "" && len(a.Subjects) > 0 {
		sealed, err := l.cipher.Seal(ctx, a.Subjects[0], []byte(a.Reason))
		if err != nil && !errors.Is(err, domain.ErrErased) {
			return fmt.Errorf("audit: seal break-glass reason: %w", err)
		}
		rec.BreakGlassReason = sealed
	}
	// On behalf of whom is client text: never in clear in the permanent
	// log, sealed like the reason; without a subject it is not kept.
	rec.OnBehalfOf, rec.OnBehalfOfSealed = "", nil
	if a.OnBehalfOf != "" && len(a.Subjects) > 0 {
		sealed, err := l.cipher.Seal(ctx, a.Subjects[0], []byte(a.OnBehalfOf))
		if err != nil && !errors.Is(err, domain.ErrErased) {
			return fmt.Errorf("audit: seal on-behalf-of: %w", err)
		}
		rec.OnBehalfOfSealed = sealed
	}
	p := &pending{rec: rec, done: make(chan error, 1)}
	if denied {
		p.event = domain.AccessDenied{AccessRecord: rec}
	} else {
		p.event = domain.RecordAccessed{AccessRecord: rec}
	}
	select {
	case l.reqs <- p:
	case <-l.quit:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		// The record may still be written; the request fails closed.
		return ctx.Err()
	}
}

func (l *Log) writer() {
	defer close(l.done)
	for {
		var first *pending
		select {
		case first = <-l.reqs:
		case <-l.quit:
			l.drain()
			return
		}
		batch := []*pending{first}
	fill:
		for len(batch) < MaxBatch {
			select {
			case p := <-l.reqs:
				batch = append(batch, p)
			default:
				break fill
			}
		}
		l.commit(batch)
	}
}

func (l *Log) drain() {
	for {
		select {
		case p := <-l.reqs:
			l.commit([]*pending{p})
		default:
			return
		}
	}
}

// commit chains and appends a batch to today's stream, then answers each
// waiter: the records of the appends that succeeded with nil, the others
// with the error.
//
// Time only goes forward in the audit log, whatever the clock does (a step
// back by NTP, or requests stamped a moment apart that reach the writer in
// the other order): today is the latest day the writer has seen since it
// started (on its clock or on a record), never an earlier one, and a
// record stamped before the last record of its chain carries that record's
// time instead, so the times along a chain never decrease, across restarts
// too.
func (l *Log) commit(batch []*pending) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if now := l.now().UTC(); now.After(l.latest) {
		l.latest = now
	}
	for _, p := range batch {
		if p.rec.At.After(l.latest) {
			l.latest = p.rec.At
		}
	}
	stream := l.Stream(l.latest)
	written, err := l.appendChained(ctx, stream, batch)
	if err != nil {
		delete(l.heads, stream) // reload the head from the store next time
	}
	for i, p := range batch {
		if i < written {
			p.done <- nil
		} else {
			p.done <- err
		}
	}
}

// minAppendBytes is the least the writer's byte bound goes down to after
// refusals.
const minAppendBytes = 16 << 10

// appendChained chains the batch after the stream's head and appends it in
// as few appends as its bound in bytes allows (eventlog.MaxAppendBytes, or
// less once a store refused a part as too large: the part is split again).
// It returns how many records, from the first, are durable.
func (l *Log) appendChained(ctx context.Context, stream string, batch []*pending) (int, error) {
	h, ok := l.heads[stream]
	if !ok {
		var err error
		if h, err = loadHead(ctx, l.store, stream); err != nil {
			return 0, err
		}
	}
	events := make([]eventlog.EventData, len(batch))
	heads := make([]head, len(batch)) // the stream's head after each record
	next := h
	for i, p := range batch {
		seq := uint64(0)
		prev := genesis(stream)
		if next.exists {
			seq, prev = next.rev+1, next.hash
		}
		chain := domain.Chain{Seq: seq, Prev: prev}
		at := p.rec.At
		if at.Before(next.at) {
			at = next.at // never before the record it follows
		}
		var ev domain.Event
		switch e := p.event.(type) {
		case domain.RecordAccessed:
			e.Chain, e.At = chain, at
			ev = e
		case domain.AccessDenied:
			e.Chain, e.At = chain, at
			ev = e
		}
		data, err := domain.Encode(ev)
		if err != nil {
			return 0, err
		}
		events[i] = eventlog.EventData{ID: uuid.New(), Type: ev.EventType(), Data: data, Metadata: eventlog.Metadata{
			OccurredAt: at, ActorID: p.rec.ActorID, ActorRole: p.rec.ActorRole,
			RequestID: p.rec.RequestID, CorrelationID: p.rec.RequestID, Network: p.rec.Network, SchemaVersion: domain.VersionOf(ev),
		}}
		next = head{exists: true, rev: seq, hash: digest(data), at: at}
		heads[i] = next
	}
	done := 0
	for done < len(events) {
		n := l.fit(events[done:])
		expected := eventlog.NoStream()
		if h.exists {
			expected = eventlog.Revision(h.rev)
		}
		_, err := l.store.Append(ctx, stream, expected, events[done:done+n]...)
		if errors.Is(err, eventlog.ErrAppendTooLarge) && n > 1 {
			// The store takes less than the bound: split, and keep the
			// smaller bound for the batches to come.
			l.maxBytes = max(eventlog.AppendSize(events[done:done+n])/2, minAppendBytes)
			continue
		}
		if err != nil {
			return done, fmt.Errorf("audit: append: %w", err)
		}
		done += n
		h = heads[done-1]
		l.heads[stream] = h
	}
	return done, nil
}

// fit returns how many of the events, from the first (at least one), one
// append takes within the writer's bound in bytes and events.
func (l *Log) fit(events []eventlog.EventData) int {
	size := 0
	for i := range events {
		size += eventlog.AppendSize(events[i : i+1])
		if i > 0 && (size > l.maxBytes || i == eventlog.MaxAppendEvents) {
			return i
		}
	}
	return len(events)
}

func genesis(stream string) string { return digest([]byte("buurtsignaal-audit:" + stream)) }

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func loadHead(ctx context.Context, store eventlog.Store, stream string) (head, error) {
	last, err := store.ReadStream(ctx, stream, eventlog.Backwards, eventlog.End, 1)
	if errors.Is(err, eventlog.ErrStreamNotFound) || (err == nil && len(last) == 0) {
		return head{}, nil
	}
	if err != nil {
		return head{}, fmt.Errorf("audit: read head: %w", err)
	}
	return head{exists: true, rev: last[0].Revision, hash: digest(last[0].Data), at: last[0].Metadata.OccurredAt.UTC()}, nil
}

// Report is the result of Verify.
type Report struct {
	OK       bool     `json:"ok"`
	Streams  int      `json:"streams"`
	Records  int      `json:"records"`
	Head     string   `json:"head"`     // digest over every stream's head, in stream order
	Heads    []Head   `json:"heads"`    // each stream's last record digest
	Problems []string `json:"problems"` // ids and positions only
}

// Head is the head digest of one audit stream.
type Head struct {
	Stream  string `json:"stream"`
	Records int    `json:"records"`
	Digest  string `json:"digest"`
}

// Verify recomputes the chain of every audit stream in the log. It returns
// an error only when the log cannot be read; broken chains are Problems.
func Verify(ctx context.Context, store eventlog.Store) (Report, error) {
	prefix := domain.AuditCategory + "-"
	var events []eventlog.RecordedEvent
	var after uint64
	for {
		page, err := store.ReadAll(ctx, after, 4096)
		if err != nil {
			return Report{Problems: []string{}, Heads: []Head{}}, fmt.Errorf("audit verify: %w", err)
		}
		for _, re := range page {
			after = re.Position
			if strings.HasPrefix(re.StreamID, prefix) {
				events = append(events, re)
			}
		}
		if len(page) < 4096 {
			break
		}
	}
	return VerifyEvents(events), nil
}

// VerifyEvents checks the chains of audit events given in log order: every
// record's sequence number is its revision, and its prev is the digest of
// the record before it in its stream. Edits, deletions and reorders break a
// link; truncation and an edit of a stream's last record change its head,
// which is why operators keep the head digest outside the system.
func VerifyEvents(events []eventlog.RecordedEvent) Report {
	rep := Report{Problems: []string{}, Heads: []Head{}}
	type streamState struct {
		records int
		expect  uint64
		prev    string
	}
	streams := map[string]*streamState{}
	for _, re := range events {
		st := streams[re.StreamID]
		if st == nil {
			st = &streamState{prev: genesis(re.StreamID)}
			streams[re.StreamID] = st
		}
		var c domain.Chain
		if err := decodeChain(re.Data, &c); err != nil {
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s@%d: record does not decode", re.StreamID, re.Revision))
		} else {
			if c.Seq != st.expect || re.Revision != st.expect {
				rep.Problems = append(rep.Problems, fmt.Sprintf("%s@%d: sequence %d where %d was expected (record missing or reordered)", re.StreamID, re.Revision, c.Seq, st.expect))
			}
			if c.Prev != st.prev {
				rep.Problems = append(rep.Problems, fmt.Sprintf("%s@%d: chain broken (previous record changed, missing or reordered)", re.StreamID, re.Revision))
			}
		}
		if re.Type != (domain.RecordAccessed{}).EventType() && re.Type != (domain.AccessDenied{}).EventType() {
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s@%d: unexpected event type", re.StreamID, re.Revision))
		}
		st.expect = re.Revision + 1
		st.prev = digest(re.Data)
		st.records++
		rep.Records++
	}
	names := make([]string, 0, len(streams))
	for n := range streams {
		names = append(names, n)
	}
	sort.Strings(names)
	all := sha256.New()
	for _, n := range names {
		st := streams[n]
		rep.Heads = append(rep.Heads, Head{Stream: n, Records: st.records, Digest: st.prev})
		all.Write([]byte(n + ":" + st.prev + "\n"))
	}
	rep.Streams = len(names)
	rep.Head = hex.EncodeToString(all.Sum(nil))
	rep.OK = len(rep.Problems) == 0
	return rep
}

func decodeChain(data []byte, c *domain.Chain) error {
	var v struct {
		Seq  *uint64 `json:"seq"`
		Prev *string `json:"prev"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	if v.Seq == nil || v.Prev == nil {
		return errors.New("no chain")
	}
	c.Seq, c.Prev = *v.Seq, *v.Prev
	return nil
}
