package kurrentconn

import (
	"errors"
	"io"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
)

// Drain reads a read of a stream or of $all to its end and closes it; it
// takes the client's answer as it comes, so that an op reads
//
//	return kurrentconn.Drain(cl.ReadStream(ctx, stream, opts, count))
//
// Errors are the client's, unchanged (a missing stream is StreamNotFound).
func Drain(rs *esdb.ReadStream, err error) ([]*esdb.RecordedEvent, error) {
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []*esdb.RecordedEvent
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if r := ev.OriginalEvent(); r != nil {
			out = append(out, r)
		}
	}
}
