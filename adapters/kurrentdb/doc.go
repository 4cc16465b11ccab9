// Package kurrentdb is the scale-out event store: the event log port
// (domain/eventlog) on a KurrentDB (EventStoreDB) node or cluster, through
// github.com/EventStore/EventStore-Client-Go/v4.
//
// # Mapping
//
// Streams, event ids, event types and expected revisions (any, no_stream,
// stream_exists, exact) map one to one. The port's metadata travels as JSON
// in each event's user metadata; the event's creation time on the server is
// RecordedAt. The port's position is the event's commit position in $all:
// every event written through gRPC commits itself, so its commit and prepare
// positions are equal and strictly increasing, but not dense (they are byte
// offsets in the transaction log). A log migrated from old servers may hold
// legacy explicit transactions, whose events share the commit position of
// their commit record and differ in prepare position: inside the adapter
// (ReadAll's pages, Head, a subscription's de-duplication, checkpoints and
// resumption) positions are compared whole, commit then prepare, so each of
// them is delivered; a reader of the port sees them at one position, and a
// reader that resumes "after" it skips the rest of that transaction (the
// application writes none). Reads of $all, Head and subscriptions
// skip system events (a stream or an event type starting with "$": stream
// metadata, tombstones, projection links, settings). ReadAll and Subscribe
// use "after position" semantics: they deliver events with a greater
// position.
//
// Subscriptions are catch-up subscriptions to $all filtered on the server:
// by stream prefix when the filter has prefixes, else by exact event type
// (a regular expression), else excluding system events; when a filter has
// both prefixes and event types, the types are checked here.
//
// Errors are classified from the client's error codes before any wrapping
// (the client's FromError does not unwrap): wrong expected version is
// eventlog.ErrWrongExpectedVersion (conflict), stream deleted is
// eventlog.ErrStreamDeleted, a missing stream on a read is
// eventlog.ErrStreamNotFound, an append over the server's maximum append
// size is eventlog.ErrAppendTooLarge (an event over its maximum event size
// eventlog.ErrEventTooLarge), and everything else (no server, no
// leader, timeouts, access denied) is eventlog.ErrUnavailable, with the
// cause kept for errors.Is (context.DeadlineExceeded, for one).
//
// Idempotency: KurrentDB recognises a retry with an exact expected revision
// or no_stream by the ids right after it, which meets the port. With any or
// stream_exists it looks the first id up in a bounded in-memory cache of
// recently committed ids, and writes the events when the first id is not
// there, even if a later one is stored; so for those two the adapter first
// reads the stream's last 64 events and answers a retry, or a partial
// overlap (conflict), itself, as the embedded store does (at the cost of a
// read per append). The application appends with exact revisions and
// no_stream only.
//
// # What the client does not give
//
// The connection management below (deadlines, replaced clients,
// requires-leader, the retries of calls, the client's log lines) is
// adapters/internal/kurrentconn's, which the cluster key store
// (adapters/clusterkeys) uses too; the adapter classifies the errors into
// the port's and says which calls are idempotent.
//
//   - Deadlines: every call runs under Options.Timeout (or the caller's
//     earlier deadline), including the client's (re)connection, which
//     ignores contexts: a call stuck there is abandoned at its deadline.
//     While a client has not yet answered since (re)connecting, one call at
//     a time enters it, so that calls do not queue behind a connection
//     attempt that may close the client.
//
//   - A client that fails to connect (discovery exhausted, the first time or
//     after an outage) closes itself for good; the adapter replaces it and
//     retries.
//
//   - The client never sends requires-leader (it sets it on the wrong
//     side of the call): with nodePreference=leader (the default here) the
//     adapter sends it on every call, so a node that is no longer the leader
//     answers not-leader; the client then reconnects to the leader it names
//     and the adapter retries (appends are safe to retry: same ids, same
//     expected revision).
//
//   - Elections: a node that knows no leader answers "No leader info
//     available" (status Unknown, no leader named), which the client passes
//     on as an unknown error. The adapter rediscovers the cluster on a new
//     client and retries until the call's deadline (elections and
//     not-leader answers do not count against the 8 tries other failures
//     get). Any other status Unknown, and the server's own timeout
//     (Aborted), may or may not have happened: reads are retried, and so
//     are appends whose retry the server recognises (an exact revision or
//     no_stream); an append with any or stream_exists is retried after the
//     adapter has looked for it among the stream's last events again.
//
//   - A dropped subscription (SubscriptionDropped, a raw gRPC Unavailable
//     included) is resubscribed from the last position handed to Next (or
//     the server's last checkpoint past it) with capped exponential backoff
//     and jitter, invisibly to the caller of Next. The backoff starts again
//     from its first wait after a success: an event or a checkpoint, or a
//     subscription that stayed up longer than the longest wait (a server
//     confirms a subscription at the end of a quiet log and may send
//     nothing more). Refused credentials (access denied, unauthenticated:
//     a password being rotated, an ACL being changed) are retried the same
//     way, with a warning, so that they do not stop the projections for
//     good; invalid arguments and undecodable events end the subscription
//     with an error.
//
//   - A log that went backwards: before every (re)subscription the adapter
//     reads $all at the last event the subscription received (at first, at
//     the position it was given) and ends the subscription with
//     eventlog.ErrLogDiverged, logged as an error, when the log ends before
//     it (a cluster restored from an older backup), refuses it as an
//     invalid position or holds another event there (another cluster
//     behind the same address, a stored checkpoint of another log). A
//     server may otherwise take such a position and wait, silently
//     skipping every event the log writes below it. The projection runner
//     and the notifier stop on it, and the server's readiness goes off.
//
//   - Keepalive: the client pings every keepAliveInterval (default 10 s)
//     with or without calls in flight. Below 10 s grpc would raise it to
//     10 s anyway; the adapter makes that explicit, so servers and proxies
//     enforcing a ping policy (grpc MinTime up to 10 s, pings without
//     streams permitted) accept it. Behind a proxy with a stricter policy,
//     raise keepAliveInterval in the connection string; -1 disables pings,
//     and with them the detection of dead connections under idle
//     subscriptions.
//
//   - Logging: the client logs a warning or an error for most failed tries,
//     so an outage would flood the log; the adapter logs the first of each
//     kind, then one per Options.LogEvery (a minute) with the number it
//     left out ("suppressed").
//
// # Operating notes
//
// Connection strings: kurrentdb://, kurrent://, esdb:// for a node or a
// list of gossip seeds (host:port,host:port,...), and kurrentdb+discover://,
// kurrent+discover://, esdb+discover:// for DNS discovery; TLS is on unless
// tls=false, credentials are user:password@ (sent only over TLS), and the
// client's settings (tlsCAFile, nodePreference, keepAliveInterval,
// keepAliveTimeout, maxDiscoverAttempts, gossipTimeout, defaultDeadline, ...)
// apply. scripts/kurrentdb-up.sh starts a local node or a three-node
// cluster with Docker, in insecure mode on loopback, and prints the string
// to pass to serve --store.
//
// Scale-out: run N stateless API replicas against a three-node KurrentDB
// cluster, each with serve --store kurrentdb://... and its own replica name
// (--replica). Each replica builds all its projections (caseload,
// monitoring, audit indexes) in memory from its own catch-up subscription
// to $all, from the start of the log when it starts: plan each replica's
// memory as for a single embedded-store server, and its start-up time as a
// full replay. Each replica writes its own audit streams,
// audit-<replica>-<yyyymmdd>, so audit appends never contend across
// replicas; signal and subject streams are written with exact expected
// revisions, so two replicas changing the same signal conflict (409) rather
// than overwrite each other. The replicas share the cluster key store
// (adapters/clusterkeys: the keys in this cluster, one master key outside
// it), which the server chooses with this store.
//
// Read-your-writes across replicas: every command answers with the
// position of its last event; a query with min_position=<that position>
// waits (bounded) until the serving replica's projections have applied it,
// so a client that writes through one replica and reads through another
// sees its write. Positions are commit positions: compare them, never
// count them.
//
// Erasure and scavenging: erasure is crypto-shredding. Personal data is
// sealed with the subject's own key, kept by the cluster key store in
// streams of its own; erasing a subject tombstones its key's stream, after
// which its ciphertext in the application's streams is unreadable
// everywhere, in every node and replica at once. The application's streams
// are never deleted or truncated for an erasure, and the log's audit and
// monitoring facts stay intact. Do not delete or truncate them (maxAge,
// maxCount, $tb): projections replay the whole log. The erased keys' own
// events leave the nodes' files at the next scavenge (see
// adapters/clusterkeys for what stays and how to run one). A scavenge
// after a limit on the application's streams would take cases' history,
// audit records (verify then fails) and the recognition of idempotent
// retries with it.
//
// What stays readable: each event's metadata is JSON in clear in every
// node and every KurrentDB backup, beyond the reach of an erasure: the
// actor's id and role, request, correlation and causation
// ids, network, occurred-at, schema version and the idempotency
// fingerprint (a keyed digest); so are stream names, event types, the
// fields kept in clear for monitoring, and the access records (ids, roles,
// views, purposes, outcomes, client addresses). They are pseudonymous: keep
// KurrentDB's backups as the audit trail is kept.
//
// Limits: positions are not dense, so "how many events" is never a
// difference of positions; each replica holds one $all subscription (and
// replays from the start on restart); an idempotent retry with any or
// stream_exists is recognised among the stream's last 64 events only; one
// append is bounded by the port's limits (eventlog.MaxAppendBytes, 1 MiB,
// counted as KurrentDB counts it) and by the server's maximum append size
// (an append over it is ErrAppendTooLarge). The server's MaxAppendSize
// must therefore not be set below 1 MiB (1048576), the default of the
// releases before late 2025 (later ones default to more); the audit writer
// also splits a batch that a server set lower refuses.
// The adapter needs no
// server-side projections (scripts/kurrentdb-up.sh runs without them); if
// system projections run, their link events are skipped like every system
// event.
//
// Known client issues the adapter cannot reach: after a not-leader answer
// the v4 client connects to the named leader itself, and if that node then
// fails to answer, it drops the new connection without closing it; a call
// already inside a client when it gives up connecting can stay blocked
// there (the adapter abandons it at its deadline).
package kurrentdb
