#!/usr/bin/env bash
# ocsp_load.sh — OCSP responder throughput on loopback with wrk, warm and cold.
#
# Issues a generator batch of DEVICES certificates into a fresh data directory, starts
# `certmill serve`, and drives it with wrk (Debian package `wrk`):
#   - warm: GET /ocsp/<request> (RFC 5019: SHA-1 CertID, no nonce) cycling over every
#     certificate after one pass that fills the responder's cache;
#   - cold: POST /ocsp with a nonce: every answer is looked up in the store and signed afresh.
# Both the server and wrk share this machine's cores; wrk runs WRK_THREADS threads.
#
# Usage: benches/ocsp_load.sh            Env: DEVICES (10000), DURATION (10s), CONNECTIONS (64),
#        WRK_THREADS (1), CERTMILL (target/release/certmill, built if missing), PORT (18480).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CERTMILL=${CERTMILL:-$ROOT/target/release/certmill}
DEVICES=${DEVICES:-10000}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
WRK_THREADS=${WRK_THREADS:-1}
PORT=${PORT:-18480}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }
[ -x "$CERTMILL" ] || (cd "$ROOT" && cargo build --release --quiet)

WORK=$(mktemp -d -t certmill-ocsp-XXXXXX)
SERVER=
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

echo "issuing $DEVICES certificates ..." >&2
printf 'bench-password-1\n' > "$WORK/pw"
"$CERTMILL" --data "$WORK/data" issue --profile ecc-device --generator mac --count "$DEVICES" \
  --param startValue=00:1A:2B:00:00:00 --param deviceClass=Aircraft \
  --password-file "$WORK/pw" --out "$WORK/batch.zip" > "$WORK/issue.log"
unzip -p "$WORK/batch.zip" manifest.csv > "$WORK/manifest.csv"
python3 "$ROOT/benches/ocsp/requests.py" "$WORK/data/ca/issuing.crt" "$WORK/manifest.csv" "$WORK/req" >&2

CERTMILL_ADMIN_PASSWORD=bench-admin-password "$CERTMILL" --data "$WORK/data" serve \
  --listen "127.0.0.1:$PORT" > "$WORK/serve.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do
  grep -q "listening on" "$WORK/serve.log" && break
  sleep 0.1
done
URL="http://127.0.0.1:$PORT"

echo "openssl speed (ecdsap256 sign, 1 core) for the ratio:" >&2
SPEED=$(openssl speed -seconds 3 ecdsap256 2>/dev/null | awk '/256 bits ecdsa \(nistp256\)/ {print $(NF-1)}')
echo "ecdsa_p256_signs_per_second_per_core: $SPEED"

export OCSP_PATHS="$WORK/req/get-paths.txt" OCSP_BODY="$WORK/req/post-nonce.der"
# What is measured must be real answers: one of each kind, checked by openssl.
curl -sS "$URL$(head -1 "$OCSP_PATHS")" -o "$WORK/get.der"
curl -sS --data-binary "@$OCSP_BODY" -H 'Content-Type: application/ocsp-request' "$URL/ocsp" -o "$WORK/post.der"
for kind in get post; do
  printf '%s answer: ' "$kind"
  openssl ocsp -respin "$WORK/$kind.der" -CAfile "$WORK/data/ca/chain.pem" -resp_text 2>&1 \
    | grep -E 'Cert Status|Response verify' | tr -s ' \n' ' '
  echo
done
echo "warm-up: one pass over every certificate fills the cache ..." >&2
wrk -t1 -c16 -d"$(( DEVICES / 2000 + 2 ))s" -s "$ROOT/benches/ocsp/get.lua" "$URL" > /dev/null
echo "== warm: GET, cached answers ($CONNECTIONS connections, $DURATION)"
wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$ROOT/benches/ocsp/get.lua" "$URL"
echo "== cold: POST with a nonce, every answer signed ($CONNECTIONS connections, $DURATION)"
wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$ROOT/benches/ocsp/post.lua" "$URL/ocsp"
