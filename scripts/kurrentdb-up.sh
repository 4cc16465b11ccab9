#!/usr/bin/env bash
# Start KurrentDB with Docker for the scale-out store, on loopback only, in
# insecure mode (no TLS, no users): for trying it out and for the real-server
# conformance test, never for real data.
#
#   scripts/kurrentdb-up.sh --single     one node on 127.0.0.1:2113
#   scripts/kurrentdb-up.sh --cluster    three nodes on 127.0.0.1:2111-2113
#   scripts/kurrentdb-up.sh --down       stop and remove them
#
# Then: BUURTSIGNAAL_KURRENTDB_URL=<printed string> go test ./adapters/kurrentdb/
#  and: buurtsignaal serve --store <printed string>
set -euo pipefail
IMAGE="${KURRENTDB_IMAGE:-kurrentplatform/kurrentdb:latest}"
mode="${1:---single}"

if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
  echo "kurrentdb-up: needs a running Docker engine (none here); see README 'Scale-out'." >&2
  exit 1
fi

case "$mode" in
--single)
  docker run -d --rm --name buurtsignaal-kurrentdb -p 127.0.0.1:2113:2113 "$IMAGE" \
    --insecure --run-projections=None --enable-atom-pub-over-http=false >/dev/null
  echo "kurrentdb://127.0.0.1:2113?tls=false"
  ;;
--cluster)
  docker network create buurtsignaal-kurrentdb >/dev/null 2>&1 || true
  seeds=""
  for i in 1 2 3; do
    docker run -d --rm --name "buurtsignaal-kurrentdb-$i" --network buurtsignaal-kurrentdb \
      -p "127.0.0.1:211$i:2113" "$IMAGE" --insecure --cluster-size=3 \
      --discover-via-dns=false --gossip-seed="buurtsignaal-kurrentdb-1:2113,buurtsignaal-kurrentdb-2:2113,buurtsignaal-kurrentdb-3:2113" \
      --node-ip=0.0.0.0 --replication-ip=0.0.0.0 --advertise-host-to-client-as=127.0.0.1 \
      --advertise-node-port-to-client-as="211$i" >/dev/null
  done
  echo "kurrentdb://127.0.0.1:2111,127.0.0.1:2112,127.0.0.1:2113?tls=false&nodePreference=leader"
  ;;
--down)
  for c in buurtsignaal-kurrentdb buurtsignaal-kurrentdb-1 buurtsignaal-kurrentdb-2 buurtsignaal-kurrentdb-3; do
    docker rm -f "$c" >/dev/null 2>&1 || true
  done
  docker network rm buurtsignaal-kurrentdb >/dev/null 2>&1 || true
  ;;
*)
  echo "usage: $0 --single | --cluster | --down" >&2
  exit 2
  ;;
esac
