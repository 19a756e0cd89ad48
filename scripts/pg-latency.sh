#!/usr/bin/env bash
# Mean latency of an authenticated API read on a PostgreSQL store (docs/PERFORMANCE.md).
#
#   scripts/pg-latency.sh STORE_URL [BINARY]
#
# Starts one server on STORE_URL (postgres://…; its schema is used as it is: point it at an
# empty database or schema), logs in, warms up with 20 requests, then times 300 sequential
# `GET /api/v1/authorities/allowed`. Uses target/release/certmill unless BINARY is given.
set -euo pipefail
store=${1:?STORE_URL}
bin=${2:-$(pwd)/target/release/certmill}
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
CERTMILL_ADMIN_PASSWORD=bench-admin-password "$bin" --data "$work/data" --store "$store" \
  serve --listen 127.0.0.1:0 >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 1 300); do
  grep -q "certmill listening on" "$work/out" 2>/dev/null && break
  sleep 0.1
done
base=$(sed -n 's/^certmill listening on //p' "$work/out")
token=$(curl -s -X POST -H 'Content-Type: application/json' \
  -d '{"username":"admin","password":"bench-admin-password"}' "$base/auth/pwd" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')
python3 - "$base" "$token" <<'PY'
import sys, time, urllib.request
base, token = sys.argv[1], sys.argv[2]
def get(path):
    request = urllib.request.Request(base + path, headers={"Authorization": "Bearer " + token})
    return urllib.request.urlopen(request).read()
for _ in range(20):
    get("/api/v1/authorities/allowed")
n = 300
started = time.perf_counter()
for _ in range(n):
    get("/api/v1/authorities/allowed")
print(f"{(time.perf_counter() - started) / n * 1000:.2f} ms per GET /api/v1/authorities/allowed")
PY
