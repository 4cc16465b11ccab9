package app

import (
	"context"
	"errors"
	"time"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// systemActor is the actor of what the server writes on its own.
var systemActor = domain.Principal{ID: "system", Roles: []domain.Role{domain.SystemRole}}

// SessionKey returns the wrapped key that seals console sessions into their
// cookies, creating it with newWrapped when there is none: the key is
// created once for every replica (appended with expected version
// no_stream; a replica that loses the race reads the winner's), so a session
// made on one replica opens on every other and survives restarts.
func (s *Service) SessionKey(ctx context.Context, newWrapped func() ([]byte, error)) ([]byte, error) {
	for attempt := 0; attempt < 2; attempt++ {
		e, _, err := s.readConfig(ctx, domain.SessionKeyStream)
		if err != nil {
			return nil, err
		}
		if k, ok := e.(domain.SessionKeyCreated); ok {
			return k.Wrapped, nil
		}
		if e != nil {
			return nil, unexpected(domain.SessionKeyStream, e)
		}
		wrapped, err := newWrapped()
		if err != nil {
			return nil, err
		}
		req := Request{Actor: systemActor, RequestID: "session-key"}
		data, err := s.encode(req, s.eventIDs(req, domain.SessionKeyStream, 1), []domain.Event{domain.SessionKeyCreated{Wrapped: wrapped}}, s.Now().UTC())
		if err != nil {
			return nil, err
		}
		_, err = s.Log.Append(ctx, domain.SessionKeyStream, eventlog.NoStream(), data...)
		if err == nil {
			return wrapped, nil
		}
		if !errors.Is(err, eventlog.ErrWrongExpectedVersion) {
			return nil, err
		}
		// Another replica created it first: read theirs.
	}
	return nil, domain.Errorf(domain.KindInternal, "session_key", "the console session key could not be created or read")
}

// EndSession records that a console session was signed out, so every
// replica refuses it until it would have expired (until). Ending a session
// twice changes nothing.
func (s *Service) EndSession(ctx context.Context, actor domain.Principal, id string, until time.Time) error {
	stream := domain.SessionStream(id)
	req := Request{Actor: actor, RequestID: "sign-out"}
	data, err := s.encode(req, s.eventIDs(req, stream, 1), []domain.Event{domain.SessionEnded{SessionID: id, Until: until.UTC()}}, s.Now().UTC())
	if err != nil {
		return err
	}
	_, err = s.Log.Append(ctx, stream, eventlog.NoStream(), data...)
	if errors.Is(err, eventlog.ErrWrongExpectedVersion) {
		return nil // ended before
	}
	return err
}
