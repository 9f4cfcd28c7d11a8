#!/usr/bin/env bash
# The overload benchmark (docs/benchmarks.md, "Overload"): the whole shop from the
# release binaries, with the load catalog, driven by loadgen's `good` scenario in
# an open loop at RATE checkouts a second (2,000 unless set: about twice what this
# machine's shop can take) for DURATION (20 s), in one run:
#
#   adaptive   the web server as it ships: at most CHECKOUT_CONCURRENCY (64)
#              checkouts at once, fewer (down to 2) while many run and approved
#              ones take over CHECKOUT_LATENCY_TARGET_MS (8) on average; the
#              surplus refused at once (503 `busy`)
#   fixed      the limit held at 64 (target 0): the shop before the adaptation
#   reference  no limit to speak of (1,000,000): the shop before shedding
#   same       as it ships, at the rate adaptive accepted: the latency of that
#              rate without any overload
#   usual      as it ships, at 200 a second: the latency the accepted should keep
#
# Each in a fresh shop, after WARMUP (5 s) of idling and ONSET (3 s) at the rate,
# measured for DURATION. Prints, for each, what was sent and accepted a second, the
# busy refusals and other failures, and the accepted checkouts' latency; then the
# same for the onsets.
# Not part of `make test` (timings are asserted nowhere).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-target/release}
DURATION=${DURATION:-20s}
RATE=${RATE:-2000}
for binary in services server loadgen; do
  [ -x "$BIN/$binary" ] || { echo "bench-overload: $BIN/$binary is missing: make build && cargo build --release -p loadgen" >&2; exit 1; }
done
results=$(mktemp -d "${TMPDIR:-/tmp}/bench-overload.XXXXXX")
. scripts/load-shop.sh
trap 'stop_load_shop; echo "bench-overload: reports and logs in $results"' EXIT

seed=100
run() { # run NAME LIMIT LATENCY RATE: a fresh shop admitting LIMIT checkouts at once
  # (adapting to a LATENCY target in ms; 0: fixed), RATE a second
  local name=$1 limit=$2 latency=$3 rate=$4
  seed=$((seed + 1))
  mkdir -p "$results/$name"
  echo "bench-overload: $name ($rate a second, at most $limit checkouts at once, latency target $latency ms)"
  export CHECKOUT_CONCURRENCY=$limit CHECKOUT_LATENCY_TARGET_MS=$latency
  start_load_shop "$results/$name" bench-overload
  # The steady state: in the first second after /readyz answers, the Raft groups
  # may still be electing their first leaders, and checkouts wait for them.
  sleep "${WARMUP:-5}"
  # The onset: the first ONSET (3 s) at the rate, reported apart (the limit falls
  # from the ceiling meanwhile); then the steady state, measured.
  "$BIN/loadgen" --target "$target" --scenario good --catalog data/books-load.json --duration "${ONSET:-3s}" \
    --seed "$((seed + 1000))" --rate "$rate" --quiet --json "$results/$name.onset.json" > "$results/$name.onset.txt" || true
  "$BIN/loadgen" --target "$target" --scenario good --catalog data/books-load.json --duration "$DURATION" \
    --seed "$seed" --rate "$rate" --quiet --json "$results/$name.json" > "$results/$name.txt" || true
  # The limit the web server ended at (the gauge of admission.rs).
  curl -s "$target/metrics" | awk '/^[a-z_]*admission_limit/ { print $2 }' > "$results/$name.limit" || true
  stop_load_shop
}
run adaptive "${LIMIT:-64}" "${TARGET:-8}" "$RATE"
# The rate the adaptive run accepted, sent to a fresh shop as ordinary load:
# whether the accepted paid for the surplus.
same=$(python3 -c 'import json, sys; print(round(json.load(open(sys.argv[1]))["load"]["acceptedPerS"]))' "$results/adaptive.json")
run same "${LIMIT:-64}" "${TARGET:-8}" "$same"
run fixed "${LIMIT:-64}" 0 "$RATE"
run reference 1000000 0 "$RATE"
run usual "${LIMIT:-64}" "${TARGET:-8}" 200

python3 - "$results" "$DURATION" "${ONSET:-3s}" <<'PY'
import json, sys, pathlib
results, duration, onset = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
seconds = float(duration.rstrip("s"))
def table(suffix, seconds):
    print(f"{'run':<10} {'sent/s':>7} {'accepted/s':>10} {'busy/s':>7} {'other 503 or failed/s':>21} {'accepted p50 ms':>15} {'p90':>7} {'p99':>7} {'refused p50 ms':>14} {'p99':>7} {'limit at end':>12}")
    for name in ["adaptive", "same", "fixed", "reference", "usual"]:
        s = json.loads((results / f"{name}{suffix}.json").read_text())
        load, answers = s["load"], s["answers"]
        busy = sum(n for key, n in answers.items() if " 503 busy " in f" {key} ")
        other = sum(n for key, n in answers.items() if ("failed" in key or " 5" in f" {key}") and " busy " not in f" {key} ")
        lat, ref = load.get("acceptedLatency") or {}, load.get("refusedLatency") or {}
        fmt = lambda d, q: f"{d[q]:.1f}" if q in d else "—"
        limit = (results / f"{name}.limit").read_text().strip() if not suffix else ""
        print(f"{name:<10} {load['requestsPerS']:>7.0f} {load['acceptedPerS']:>10.0f} {busy / seconds:>7.0f} {other / seconds:>21.1f} "
              f"{fmt(lat, 'p50'):>15} {fmt(lat, 'p90'):>7} {fmt(lat, 'p99'):>7} {fmt(ref, 'p50'):>14} {fmt(ref, 'p99'):>7} {limit or '—':>12}")

table("", seconds)
print(f"the onsets (the first {onset}):")
table(".onset", float(onset.rstrip("s")))
PY
