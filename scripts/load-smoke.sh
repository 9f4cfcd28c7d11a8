#!/usr/bin/env bash
# make test's load stage. Runs the whole shop on this machine from the binaries
# `cargo test` built (target/debug), with the load catalog (data/books-load.json),
# in a fresh folder; then the Postman collection through newman, and a short
# loadgen run of the mixed and the contended scenario, each checking its own
# results (loadgen exits 1 when a check fails). The shop is stopped whatever
# happens; its log is printed if a stage failed.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-target/debug}
NEWMAN=${NEWMAN:-newman}
work=$(mktemp -d "${TMPDIR:-/tmp}/bookstore-load.XXXXXX")
. scripts/load-shop.sh

finish() {
  local status=$?
  stop_load_shop
  if [ "$status" != 0 ]; then
    echo "load-smoke: failed; the shop's log:" >&2
    tail -n 80 "$work/shop.log" >&2 || true
  fi
  rm -rf "$work"
  exit "$status"
}
trap finish EXIT

for binary in services server loadgen; do
  [ -x "$BIN/$binary" ] || { echo "load-smoke: $BIN/$binary is missing: build first" >&2; exit 1; }
done

echo "load-smoke: starting the shop from $BIN with the load catalog"
start_load_shop "$work" load-smoke

echo "load-smoke: the Postman collection (newman)"
"$NEWMAN" run postman/bookstore.postman_collection.json --env-var "baseUrl=$target" --bail --color off

echo "load-smoke: loadgen, mixed, 10 s"
"$BIN/loadgen" --target "$target" --scenario mixed --shoppers 8 --duration 10s \
  --catalog data/books-load.json --quiet
echo "load-smoke: loadgen, contended, 5 s"
"$BIN/loadgen" --target "$target" --scenario contended --shoppers 16 --duration 5s \
  --catalog data/books-load.json --quiet
