#!/usr/bin/env bash
# The checkout benchmark (docs/benchmarks.md): the whole shop from the release
# binaries (`make build`), with the load catalog, in a fresh folder; then loadgen's
# `good` scenario closed loop at 1, 8, 32 and 128 shoppers and open loop at 200
# and 1,000 checkouts a second, each after its floor (the same load on /readyz:
# the web server asking every service a checkout calls for its gRPC health check,
# over the same connections). Prints a table; loadgen's JSON and HTML reports stay
# in the results folder it names.
#
#   scripts/bench-checkout.sh              # 20 s a run
#   DURATION=60s scripts/bench-checkout.sh
#
# Not part of `make test` (timings are not asserted anywhere); the load stage of
# make test runs a short smoke run of loadgen instead.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-target/release}
DURATION=${DURATION:-20s}
for binary in services server loadgen; do
  [ -x "$BIN/$binary" ] || { echo "bench-checkout: $BIN/$binary is missing: make build && cargo build --release -p loadgen" >&2; exit 1; }
done
results=$(mktemp -d "${TMPDIR:-/tmp}/bench-checkout.XXXXXX")
. scripts/load-shop.sh
finish() {
  stop_load_shop
  echo "bench-checkout: reports and the shop's log in $results"
}
trap finish EXIT
start_load_shop "$results" bench-checkout

seed=0
run() { # run NAME ARGS...: one loadgen run with its floor
  local name=$1; shift
  # A seed of its own, so no run repeats an earlier run's shoppers and cards
  # within fraud detection's velocity window.
  seed=$((seed + 1))
  echo "bench-checkout: $name"
  "$BIN/loadgen" --target "$target" --scenario good --catalog data/books-load.json --duration "$DURATION" \
    --seed "$seed" --floor --quiet --json "$results/$name.json" --html "$results/$name.html" "$@" > "$results/$name.txt" ||
    echo "bench-checkout: $name: loadgen's checks failed (a load beyond what the shop can answer in time, say): $results/$name.txt"
}
for shoppers in 1 8 32 128; do run "shoppers-$shoppers" --shoppers "$shoppers"; done
for rate in 200 1000; do run "rate-$rate" --rate "$rate"; done

python3 - "$results" <<'EOF'
import json, sys, pathlib
results = pathlib.Path(sys.argv[1])
print(f"{'run':<14} {'checkouts/s':>11} {'p50 ms':>7} {'p99 ms':>7} {'floor/s':>8} {'fl p50':>7} {'fl p99':>7} {'ratio':>6} {'committed/s':>11} checks")
for name in ["shoppers-1", "shoppers-8", "shoppers-32", "shoppers-128", "rate-200", "rate-1000"]:
    s = json.loads((results / f"{name}.json").read_text())
    load, floor = s["load"], s["floor"]
    lat = next(iter(load["latency"].values()))
    flat = next(iter(floor["latency"].values()))
    # At a fixed rate both send the same number a second: the ratio says nothing.
    ratio = "—" if name.startswith("rate-") else f"{load['requestsPerS'] / floor['requestsPerS']:.2f}"
    committed = s["execution"].get("committedPerS") or float("nan")
    print(f"{name:<14} {load['requestsPerS']:>11.0f} {lat['p50']:>7.2f} {lat['p99']:>7.2f} {floor['requestsPerS']:>8.0f} "
          f"{flat['p50']:>7.2f} {flat['p99']:>7.2f} {ratio:>6} {committed:>11.0f} "
          f"{'ok' if all(check['passed'] for check in s['checks']) else 'FAILED'}")
EOF
