// Package domain is Buurtsignaal's core: what a signal is and how it may
// change, who may do what, and the ports through which the rest of the
// system reaches what has I/O. It imports only the standard library and
// github.com/google/uuid (TestDomainImportsOnlyTheStandardLibraryAndUUID).
//
// What is here:
//   - the events of every stream (events.go, audit.go, organisation.go,
//     routing.go, notification.go) with their schema versions and the
//     registry that decodes them (registry.go; golden files in
//     testdata/events keep old events decodable);
//   - the signal lifecycle as the pure functions Decide (a command on a
//     state gives events or an error) and Evolve (an event on a state gives
//     the next state) (signal.go);
//   - policy: Authorize, the one place that decides who may do what on
//     which object (policy.go);
//   - rules without I/O: routing rules (routing.go), response norms and
//     working days (norms.go), notification targets (notification.go), the
//     language of an answer (language.go);
//   - error kinds, mapped to HTTP statuses in one table by the API
//     (errors.go);
//   - ports, implemented by adapters: Cipher, BlindIndex and SubjectIndex
//     (keys and matching) and KeyStore, the three as a key store gives
//     them (the local and the cluster key store), Auditor (the access log), Outbox (notifications
//     between the log and their delivery) (ports.go, notification.go); the
//     event log's port is the eventlog package.
//
// The write side that uses these (load, seal, decide, append) is domain/app.
// Domain code never reads the clock or makes ids itself: callers pass the
// time and ids in.
package domain
