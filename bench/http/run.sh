#!/usr/bin/env bash
# HTTP benchmark: sigil's Kubernetes Secret GET/PUT/LIST over TLS at 1, 16 and 64 connections,
# authenticated with the dev server's root token (bearer),
# side by side with nginx serving a static file of the same size over TLS (the ceiling for a
# small HTTPS response on this machine). Needs wrk and nginx (Debian packages).
#   bench/http/run.sh [seconds per run, default 10] [root|rbac-audit]
# root (default): requests carry the root token (system:masters: RBAC's first binding allows).
# rbac-audit: requests carry a token-file user's token whose rights come from RoleBindings to
#   the aggregated ClusterRole "edit" (RBAC walks every binding), and every request is written
#   to an audit trail at Metadata level (fdatasync per batch) in the work directory.
# rbac-audit-nofsync: the same with audit.fsync: false (lines reach the page cache only).
# rbac: the RBAC user without audit.
# vault: the Vault face with the root token: a KV version 2 read and write (hvac's requests), the
#   same Secret read through the kubernetes/ mount and through the Kubernetes face, and transit
#   encrypt of 1 KiB; raw AES-GCM of 1 KiB from the crypto benchmark is printed after the table.
# Prints a Markdown table for docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-10}
MODE=${2:-root}
BIN=${SIGIL_BIN_DIR:-build/bin}
WORK=$(mktemp -d /tmp/sigil-httpbench-XXXXXX)
trap 'kill $SIGIL_PID $NGINX_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT

CONFIG=()
if [ "$MODE" != root ] && [ "$MODE" != vault ]; then
  BENCH_TOKEN=$(head -c 32 /dev/urandom | base64 -w0 | tr -d '/+=')
  echo "$BENCH_TOKEN,bench,u-bench,bench-group" > "$WORK/tokens.csv"
  chmod 600 "$WORK/tokens.csv"
  case "$MODE" in
    rbac) AUDIT="{enabled: false}" ;;
    rbac-audit) AUDIT="{log_path: $WORK/audit.log}" ;;
    rbac-audit-nofsync) AUDIT="{log_path: $WORK/audit.log, fsync: false}" ;;
    *) echo "unknown mode $MODE" >&2; exit 2 ;;
  esac
  printf 'auth: {token_file: %s}\naudit: %s\n' "$WORK/tokens.csv" "$AUDIT" > "$WORK/config.yaml"
  CONFIG=(--config "$WORK/config.yaml")
fi
"$BIN/sigil" server --dev --listen 127.0.0.1:0 --log-level warn "${CONFIG[@]}" > "$WORK/sigil.out" 2> "$WORK/sigil.err" &
SIGIL_PID=$!
for _ in $(seq 50); do grep -q KUBECONFIG "$WORK/sigil.out" && break; sleep 0.1; done
URL=$(grep -o 'https://[0-9.:]*' "$WORK/sigil.out" | head -1)
CA=$(grep -o 'VAULT_CACERT=.*' "$WORK/sigil.out" | cut -d= -f2)
for _ in $(seq 50); do grep -q 'Root token' "$WORK/sigil.out" && break; sleep 0.1; done
export SIGIL_TOKEN=$(grep -o 'sgl_[A-Za-z0-9_-]*' "$WORK/sigil.out")
AUTH="Authorization: Bearer $SIGIL_TOKEN"
NS=/api/v1/namespaces/default/secrets
curl -sf --cacert "$CA" -H "$AUTH" -X POST -H 'Content-Type: application/json' "$URL$NS" \
  -d "{\"metadata\":{\"name\":\"bench-get\"},\"data\":{\"value\":\"$(head -c 1026 /dev/zero | base64 -w0)\"}}" > /dev/null
for i in $(seq 0 63); do
  curl -sf --cacert "$CA" -H "$AUTH" -X POST -H 'Content-Type: application/json' "$URL$NS" -d "{\"metadata\":{\"name\":\"bench-put-$i\"}}" > /dev/null
done
for i in $(seq 100); do
  curl -sf --cacert "$CA" -H "$AUTH" -X POST -H 'Content-Type: application/json' "$URL/api/v1/namespaces/kube-public/secrets" \
    -d "{\"metadata\":{\"name\":\"l$i\"},\"data\":{\"v\":\"dmFsdWU=\"}}" > /dev/null
done
if [ "$MODE" != root ] && [ "$MODE" != vault ]; then
  for ns in default kube-public; do
    curl -sf --cacert "$CA" -H "$AUTH" -X POST -H 'Content-Type: application/json' \
      "$URL/apis/rbac.authorization.k8s.io/v1/namespaces/$ns/rolebindings" \
      -d '{"metadata":{"name":"bench-edit"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"edit"},"subjects":[{"apiGroup":"rbac.authorization.k8s.io","kind":"Group","name":"bench-group"}]}' > /dev/null
  done
  export SIGIL_TOKEN=$BENCH_TOKEN
  AUTH="Authorization: Bearer $SIGIL_TOKEN"
fi
SIZE=$(curl -sf --cacert "$CA" -H "$AUTH" "$URL$NS/bench-get" | wc -c)
if [ "$MODE" = vault ]; then
  VALUE=$(head -c 1026 /dev/zero | base64 -w0)
  curl -sf --cacert "$CA" -H "X-Vault-Token: $SIGIL_TOKEN" -X POST "$URL/v1/secret/data/bench-get" \
    -d "{\"data\":{\"value\":\"$VALUE\"}}" > /dev/null
  curl -sf --cacert "$CA" -H "X-Vault-Token: $SIGIL_TOKEN" -X POST "$URL/v1/sys/mounts/transit" -d '{"type":"transit"}' > /dev/null
  curl -sf --cacert "$CA" -H "X-Vault-Token: $SIGIL_TOKEN" -X POST "$URL/v1/transit/keys/bench" -d '{}' > /dev/null
  SIZE=$(curl -sf --cacert "$CA" -H "X-Vault-Token: $SIGIL_TOKEN" "$URL/v1/secret/data/bench-get" | wc -c)
fi

# nginx with the same kind of certificate, serving a file of the same size.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/n.key" -out "$WORK/n.crt" \
  -subj /CN=127.0.0.1 -days 1 2> /dev/null
head -c "$SIZE" /dev/zero | tr '\0' 'x' > "$WORK/file.json"
chmod 755 "$WORK"; chmod 644 "$WORK/file.json"  # readable by nginx's worker user
NPORT=$((20000 + RANDOM % 20000))
cat > "$WORK/nginx.conf" <<CONF
worker_processes 2;
pid $WORK/nginx.pid;
error_log $WORK/nginx.err;
events { worker_connections 1024; }
http {
  access_log off;
  server {
    listen 127.0.0.1:$NPORT ssl;
    ssl_certificate $WORK/n.crt;
    ssl_certificate_key $WORK/n.key;
    location / { root $WORK; }
  }
}
CONF
nginx -c "$WORK/nginx.conf" -g 'daemon off;' &
NGINX_PID=$!
sleep 0.5

run() {  # name url script connections
  local out
  out=$(wrk -t "$(( $4 < 2 ? 1 : 2 ))" -c "$4" -d "${SECS}s" --latency -s "$3" "$2" 2>&1)
  local rps p50 p99
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  if echo "$out" | grep -q "Non-2xx"; then rps="$rps (non-2xx: $(echo "$out" | awk '/Non-2xx/ {print $NF}'))"; fi
  echo "| $1 | $4 | $rps | $p50 | $p99 |"
}

echo "Mode: $MODE. Response size: $SIZE bytes; $SECS s per run; $(nproc) cores; wrk and the servers share the machine."
echo
echo "| request | connections | requests/s | p50 | p99 |"
echo "|---|---|---|---|---|"
for c in 1 16 64; do
  if [ "$MODE" = vault ]; then
    run "nginx static file" "https://127.0.0.1:$NPORT/file.json" bench/http/get.lua $c
    run "Kubernetes face: GET secret" "$URL$NS/bench-get" bench/http/get.lua $c
    run "Vault face: KV v2 read (secret/)" "$URL/v1/secret/data/bench-get" bench/http/vault_get.lua $c
    run "Vault face: the Secret via kubernetes/" "$URL/v1/kubernetes/data/default/bench-get" bench/http/vault_get.lua $c
    run "Vault face: KV v2 write (durable)" "$URL/v1/secret/data/" bench/http/vault_put.lua $c
    run "Vault face: transit encrypt 1 KiB" "$URL/v1/transit/encrypt/bench" bench/http/transit_encrypt.lua $c
    continue
  fi
  run "nginx static file" "https://127.0.0.1:$NPORT/file.json" bench/http/get.lua $c
  run "sigil GET secret" "$URL$NS/bench-get" bench/http/get.lua $c
  run "sigil PUT secret (durable)" "$URL$NS" bench/http/put.lua $c
  run "sigil LIST 100 secrets" "$URL/api/v1/namespaces/kube-public/secrets" bench/http/list.lua $c
done
if [ "$MODE" = vault ] && [ -x build/bench/sigil_bench ]; then
  echo
  echo "Raw AES-256-GCM of 1 KiB, one thread (build/bench/sigil_bench --benchmark_filter=AesGcmSeal1KiB):"
  build/bench/sigil_bench --benchmark_filter='AesGcmSeal1KiB' --benchmark_min_time=0.5 2>/dev/null | grep BM_
fi
if [ -f "$WORK/audit.log" ]; then
  echo
  echo "Audit trail: $(wc -l < "$WORK/audit.log") events; $("$BIN/sigil" audit verify "$WORK/audit.log")"
fi
