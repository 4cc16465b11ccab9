package projections

import "github.com/buurtsignaal/buurtsignaal/domain/eventlog"

// ApplyDecoded applies events already decoded, in one batch, past the
// last applied position: for benchmarks that build large read models
// without encoding and decoding millions of events.
func (r *Runner) ApplyDecoded(envs []Envelope) error {
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	recs := make([]eventlog.RecordedEvent, len(envs))
	for i, e := range envs {
		recs[i] = eventlog.RecordedEvent{Position: e.Position, StreamID: e.Stream}
	}
	return r.applyBatch(recs, envs)
}
