package domain

import "time"

// Console sessions. A session is sealed into its cookie (nothing is held per
// replica), under one key for every replica: created once, wrapped by the
// master key and kept in the log (SessionKeyCreated on SessionKeyStream).
// Signing out records SessionEnded on the session's own stream, so every
// replica refuses the session from then on, also a copy of its cookie.

// SessionKeyStream holds the one SessionKeyCreated of a deployment.
const SessionKeyStream = "consolekey-1"

// SessionCategory is the stream category of ended console sessions.
const SessionCategory = "consolesession"

// SessionStream is the stream of one ended session.
func SessionStream(id string) string { return SessionCategory + "-" + id }

// SessionKeyCreated holds the key that seals console sessions, wrapped by the
// master key (useless without it).
type SessionKeyCreated struct {
	Wrapped []byte `json:"wrapped"`
}

// SessionEnded records that a console session was signed out; Until is when
// it would have expired, after which it need not be remembered.
type SessionEnded struct {
	SessionID string    `json:"session_id"`
	Until     time.Time `json:"until"`
}

func (SessionKeyCreated) EventType() string { return "SessionKeyCreated" }
func (SessionEnded) EventType() string      { return "SessionEnded" }
