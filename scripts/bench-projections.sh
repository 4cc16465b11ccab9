#!/usr/bin/env bash
# Projection benchmarks in one run: replay of just over 1,000,000 realistic
# events (103,500 signals through their lifecycles) from the embedded store into all
# projections, the same events decoded without projecting (the limit), and
# caseload queries with 50,000 open signals. Prints the summary lines last.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
go test -run '^$' -bench 'BenchmarkReplayProjections$|BenchmarkDecodeOnly$|BenchmarkCaseload$' \
  -benchtime "${BENCHTIME:-3x}" -timeout 30m ./projections | tee "$out"
metric() { awk -v b="$1" -v u="$2" '$1 ~ "^"b"(-[0-9]+)?$" { for (i = 1; i < NF; i++) if ($(i+1) == u) print $i }' "$out" | tail -1; }
replay=$(metric BenchmarkReplayProjections events/s)
secs=$(metric BenchmarkReplayProjections s/replay)
events=$(metric BenchmarkReplayProjections events)
decode=$(metric BenchmarkDecodeOnly events/s)
p99=$(metric BenchmarkCaseload p99_ms)
rss=$(metric BenchmarkCaseload rss_bytes/event)
echo
printf 'replay_events: %.0f\n' "$events"
printf 'replay_seconds: %.2f\n' "$secs"
printf 'replay: %.0f events/s\n' "$replay"
printf 'decode: %.0f events/s\n' "$decode"
awk -v a="$replay" -v d="$decode" 'BEGIN { printf "replay_ratio: %.2f\n", a / d }'
printf 'caseload_p99_ms: %.2f\n' "$p99"
printf 'rss_bytes_per_event: %.0f\n' "$rss"
