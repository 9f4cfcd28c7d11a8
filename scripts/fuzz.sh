#!/usr/bin/env bash
# make test's fuzzing stage (and `make fuzz`, longer): each cargo-fuzz target in
# fuzz/fuzz_targets/ runs for FUZZ_SECONDS (20 unless set) from its seed inputs in
# fuzz/corpus/<target>/, under libFuzzer on the nightly toolchain. An input that
# panics, or takes over 10 s, fails the stage; libFuzzer leaves it in
# fuzz/artifacts/<target>/, and `cargo +nightly fuzz run -s none <target> <file>`
# replays it. Inputs a run discovers go to a temporary folder, not into the clone.
# Without a nightly toolchain or cargo-fuzz the stage says why and skips.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-20}
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "fuzz: SKIPPED: no nightly toolchain (rustup toolchain install nightly, then scripts/setup.sh fuzz)"
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz: SKIPPED: cargo-fuzz is not installed (scripts/setup.sh fuzz installs it)"
  exit 0
fi

# No sanitizer: the targets are safe Rust, so a panic (or a hang) is what there is
# to find, and AddressSanitizer would double the build on two cores. A debug build
# (`--dev`): overflow checks and debug assertions on (more to catch), and a build
# that takes a fraction of an optimised one; slower runs matter little in seconds.
flags=(-s none --dev)
echo "fuzz: building the targets (nightly, libFuzzer)"
cargo +nightly fuzz build "${flags[@]}"
found=$(mktemp -d "${TMPDIR:-/tmp}/bookstore-fuzz.XXXXXX")
trap 'rm -rf "$found"' EXIT
for target in $(cargo +nightly fuzz list); do
  mkdir -p "$found/$target"
  echo "fuzz: $target for $seconds s"
  if ! cargo +nightly fuzz run "${flags[@]}" "$target" "$found/$target" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -max_len=4096 -timeout=10 >"$found/$target.log" 2>&1; then
    tail -n 40 "$found/$target.log" >&2
    echo "fuzz: $target FAILED; the input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  grep -E "^Done [0-9]+ runs" "$found/$target.log" | sed "s/^/fuzz: $target: /" || true
done
