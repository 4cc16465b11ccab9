#!/usr/bin/env bash
# Event store benchmarks in one run: durable appends through the port with 1
# and 64 writers, the raw-file group-commit baseline (the disk's limit), and
# a replay of 1,000,000 events through ReadAll. Prints the summary lines last.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
go test -run '^$' -bench 'BenchmarkAppend1$|BenchmarkAppend64$|BenchmarkRawFile64$|BenchmarkReplay1M$' \
  -benchtime "${BENCHTIME:-5s}" -timeout 20m ./adapters/pebblestore | tee "$out"
metric() { awk -v b="$1" '$1 ~ "^"b"(-[0-9]+)?$" { for (i = 1; i < NF; i++) if ($(i+1) == "events/s") print $i }' "$out" | tail -1; }
a1=$(metric BenchmarkAppend1)
a64=$(metric BenchmarkAppend64)
raw=$(metric BenchmarkRawFile64)
rep=$(metric BenchmarkReplay1M)
echo
printf 'append1: %.0f events/s\n' "$a1"
printf 'append64: %.0f events/s\n' "$a64"
printf 'rawfile64: %.0f events/s\n' "$raw"
awk -v a="$a64" -v r="$raw" 'BEGIN { printf "ratio64: %.2f\n", a / r }'
printf 'replay: %.0f events/s\n' "$rep"
