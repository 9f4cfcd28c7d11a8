#!/usr/bin/env bash
# What observability costs a checkout (docs/benchmarks.md): loadgen's `good`
# scenario with one shopper (closed loop) and at 200 checkouts a second (open
# loop), against these variants of the shop in the same run (VARIANTS names
# which, all four by default):
#
#   reference  the build from before traces and metrics existed (REF_TREE: a
#              worktree of that commit, built there), with its own scripts
#   off        this build, no OTLP endpoint, nothing scraping (metrics are
#              recorded all the same: they cannot be switched off)
#   on         this build, every process exporting all its spans and its log
#              records to a local OTLP receiver (server/examples/otlp_sink.rs),
#              and Debian's Prometheus scraping every process every 5 s
#   sampled    the same keeping one trace in ten (OTEL_TRACES_SAMPLER=
#              parentbased_traceidratio, OTEL_TRACES_SAMPLER_ARG=0.1)
#
# Each round starts each variant's shop afresh (release binaries, the load
# catalog, RUST_LOG=warn as in scripts/bench-checkout.sh) and runs both loads;
# rounds interleave the variants, each round starting one variant later than the
# last, so a drift of the machine falls on all of them and none always runs first;
# the disk is synced before every run. Prints every run (latency, and the CPU
# milliseconds a checkout cost the shop's processes and, apart, the receivers),
# the median of the rounds, and each variant against off in the same round: the
# median of those ratios with a 90% bootstrap interval, which says whether the
# rounds were enough to tell (this machine's p50 at 200/s moves by a factor of
# two from one run to the next).
#
#   git worktree add /tmp/bookstore-ref <commit> && (cd /tmp/bookstore-ref &&
#       cargo build --release -p services -p server)
#   make build && cargo build --release -p loadgen && cargo build --release -p server --example otlp_sink
#   REF_TREE=/tmp/bookstore-ref scripts/bench-observability.sh      # ROUNDS=3 DURATION=20s
#   VARIANTS="off on" ROUNDS=10 scripts/bench-observability.sh       # more rounds of two
#
# Not part of `make test`: timings are asserted nowhere.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
VARIANTS=${VARIANTS:-reference off on sampled}
DURATION=${DURATION:-20s}
here=$(pwd)
binaries=(target/release/services target/release/server target/release/loadgen target/release/examples/otlp_sink)
if [[ " $VARIANTS " == *" reference "* ]]; then
  REF_TREE=${REF_TREE:?set REF_TREE to a built worktree of the reference commit}
  binaries+=("$REF_TREE/target/release/services" "$REF_TREE/target/release/server")
fi
for binary in "${binaries[@]}"; do
  [ -x "$binary" ] || { echo "bench-observability: $binary is missing (see the header)" >&2; exit 1; }
done
command -v prometheus >/dev/null || { echo "bench-observability: install Prometheus: scripts/setup.sh observe" >&2; exit 1; }
results=$(mktemp -d "${TMPDIR:-/tmp}/bench-observability.XXXXXX")
target=http://127.0.0.1:8080
pids=()

stop_all() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
trap 'stop_all; echo "bench-observability: reports and logs in $results"' EXIT

start_shop() { # start_shop TREE FOLDER [VAR=VALUE...]: the shop of TREE, its data and log in FOLDER
  local tree=$1 folder=$2; shift 2
  mkdir -p "$folder"
  # The last shop must be gone: a run against it would measure the wrong build.
  if curl -fsS "$target/healthz" >/dev/null 2>&1; then
    echo "bench-observability: something already answers at $target" >&2
    exit 1
  fi
  # exec: the process started is run-local.sh itself, which stops its shop on SIGTERM.
  (cd "$tree" && exec env "$@" CATALOG_FILE=data/books-load.json BIN=target/release DATA_DIR="$folder/data" \
    RUST_LOG=warn scripts/run-local.sh > "$folder/shop.log" 2>&1) &
  pids+=("$!")
  for _ in $(seq 1 600); do
    curl -fsS "$target/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "bench-observability: the shop in $folder did not get ready" >&2
  exit 1
}

cpu_ticks() { # cpu_ticks PATTERN: the CPU time (clock ticks, user + system) of the processes PATTERN matches
  local total=0 pid
  for pid in $(pgrep -f "$1"); do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
shop_processes='target/release/(services|server)( |$)'
receivers='^(target/release/examples/otlp_sink|prometheus) '

seed=0
load() { # load NAME ARGS...: one loadgen run, its summary in NAME.json, the CPU it cost in NAME.cpu
  seed=$((seed + 1))
  local shop_before receivers_before
  shop_before=$(cpu_ticks "$shop_processes")
  receivers_before=$(cpu_ticks "$receivers")
  # loadgen follows every accepted order to its end, so the CPU counted below
  # includes executing the orders, not only answering the checkouts.
  target/release/loadgen --target "$target" --scenario good --catalog data/books-load.json --duration "$DURATION" \
    --seed "$seed" --quiet --json "$results/$1.json" "${@:2}" > "$results/$1.txt" ||
    echo "bench-observability: $1: loadgen's checks failed: $results/$1.txt"
  echo "$(($(cpu_ticks "$shop_processes") - shop_before)) $(($(cpu_ticks "$receivers") - receivers_before))" \
    "$(getconf CLK_TCK)" > "$results/$1.cpu"
}

read -r -a variants <<< "$VARIANTS"
for round in $(seq 1 "$ROUNDS"); do
  # Each round starts one variant later than the last, so none always runs first
  # (the first run after a pause came out faster).
  for i in $(seq 0 $((${#variants[@]} - 1))); do
    variant=${variants[$(((round - 1 + i) % ${#variants[@]}))]}
    folder="$results/$variant-$round"
    # The last run's writes reach the disk before this run starts, not during it.
    sync
    echo "bench-observability: round $round, $variant"
    case $variant in
      reference) start_shop "$REF_TREE" "$folder" ;;
      off) start_shop "$here" "$folder" ;;
      on | sampled)
        target/release/examples/otlp_sink 127.0.0.1:4317 > "$folder-sink.log" 2>&1 &
        pids+=("$!")
        mkdir -p "$folder/prometheus"
        target/release/services prometheus-config > "$folder/prometheus/prometheus.yml"
        prometheus --config.file="$folder/prometheus/prometheus.yml" --storage.tsdb.path="$folder/prometheus/data" \
          --web.listen-address=127.0.0.1:9090 --enable-feature=exemplar-storage > "$folder-prometheus.log" 2>&1 &
        pids+=("$!")
        sampler=()
        [ "$variant" = sampled ] && sampler=(OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0.1)
        start_shop "$here" "$folder" OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 "${sampler[@]}"
        ;;
    esac
    load "$variant-$round-shopper" --shoppers 1
    load "$variant-$round-rate200" --rate 200
    stop_all
    rm -rf "$folder/data" "$folder/prometheus/data"
  done
done

python3 - "$results" "$ROUNDS" $VARIANTS <<'EOF'
import functools, json, random, statistics, sys, pathlib
results, rounds, variants = pathlib.Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
@functools.cache  # each run's files are read once, however many figures use them
def run(name):
    summary = json.loads((results / f"{name}.json").read_text())
    lat = next(iter(summary["load"]["latency"].values()))
    shop, receivers, hz = (int(x) for x in (results / f"{name}.cpu").read_text().split())
    # CPU milliseconds a checkout: the shop's processes, and apart the OTLP receiver and Prometheus
    return (summary["load"]["requestsPerS"], lat["p50"], lat["p99"],
            1000 * shop / hz / lat["count"], 1000 * receivers / hz / lat["count"])
header = f"{'checkouts/s':>11} {'p50 ms':>7} {'p99 ms':>7} {'shop CPU ms':>11} {'receivers':>9}"
print(f"{'run':<22} {header}")
medians = {}
for load in ["shopper", "rate200"]:
    for variant in variants:
        runs = [run(f"{variant}-{r}-{load}") for r in range(1, rounds + 1)]
        for r, (rate, p50, p99, cpu, receivers) in enumerate(runs, 1):
            print(f"{variant + '-' + str(r) + '-' + load:<22} {rate:>11.0f} {p50:>7.2f} {p99:>7.2f} {cpu:>11.2f} {receivers:>9.2f}")
        medians[(variant, load)] = tuple(statistics.median(run[i] for run in runs) for i in range(5))
print()
def ratios(variant, base, load, field):
    """The variant's figure over the base's, round by round (a round's runs are minutes apart)."""
    return [run(f"{variant}-{r}-{load}")[field] / run(f"{base}-{r}-{load}")[field] for r in range(1, rounds + 1)]
def interval(values, draws=2000):
    """The median of values, and a 90% bootstrap interval around it (a fixed seed: the same runs, the same figures)."""
    rng = random.Random(1)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(draws))
    return statistics.median(values), medians[draws // 20], medians[draws - draws // 20 - 1]
print(f"{'median of rounds':<22} {header} {'p50 vs off':>10} {'p50 vs ref':>10}")
for load in ["shopper", "rate200"]:
    off, ref = (medians.get((variant, load), (0, float("nan")))[1] for variant in ["off", "reference"])
    for variant in variants:
        rate, p50, p99, cpu, receivers = medians[(variant, load)]
        print(f"{variant + ' ' + load:<22} {rate:>11.0f} {p50:>7.2f} {p99:>7.2f} {cpu:>11.2f} {receivers:>9.2f} "
              f"{p50 / off:>10.2f} {p50 / ref:>10.2f}")
if "off" in variants and rounds >= 3:
    print()
    print("against off in the same round: median of the rounds' ratios [90% bootstrap interval]")
    for load in ["shopper", "rate200"]:
        for variant in (v for v in variants if v != "off"):
            p50, cpu = (interval(ratios(variant, "off", load, field)) for field in (1, 3))
            print(f"{variant + ' ' + load:<22} p50 {p50[0]:.2f} [{p50[1]:.2f}, {p50[2]:.2f}]"
                  f"   shop CPU a checkout {cpu[0]:.2f} [{cpu[1]:.2f}, {cpu[2]:.2f}]")
EOF
