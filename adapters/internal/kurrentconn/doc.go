// Package kurrentconn is how the server's adapters talk to KurrentDB
// (EventStoreDB) through github.com/EventStore/EventStore-Client-Go/v4:
// connection strings (Parse), a client that calls with a deadline, asks for
// the leader and retries what the client recovers from (Client, Call,
// Do, Subscribe), the classification of the client's errors (Classify), and
// the server's operations API that the client does not cover (scavenges,
// StartScavenge). It is a library, not an adapter: it implements no port.
//
// What the v4 client does not give, and Client adds:
//
//   - Deadlines: every call runs under Options.Timeout (or the caller's
//     earlier deadline), including the client's (re)connection, which
//     ignores contexts: a call stuck there is abandoned at its deadline.
//     While a client has not answered since (re)connecting, one call at a
//     time enters it, so that calls do not queue behind a connection
//     attempt that may close the client.
//   - A client that fails to connect closes itself for good; Client
//     replaces it and retries.
//   - The client never sends requires-leader (it sets it on the wrong side
//     of the call): with nodePreference=leader (the default) Client sends it
//     on every call, so a node that is no longer the leader answers
//     not-leader, and the call is retried against the leader.
//
// The event store adapter (adapters/kurrentdb) and the cluster key store
// (adapters/clusterkeys) both talk to KurrentDB through a Client: each
// classifies the errors into its own port's (Do takes the caller's
// classification and whether the operation is idempotent).
package kurrentconn
