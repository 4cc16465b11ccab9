#!/usr/bin/env bash
# Event store benchmarks in one run: durable appends through the port with 1
# and 64 writers (to their own streams, and to a new stream each time), the raw-file group-commit baseline (the disk's limit), a
# replay of 1,000,000 events through ReadAll, and cold reads of whole
# streams. Prints the summary lines last; BENCHTIME overrides the 5s per
# benchmark (the 1M-event store is built once, outside the timers).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
go test -run '^$' \
  -bench 'BenchmarkAppend1$|BenchmarkAppend64$|BenchmarkAppendNew64$|BenchmarkRawFile64$|BenchmarkReplay1M$|BenchmarkReadStream$' \
  -benchtime "${BENCHTIME:-5s}" -timeout 20m ./adapters/pebblestore | tee "$out"

# metric NAME UNIT: the value reported in UNIT by benchmark NAME.
metric() {
  awk -v b="$1" -v u="$2" '$1 ~ "^"b"(-[0-9]+)?$" { for (i = 1; i < NF; i++) if ($(i+1) == u) print $i }' "$out" | tail -1
}
a1=$(metric BenchmarkAppend1 events/s)
a64=$(metric BenchmarkAppend64 events/s)
anew=$(metric BenchmarkAppendNew64 events/s)
raw=$(metric BenchmarkRawFile64 events/s)
rep=$(metric BenchmarkReplay1M events/s)
rs=$(metric BenchmarkReadStream µs/stream)
for v in "$a1" "$a64" "$anew" "$raw" "$rep" "$rs"; do
  if [ -z "$v" ]; then
    echo "bench-store: a benchmark reported nothing" >&2
    exit 1
  fi
done
echo
printf 'readstream (10 scattered events, cold): %.0f µs/stream\n' "$rs"
printf 'append1: %.0f events/s\n' "$a1"
printf 'append64: %.0f events/s\n' "$a64"
printf 'appendnew64: %.0f events/s\n' "$anew"
printf 'rawfile64: %.0f events/s\n' "$raw"
awk -v a="$a64" -v r="$raw" 'BEGIN { printf "ratio64: %.2f\n", a / r }'
printf 'replay: %.0f events/s\n' "$rep"
