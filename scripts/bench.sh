#!/usr/bin/env bash
# make bench: every performance comparison side by side, in one run on this
# machine, each measured against its peer or limit in the same run:
#   1. the store: durable appends with 64 writers vs a raw file with group
#      commit (the disk's limit), and a replay of 1M events (bench-store.sh);
#   2. the peer: PostgreSQL with an events table and 64 pgbench clients, one
#      event per transaction, vs our store with 64 writers doing the same
#      (a new stream per event) (bench-postgres.sh);
#   3. HTTP: raise-signal commands from 64 clients through the real server
#      (cmd/buurtsignaal-load), and audited caseload reads vs a no-op handler;
#   4. the replay of just over 1M events into all read models (a rebuild);
#   5. scale: memory, start-up and throughput as the log grows to 2M events
#      (scripts/benchscale, make bench-scale).
# It prints one markdown table, then the summary lines last. Each part's own
# output goes to stderr. RAISE_SECONDS (20) and AUDIT_SECONDS (10) override
# the HTTP runs' lengths, BENCH_SCALE_FLAGS passes flags to the scale part.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# field FILE KEY: the value after "KEY: " in FILE (first word).
field() { awk -v k="$2:" '$1 == k { v = $2 } END { print v }' "$1"; }

echo "== store (bench-store.sh)" >&2
bash scripts/bench-store.sh >"$work/store.txt" 2>&1 || { cat "$work/store.txt" >&2; exit 1; }
grep -E '^[a-z0-9_]+:' "$work/store.txt" >&2

echo "== peer (bench-postgres.sh)" >&2
bash scripts/bench-postgres.sh >"$work/pg.txt"
cat "$work/pg.txt" >&2

echo "== HTTP raise (buurtsignaal-load, 64 clients)" >&2
go build -o "$work/buurtsignaal" ./cmd/buurtsignaal
go build -o "$work/buurtsignaal-load" ./cmd/buurtsignaal-load
"$work/buurtsignaal-load" -bin "$work/buurtsignaal" -mix raise -concurrency 64 \
  -duration "${RAISE_SECONDS:-20}s" >"$work/raise.txt" 2>"$work/raise.err" || { cat "$work/raise.err" >&2; exit 1; }
cat "$work/raise.txt" >&2

echo "== audited caseload reads vs no-op (TestBenchAudit, 64 clients)" >&2
BUURTSIGNAAL_BENCH_AUDIT=1 BENCH_DURATION="${AUDIT_SECONDS:-10}s" \
  go test -count=1 -v -run '^TestBenchAudit$' ./cmd/buurtsignaal >"$work/audit.txt" 2>&1 || { cat "$work/audit.txt" >&2; exit 1; }
grep -E '^(noop|audited_caseload|ratio|p99_ms):' "$work/audit.txt" | tee "$work/audit.sum" >&2

echo "== replay into projections (bench-projections.sh)" >&2
bash scripts/bench-projections.sh >"$work/proj.txt" 2>&1 || { cat "$work/proj.txt" >&2; exit 1; }
grep -E '^[a-z0-9_]+:' "$work/proj.txt" | tee "$work/proj.sum" >&2

echo "== scale (benchscale: 2M events, full mix, 64 clients)" >&2
# shellcheck disable=SC2086
go run ./scripts/benchscale -bin "$work/buurtsignaal" -load "$work/buurtsignaal-load" ${BENCH_SCALE_FLAGS:-} >"$work/scale.txt" 2>&1 || { cat "$work/scale.txt" >&2; exit 1; }
grep -E '^[a-z0-9_]+:' "$work/scale.txt" | tee "$work/scale.sum" >&2

append64=$(field "$work/store.txt" append64)
raw=$(field "$work/store.txt" rawfile64)
new64=$(field "$work/store.txt" appendnew64)
pg=$(field "$work/pg.txt" postgres_tps)
summary=$(grep '^summary:' "$work/raise.txt")
raise_rps=$(echo "$summary" | sed -E 's/.* rps=([0-9.]+).*/\1/')
raise_p99=$(echo "$summary" | sed -E 's/.* p99_ms=([0-9.]+).*/\1/')
noop=$(field "$work/audit.sum" noop)
audited=$(field "$work/audit.sum" audited_caseload)
audited_p99=$(field "$work/audit.sum" p99_ms)
events=$(field "$work/proj.sum" replay_events)
replay_s=$(field "$work/proj.sum" replay_seconds)
decode=$(field "$work/proj.sum" decode)
ready=$(field "$work/scale.sum" ready_seconds)
rss=$(field "$work/scale.sum" rss_mb)
growth=$(field "$work/scale.sum" rss_growth)
tratio=$(field "$work/scale.sum" throughput_ratio)
sp99=$(field "$work/scale.sum" p99_ms)
serrors=$(field "$work/scale.sum" errors)
rebuild=$(field "$work/scale.sum" rebuild_seconds)
for v in "$append64" "$raw" "$new64" "$pg" "$raise_rps" "$raise_p99" "$noop" "$audited" "$events" "$replay_s" "$decode" \
  "$ready" "$rss" "$growth" "$tratio" "$sp99" "$serrors" "$rebuild"; do
  if [ -z "$v" ]; then
    echo "bench: a part reported nothing" >&2
    exit 1
  fi
done

awk -v a64="$append64" -v raw="$raw" -v new64="$new64" -v pg="$pg" -v rps="$raise_rps" -v p99="$raise_p99" \
  -v noop="$noop" -v aud="$audited" -v ap99="$audited_p99" -v ev="$events" -v rs="$replay_s" -v dec="$decode" \
  -v ready="$ready" -v rss="$rss" -v growth="$growth" -v tratio="$tratio" -v sp99="$sp99" -v serr="$serrors" -v rebuild="$rebuild" '
function met(ok) { return ok ? "met" : "missed" }
BEGIN {
  svp = new64 / pg; svr = a64 / raw; arr = aud / noop; r1m = rs * 1000000 / ev
  print ""
  print "| Measure | Buurtsignaal | Peer or limit, same run | Ratio | Target | |"
  print "|---|---|---|---|---|---|"
  printf "| Durable appends, 64 writers, a new stream each (events/s) | %.0f | PostgreSQL, 64 pgbench clients, one event per transaction: %.0f tps | %.2f | >= 2 | %s |\n", new64, pg, svp, met(svp >= 2)
  printf "| Durable appends, 64 writers (events/s) | %.0f | raw file, group commit + fdatasync: %.0f | %.2f | >= 0.6 | %s |\n", a64, raw, svr, met(svr >= 0.6)
  printf "| HTTP raise signal, 64 clients (req/s) | %.0f | | | >= 10000 | %s |\n", rps, met(rps >= 10000)
  printf "| HTTP raise signal, p99 (ms) | %.2f | | | <= 25 | %s |\n", p99, met(p99 <= 25)
  printf "| Audited caseload reads, 64 clients (req/s; p99 %.2f ms) | %.0f | no-op chi handler: %.0f | %.2f | >= 0.3 | %s |\n", ap99, aud, noop, arr, met(arr >= 0.3)
  printf "| Replay of %d events into all read models, on disk (s) | %.2f | decode only: %.0f events/s | | < 3 (per 1M: %.2f) | %s |\n", ev, rs, dec, r1m, met(r1m < 3)
  printf "| Restart to ready at 2M events (s) | %.2f | | | < 2 | %s |\n", ready, met(ready < 2)
  printf "| RSS under the full mix, 64 clients, 2M events (MB) | %.0f | | | <= 512 | %s |\n", rss, met(rss <= 512)
  printf "| RSS growth, 200k to 2M events | %.2f | | | <= 1.1 | %s |\n", growth, met(growth <= 1.1)
  printf "| Full-mix req/s at 2M events over an empty store | %.2f | | | >= 0.9 | %s |\n", tratio, met(tratio >= 0.9)
  printf "| Full mix at 2M events, 64 clients, p99 (ms) | %.2f | | | <= 50 | %s |\n", sp99, met(sp99 <= 50)
  printf "| Failed requests in the scale runs | %d | | | 0 | %s |\n", serr, met(serr == 0)
  printf "| Full rebuild of 2M events (s) | %.1f | | | | |\n", rebuild
  print ""
  printf "store_vs_postgres: %.2f\n", svp
  printf "store_vs_rawfile: %.2f\n", svr
  printf "raise_rps: %.0f\n", rps
  printf "raise_p99_ms: %.2f\n", p99
  printf "audited_read_ratio: %.2f\n", arr
  printf "replay_1m_s: %.2f\n", r1m
  printf "ready_seconds: %.2f\n", ready
  printf "rss_mb: %.0f\n", rss
  printf "rss_growth: %.2f\n", growth
  printf "throughput_ratio: %.2f\n", tratio
  printf "p99_ms: %.2f\n", sp99
  printf "errors: %d\n", serr
  printf "rebuild_seconds: %.1f\n", rebuild
}'
