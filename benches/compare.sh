#!/usr/bin/env bash
# compare.sh — the same ECC device job through the openssl CLI, Python `cryptography` and
# `certmill bench`, in one run, with the throughputs and ratios side by side.
#
# The job (see benches/peers/): per device a server-side EC P-256 key, a leaf signed by an
# EC P-256 issuing CA, a PKCS#12 with OpenSSL 3 defaults (PBES2/PBKDF2-SHA256/AES-256-CBC,
# 2048 iterations, SHA-256 MAC), all into one ZIP; 2 workers for the peers.
#   - openssl CLI: benches/peers/openssl_cli.sh, one process per step (req -newkey, rand,
#     x509 -req, pkcs12 -export), 2 devices at a time via xargs -P 2;
#   - Python: benches/peers/py_cryptography.py, a multiprocessing pool of 2 (skipped when
#     python3 has no `cryptography`);
#   - certmill: `certmill bench --profile ecc-device --kind csv` (end to end, all cores).
#
# Usage: benches/compare.sh [OPENSSL_N [PYTHON_N [CERTMILL_N]]]   (defaults 200, 2000, 20000)
# Env:   CERTMILL (the binary; default target/release/certmill, built if missing),
#        OUT (work directory; default a new temporary directory, removed at the end).
set -euo pipefail

OPENSSL_N=${1:-200}
PYTHON_N=${2:-2000}
CERTMILL_N=${3:-20000}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CERTMILL=${CERTMILL:-$ROOT/target/release/certmill}
if [ -z "${OUT:-}" ]; then
  OUT=$(mktemp -d -t certmill-compare-XXXXXX)
  trap 'rm -rf "$OUT"' EXIT
fi
mkdir -p "$OUT"

if [ ! -x "$CERTMILL" ]; then
  (cd "$ROOT" && cargo build --release --quiet)
fi

rate() {  # the last `devices_per_second: X` line of a peer's output
  sed -n 's/^devices_per_second: *//p' "$1" | tail -1
}

echo "openssl CLI: $OPENSSL_N devices ..." >&2
"$HERE/peers/openssl_cli.sh" "$OPENSSL_N" "$OUT/openssl" > "$OUT/openssl.log"
OPENSSL_RATE=$(rate "$OUT/openssl.log")

PYTHON_RATE=""
if python3 -c 'import cryptography' 2>/dev/null; then
  echo "Python cryptography: $PYTHON_N devices ..." >&2
  python3 "$HERE/peers/py_cryptography.py" "$PYTHON_N" "$OUT/python" > "$OUT/python.log"
  PYTHON_RATE=$(rate "$OUT/python.log")
else
  echo "Python cryptography: not installed, skipped" >&2
fi

echo "certmill bench: $CERTMILL_N devices ..." >&2
"$CERTMILL" --data "$OUT/unused-data" bench --profile ecc-device --kind csv \
  --devices "$CERTMILL_N" --json "$OUT/certmill.json" > "$OUT/certmill.log"
CERTMILL_RATE=$(python3 -c 'import json,sys; print("%.1f" % json.load(open(sys.argv[1]))["devices_per_second"])' "$OUT/certmill.json")
CEILING=$(python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))["ceiling"]["ceiling"]; print("%.1f" % c["devices_per_second"] if c else "")' "$OUT/certmill.json")

python3 - "$OPENSSL_N" "$OPENSSL_RATE" "$PYTHON_N" "$PYTHON_RATE" "$CERTMILL_N" "$CERTMILL_RATE" "$CEILING" <<'PY'
import sys
on, orate, pn, prate, cn, crate, ceiling = sys.argv[1:]
crate = float(crate)
rows = [("openssl CLI (xargs -P 2)", on, orate), ("Python cryptography (pool of 2)", pn, prate)]
print(f"{'job':<34} {'devices':>8} {'devices/s':>10} {'certmill is':>12}")
for name, n, r in rows:
    if not r:
        print(f"{name:<34} {'-':>8} {'skipped':>10} {'':>12}")
        continue
    print(f"{name:<34} {n:>8} {float(r):>10.1f} {crate / float(r):>11.1f}x")
print(f"{'certmill bench (all cores)':<34} {cn:>8} {crate:>10.1f} {'1.0x':>12}")
if ceiling:
    print(f"{'ceiling (openssl speed)':<34} {'':>8} {float(ceiling):>10.1f} {crate / float(ceiling):>11.2f}x")
PY
