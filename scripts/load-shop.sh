# Sourced by scripts/load-smoke.sh and scripts/bench-checkout.sh: the whole shop on
# this machine from the binaries in $BIN, with the load catalog
# (data/books-load.json), its data and log (shop.log) in the folder given.
#
#   start_load_shop <folder> <name>   starts it; returns once GET /readyz answers
#                                     200 (every service a checkout calls serves;
#                                     up to 90 s),
#                                     or exits naming <name> if the shop stopped
#   stop_load_shop                    stops it (safe to call when not started)

shop_pid=""
target=http://127.0.0.1:8080

start_load_shop() {
  local folder=$1 name=$2
  CATALOG_FILE=data/books-load.json BIN=$BIN DATA_DIR="$folder/data" RUST_LOG=warn \
    scripts/run-local.sh > "$folder/shop.log" 2>&1 &
  shop_pid=$!
  # Up to 90 s: a service waits up to a minute for its port (services/src/main.rs).
  for _ in $(seq 1 900); do
    curl -fsS "$target/readyz" >/dev/null 2>&1 && return 0
    kill -0 "$shop_pid" 2>/dev/null || { echo "$name: the shop stopped" >&2; exit 1; }
    sleep 0.1
  done
  curl -fsS "$target/readyz" >/dev/null
}

stop_load_shop() {
  if [ -n "$shop_pid" ]; then
    kill -TERM "$shop_pid" 2>/dev/null || true
    wait "$shop_pid" 2>/dev/null || true
    shop_pid=""
  fi
}
