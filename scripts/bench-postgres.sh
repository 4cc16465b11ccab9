#!/usr/bin/env bash
# The peer in `make bench`: what a team would build instead of our store.
# PostgreSQL (Debian's packages, installed if missing) in a temporary data
# directory on a free loopback port, with an events table (global position,
# stream id, version, UNIQUE(stream_id, version)), synchronous_commit and
# fsync on; 64 pgbench clients insert one event per transaction, each
# starting a new stream (version 0), the same ~400-byte body as the store
# benchmarks. The server is stopped and its directory removed at the end.
# Prints `postgres_tps: N` last. PGBENCH_SECONDS overrides the 20 s run.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$pgbin" ] || ! command -v pgbench >/dev/null; then
  echo "bench-postgres: installing PostgreSQL from Debian's packages" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql postgresql-contrib >/dev/null
  pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi
pgbench=$(command -v pgbench || echo "$pgbin/pgbench")

# initdb refuses to run as root: run the server as the postgres user then.
run=()
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home /nonexistent postgres
  run=(runuser -u postgres --)
fi

dir=$(mktemp -d)
chmod 755 "$dir"
[ ${#run[@]} -gt 0 ] && chown postgres "$dir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 55432)
stop() {
  "${run[@]}" "$pgbin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT

"${run[@]}" "$pgbin/initdb" -D "$dir/data" -U bench --auth=trust -E UTF8 >/dev/null
"${run[@]}" "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o \
  "-p $port -c listen_addresses=127.0.0.1 -k $dir -c max_connections=100 -c synchronous_commit=on -c fsync=on -c shared_buffers=256MB" \
  start >/dev/null

psql=(psql -h 127.0.0.1 -p "$port" -U bench -d postgres -q -v ON_ERROR_STOP=1)
"${psql[@]}" <<'SQL'
CREATE TABLE events (
  position    bigserial PRIMARY KEY,
  stream_id   text        NOT NULL,
  version     bigint      NOT NULL,
  event_id    uuid        NOT NULL UNIQUE,
  type        text        NOT NULL,
  data        jsonb       NOT NULL,
  metadata    jsonb       NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (stream_id, version)
);
SQL

desc=$(printf 'A%.0s' $(seq 120))
cat >"$dir/insert.sql" <<SQL
INSERT INTO events (stream_id, version, event_id, type, data, metadata) VALUES ('signal-' || gen_random_uuid(), 0, gen_random_uuid(), 'SignalRaised', '{"signal_id":"6f1b8a52-3c1e-4d0a-9a55-8d2f6b1e9c41","subject_id":"1a2b3c4d-3c1e-4d0a-9a55-8d2f6b1e9c41","raised_by":"vol1","source":"buurtsteun","network":"default","neighbourhood":"centrum","categories":["loneliness"],"urgency":"normal","consent":"informed","description":"$desc","raised_at":"2026-11-22T10:00:00Z"}', '{"occurred_at":"2026-11-22T10:00:00Z","actor_id":"actor-1","actor_role":"volunteer","correlation_id":"3f0c1a52-3c1e-4d0a-9a55-8d2f6b1e9c41","request_id":"req-000042","network":"default","schema_version":1}');
SQL

out=$("$pgbench" -h 127.0.0.1 -p "$port" -U bench -n -c 64 -j 2 -T "${PGBENCH_SECONDS:-20}" -f "$dir/insert.sql" postgres)
echo "$out" | grep -E '^(number of (clients|transactions actually processed)|latency average|tps)' >&2
rows=$("${psql[@]}" -At -c 'SELECT count(*) FROM events')
tps=$(echo "$out" | awk '/^tps = / { print $3; exit }')
if [ -z "$tps" ] || [ "$rows" -eq 0 ]; then
  echo "bench-postgres: pgbench reported nothing" >&2
  exit 1
fi
echo "postgres_rows: $rows"
printf 'postgres_tps: %.0f\n' "$tps"
