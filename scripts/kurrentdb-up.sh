#!/usr/bin/env bash
# Start KurrentDB with Docker for the scale-out store: one node or a
# three-node cluster, in insecure mode (no TLS, no users) and published on
# loopback only. For trying the scale-out store and for the real-server
# conformance test, never for real data.
#
#   scripts/kurrentdb-up.sh --single     one node on 127.0.0.1:2113
#   scripts/kurrentdb-up.sh --cluster    three nodes on 127.0.0.1:2111-2113
#   scripts/kurrentdb-up.sh --down       stop and remove them
#
# It waits until the nodes answer, then prints the connection string:
#
#   buurtsignaal serve --store "$(scripts/kurrentdb-up.sh --single)"
#   BUURTSIGNAAL_KURRENTDB_URL="$(scripts/kurrentdb-up.sh --cluster)" \
#     BUURTSIGNAAL_REQUIRE_KURRENTDB=1 go test ./adapters/kurrentdb/
#
# KURRENTDB_IMAGE overrides the image (default kurrentplatform/kurrentdb:latest;
# pin a version for repeatable runs).
set -euo pipefail

IMAGE="${KURRENTDB_IMAGE:-kurrentplatform/kurrentdb:latest}"
NAME=buurtsignaal-kurrentdb
NET=buurtsignaal-kurrentdb
mode="${1:-}"

usage() {
  echo "usage: $0 --single | --cluster | --down" >&2
  exit 2
}

case "$mode" in
--single | --cluster | --down) ;;
*) usage ;;
esac

if ! command -v docker >/dev/null 2>&1; then
  echo "kurrentdb-up: Docker is not installed: this script runs KurrentDB in Docker." >&2
  echo "kurrentdb-up: without Docker, the tests use the in-process test server (adapters/kurrentdb/kurrenttest)." >&2
  exit 1
fi
if ! docker info >/dev/null 2>&1; then
  echo "kurrentdb-up: the docker command is here but no Docker engine answers (is the daemon running, may this user use it?)." >&2
  exit 1
fi

running() { [ -n "$(docker ps -q --filter "name=^$1\$")" ]; }

# wait_ready PORT...: until every node answers its liveness check (120 s at most).
wait_ready() {
  if ! command -v curl >/dev/null 2>&1; then
    echo "kurrentdb-up: curl is missing: not waiting for the nodes to be ready." >&2
    return 0
  fi
  local deadline=$((SECONDS + 120)) port
  for port in "$@"; do
    until curl -fsS -o /dev/null "http://127.0.0.1:$port/health/live"; do
      if ((SECONDS >= deadline)); then
        echo "kurrentdb-up: the node on 127.0.0.1:$port is not ready after 120 s; see: docker logs <container>" >&2
        exit 1
      fi
      sleep 1
    done
  done
}

case "$mode" in
--single)
  if ! running "$NAME"; then
    docker run -d --rm --name "$NAME" -p 127.0.0.1:2113:2113 "$IMAGE" \
      --insecure --run-projections=None --enable-atom-pub-over-http=false >/dev/null
  fi
  wait_ready 2113
  echo "kurrentdb://127.0.0.1:2113?tls=false"
  ;;
--cluster)
  docker network inspect "$NET" >/dev/null 2>&1 || docker network create "$NET" >/dev/null
  seeds="$NAME-1:2113,$NAME-2:2113,$NAME-3:2113"
  for i in 1 2 3; do
    running "$NAME-$i" && continue
    # Nodes reach each other by container name on the network; clients on
    # this machine reach node i on 127.0.0.1:211i, as gossip tells them.
    docker run -d --rm --name "$NAME-$i" --network "$NET" -p "127.0.0.1:211$i:2113" "$IMAGE" \
      --insecure --run-projections=None --enable-atom-pub-over-http=false \
      --cluster-size=3 --discover-via-dns=false --gossip-seed="$seeds" \
      --node-host-advertise-as="$NAME-$i" --replication-host-advertise-as="$NAME-$i" \
      --advertise-host-to-client-as=127.0.0.1 --advertise-node-port-to-client-as="211$i" >/dev/null
  done
  wait_ready 2111 2112 2113
  echo "kurrentdb://127.0.0.1:2111,127.0.0.1:2112,127.0.0.1:2113?tls=false&nodePreference=leader"
  ;;
--down)
  for c in "$NAME" "$NAME-1" "$NAME-2" "$NAME-3"; do
    docker rm -f "$c" >/dev/null 2>&1 || true
  done
  docker network rm "$NET" >/dev/null 2>&1 || true
  ;;
esac
