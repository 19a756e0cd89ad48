#!/usr/bin/env bash
# Runs the store's tests against a throwaway PostgreSQL (docs/STORE.md, "PostgreSQL").
#
# Starts a cluster from the Debian package in a temporary directory (trust authentication,
# its unix socket in that directory, a free loopback port, fsync off: nothing here must
# survive), exports CERTMILL_TEST_POSTGRES so every store test opens its own schema there, runs
# the tests, and always stops the cluster and removes the directory. Never touches the system
# cluster. Extra arguments are passed to each cargo test run.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "test-postgres: no PostgreSQL server (apt-get install postgresql)" >&2
  exit 1
fi

tmp=$(mktemp -d /tmp/certmill-pg.XXXXXX)
# initdb and the server refuse to run as root: run them as the postgres user.
as_pg=()
if [ "$(id -u)" = 0 ]; then
  chown postgres "$tmp"
  as_pg=(runuser -u postgres --)
fi

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

stop() {
  "${as_pg[@]}" "$bin/pg_ctl" -D "$tmp/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap stop EXIT

"${as_pg[@]}" "$bin/initdb" -D "$tmp/data" -A trust -U certmill -E UTF8 --locale=C >/dev/null
"${as_pg[@]}" "$bin/pg_ctl" -D "$tmp/data" -l "$tmp/log" -w start \
  -o "-k $tmp -p $port -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" \
  >/dev/null

export CERTMILL_TEST_POSTGRES="host=$tmp port=$port user=certmill dbname=postgres"
echo "== store tests on PostgreSQL ($("$bin/postgres" --version), port $port)"
# Every unit test of the library: the store's own and every other that opens a store (auth,
# server, batch, signers), so the whole library suite runs on PostgreSQL too.
cargo test --locked --lib "$@"
