// Package deploy is the deployment kit, checked by this package's tests:
//
//   - Dockerfile: a multi-stage build of a static binary on an empty base,
//     run as a non-root user with a read-only root file system (no Docker
//     engine runs where this project is built, so the test lints it);
//   - buurtsignaal.service: a systemd unit with its hardening options;
//   - alerts.yml: Prometheus alerting rules (unanswered acute signals,
//     signals at 3x their norm, overdue growth, a replica not ready, an
//     unreachable event store, projection lag, audit write failures, slow
//     fsyncs, append errors, disk space, 5xx answers, backup age);
//   - dashboard.json: a Grafana dashboard for coordinators and operators;
//   - haproxy.cfg: HAProxy in front of three stateless replicas on one
//     KurrentDB cluster (round robin, readiness checks on /readyz, retries
//     only of connections that failed, TLS on the front), checked by
//     HAProxy itself where it is installed (make test installs it).
//
// The tests parse each file and check that every metric the rules and the
// dashboard use is one the server exports.
package deploy
