#!/usr/bin/env bash
# Lease storm: N tokens (each with a lease) made within seconds of each other, all expiring in
# the same minute; how long until the server has revoked every one, while a read benchmark runs
# against it (p99 beside its baseline); then the start-up time of a server holding N leases.
#   bench/leases/storm.sh [N, default 100000]
# Needs wrk. Uses a data directory with the key-file seal (not dev mode: the restart must keep
# the leases). Prints Markdown for docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-100000}
TTL=${LEASE_TTL:-90}
BIN=${SIGIL_BIN_DIR:-build/bin}
WORK=$(mktemp -d /tmp/sigil-storm-XXXXXX)
trap 'kill $SIGIL_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
head -c 32 /dev/urandom > "$WORK/seal.key"
chmod 600 "$WORK/seal.key"
start() {
  "$BIN/sigil" server --data-dir "$WORK/data" --seal-key-file "$WORK/seal.key" --listen 127.0.0.1:0 --log-level warn \
    > "$WORK/sigil.out" 2> "$WORK/sigil.err" &
  SIGIL_PID=$!
  for _ in $(seq 600); do grep -q 'listening on' "$WORK/sigil.out" 2>/dev/null && break; sleep 0.05; done
  URL=$(grep -o 'https://[0-9.:]*' "$WORK/sigil.out" | head -1)
  CA=$(grep -o 'CA certificate: [^)]*' "$WORK/sigil.out" | cut -d' ' -f3)
}
T0=$(date +%s.%N)
start
echo "first start: $(echo "$(date +%s.%N) - $T0" | bc) s"
export SIGIL_TOKEN=$(cat "$(grep -o 'the root token is in [^ ]*' "$WORK/sigil.out" | cut -d' ' -f6)")
AUTH="X-Vault-Token: $SIGIL_TOKEN"
NS=/api/v1/namespaces/default/secrets
curl -sf --cacert "$CA" -H "Authorization: Bearer $SIGIL_TOKEN" -X POST -H 'Content-Type: application/json' "$URL$NS" \
  -d "{\"metadata\":{\"name\":\"bench-get\"},\"data\":{\"value\":\"$(head -c 1026 /dev/zero | base64 -w0)\"}}" > /dev/null

count() {  # leases under auth/token/create/ (404: none); retried until the server answers
  local code
  for _ in $(seq 30); do
    code=$(curl -s -o "$WORK/list.json" -w '%{http_code}' --cacert "$CA" -H "$AUTH" -X LIST \
      "$URL/v1/sys/leases/lookup/auth/token/create/" || true)
    if [ "$code" = 404 ]; then echo 0; return; fi
    if [ "$code" = 200 ]; then python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["data"]["keys"]))' "$WORK/list.json"; return; fi
    echo "count: HTTP $code" >&2
    sleep 1
  done
  echo "count: the server does not answer" >&2
  exit 1
}
read_bench() {  # seconds -> "rps p50 p99"
  wrk -t2 -c16 -d"$1"s --latency -s bench/http/get.lua "$URL$NS/bench-get" 2>&1 |
    awk '/Requests\/sec/ {r=$2} $1=="50%" {p50=$2} $1=="99%" {p99=$2} END {print r, p50, p99}'
}
echo "baseline read (16 connections, 10 s): $(read_bench 10)"

# Make N tokens as fast as possible; each expires TTL s after it was made.
MADE=0
T_MAKE=$(date +%s.%N)
while [ "$MADE" -lt "$N" ]; do
  LEASE_TTL=${TTL}s wrk -t2 -c32 -d5s -s bench/leases/token_create.lua "$URL/v1/auth/token/create" > /dev/null 2>&1
  MADE=$(count)
done
T_MADE=$(date +%s.%N)
echo "made $MADE tokens (each with its lease) in $(echo "$T_MADE - $T_MAKE" | bc) s"
# Wait for the first expiry, then measure reads while the storm is revoked.
FIRST_EXPIRY=$(echo "$T_MAKE + $TTL" | bc)
sleep "$(echo "$FIRST_EXPIRY - $(date +%s.%N)" | bc | sed 's/^-.*/0/')"
LAST_EXPIRY=$(echo "$T_MADE + $TTL" | bc)
read_bench 30 > "$WORK/during.txt" &
READ_PID=$!
while :; do
  LEFT=$(count)
  echo "  $(printf '%.1f' "$(echo "$(date +%s.%N) - $FIRST_EXPIRY" | bc)") s after the first expiry: $LEFT leases left" >&2
  [ "$LEFT" -gt 0 ] || break
  sleep 2
done
T_DONE=$(date +%s.%N)
wait $READ_PID
echo "all revoked $(echo "$T_DONE - $LAST_EXPIRY" | bc) s after the last expiry ($(echo "$T_DONE - $FIRST_EXPIRY" | bc) s after the first)"
echo "read during the storm (16 connections, 30 s): $(cat "$WORK/during.txt")"

# Start-up with N leases in the store: make them again with a long TTL, restart, time it.
MADE=0
while [ "$MADE" -lt "$N" ]; do
  LEASE_TTL=24h wrk -t2 -c32 -d5s -s bench/leases/token_create.lua "$URL/v1/auth/token/create" > /dev/null 2>&1
  MADE=$(count)
done
kill $SIGIL_PID; wait $SIGIL_PID 2>/dev/null || true
T0=$(date +%s.%N)
start
echo "start-up with $MADE leases in the store: $(echo "$(date +%s.%N) - $T0" | bc) s (RSS after start: $(ps -o rss= -p $SIGIL_PID) KiB)"
