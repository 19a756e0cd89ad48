#!/usr/bin/env bash
# Devices/s of one generator batch issued by N certmill nodes (docs/SCALE-OUT.md, PERFORMANCE.md).
#
#   scripts/cluster-bench.sh NODES DEVICES [STORE_URL]
#
# NODES=0 runs one plain server (no --objects: the one-node pipeline into one ZIP file), for
# the baseline. Otherwise NODES servers share the store (STORE_URL, a postgres:// URL, or the
# first node's SQLite file when empty) and a local object folder, with chunks of 10,000. The
# time runs from the order's answer to "Ready for download"; the ZIP download is not counted.
# Uses target/release/certmill (cargo build --release first).
set -euo pipefail
nodes=${1:?NODES}; devices=${2:?DEVICES}; store=${3:-}
bin=${CERTMILL_BIN:-$(pwd)/target/release/certmill}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

store_args=()
[ -n "$store" ] && store_args=(--store "$store")
# Starts a node and sets $url to its address. Not called in $(…): the node's pid must reach
# the cleanup's list in this shell.
start() { # name data-dir [extra args...]
  local name=$1 data=$2; shift 2
  CERTMILL_ADMIN_PASSWORD=bench-admin-password "$bin" --data "$data" "${store_args[@]}" \
    serve --listen 127.0.0.1:0 "$@" >"$work/$name.out" 2>"$work/$name.err" &
  pids+=($!)
  disown $! # no "Killed" line when the cleanup stops it
  for _ in $(seq 1 300); do
    grep -q "certmill listening on" "$work/$name.out" 2>/dev/null && break
    sleep 0.1
  done
  url=$(sed -n 's/^certmill listening on //p' "$work/$name.out")
}

if [ "$nodes" = 0 ]; then
  start plain "$work/data"; base=$url
else
  cluster=(--objects "file://$work/objects" --chunk-size 10000)
  start node-1 "$work/data" "${cluster[@]}" --node node-1; base=$url
  for i in $(seq 2 "$nodes"); do
    if [ -n "$store" ]; then cp -a "$work/data" "$work/data-$i"; d="$work/data-$i"; else d="$work/data"; fi
    start "node-$i" "$d" "${cluster[@]}" --node "node-$i"
  done
fi

json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
token=$(curl -s -X POST -H 'Content-Type: application/json' \
  -d '{"username":"admin","password":"bench-admin-password"}' "$base/auth/pwd" | json 'd["accessToken"]')
authority=$(curl -s -H "Authorization: Bearer $token" "$base/api/v1/authorities/allowed" \
  | json '[a["id"] for a in d if a["profileId"]==1][0]')
body=$(printf '{"authorityId":%s,"batchName":"bench","generatorId":2,"generatorParams":{"startValue":"00:1C:00:00:00:00","increment":"1"},"batchSize":%s,"profileParams":{"deviceClass":"Aircraft","pkcs12Password":"bench-pkcs12","years":"1"}}' "$authority" "$devices")
id=$(curl -s -X PUT -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d "$body" "$base/api/v1/batches" | json 'd["batchId"]')
started=$(date +%s.%N)
while :; do
  status=$(curl -s -H "Authorization: Bearer $token" "$base/api/v1/batches/$id/status")
  [ "$status" = "Ready for download" ] && break
  [ "$status" = "Processing" ] || { echo "batch $id: $status" >&2; tail -n 5 "$work"/*.err "$work"/*.out >&2; exit 1; }
  sleep 0.05
done
ended=$(date +%s.%N)
python3 -c "s=$ended-$started; print(f'nodes={$nodes} devices={$devices} seconds={s:.2f} devices_per_s={$devices/s:.0f}')"
