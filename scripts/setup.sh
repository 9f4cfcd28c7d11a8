#!/usr/bin/env bash
# Installs what building, running and testing the shop needs, idempotently:
# the wasm32 target, cargo-leptos, wasm-bindgen-cli, and (on request) wasm-opt,
# trunk, Chromium, ChromeDriver and axe-core. A tool already at the right version is left
# alone. (The container tools have a script of their own: scripts/container-tools.sh.)
#
# Usage: scripts/setup.sh [build] [release] [browser] [trunk] [load] [observe] [fuzz] [chaos]
#   build    wasm32 target, cargo-leptos, wasm-bindgen-cli (always implied)
#   release  wasm-opt (a release build of the page runs it), from npm's binaryen
#   browser  chromium and chromium-driver from Debian, axe-core from npm (the
#            browser tests and their accessibility audit)
#   trunk    trunk (the client-side-only build)
#   load     newman from npm (it runs the Postman collection in make test)
#   observe  Prometheus and promtool from Debian (make observe, and the
#            observability tests in make test)
#   fuzz     cargo-fuzz, where a nightly toolchain is installed (make test's
#            fuzzing stage; without nightly it is skipped and says so)
#   chaos    iptables from Debian: the chaos tests cut a process's cgroup off the
#            network with it (as root; without it they pause and kill only, and
#            say so)
#
# Why the detours, each to build less on two cores:
# - cargo-leptos is built from its published source with scripts/patches/ applied:
#   the patch drops `cargo leptos new` (a project generator, never used here) and
#   with it cargo-generate, 116 crates of its 603 and over half its build time.
# - wasm-bindgen-cli's lock file pins a crate the registry no longer has, so it is
#   built from its published source with that one moved back; only its
#   `wasm-bindgen` binary, and without TLS (it never downloads here). Trunk, too,
#   without TLS.
# - The tools share one target folder while they build (so a crate two of them
#   use is compiled once), removed afterwards, and are built without LTO: they run
#   for seconds, and LTO would triple their build on two cores.
set -euo pipefail

CARGO_LEPTOS_VERSION=0.3.11
WASM_BINDGEN_VERSION=0.2.130   # must equal the wasm-bindgen version in Cargo.lock
BINARYEN_VERSION=132.0.0           # npm's binaryen (wasm-opt); Debian's 108 breaks hydration
AXE_CORE_VERSION=4.11.0
TRUNK_VERSION=0.21.14
NEWMAN_VERSION=6.2.2
CARGO_FUZZ_VERSION=0.13.2

CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# npm packages (wasm-opt, axe-core) live outside the clone, shared by every clone.
NODE_TOOLS="${BOOKSTORE_TOOLS:-$HOME/.cache/bookstore}/node"
export PATH="$CARGO_BIN:$NODE_TOOLS/node_modules/.bin:$PATH"
export CARGO_PROFILE_RELEASE_LTO=false
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
export CARGO_PROFILE_RELEASE_OPT_LEVEL=2

log() { printf '[setup] %s\n' "$*"; }

has_version() { # has_version CMD VERSION: CMD --version prints VERSION
  command -v "$1" >/dev/null 2>&1 && "$1" --version 2>/dev/null | grep -qF "$2"
}

# One target folder for every tool this run builds, removed when the script ends.
# (Made in this shell, not in a $(...) subshell, so the trap is this shell's.)
TOOL_BUILD=""
make_tool_build() {
  if [ -z "$TOOL_BUILD" ]; then
    TOOL_BUILD=$(mktemp -d "${TMPDIR:-/tmp}/bookstore-tools.XXXXXX")
    trap 'rm -rf "$TOOL_BUILD"' EXIT
  fi
}

# install_from_source NAME VERSION PIN_PKG PIN_VERSION [cargo install flags...]:
# builds crate NAME at VERSION from its published source, with
# scripts/patches/NAME-VERSION-*.patch applied if there is one and, if PIN_PKG is
# not "-", after `cargo update -p PIN_PKG --precise PIN_VERSION` on its lock file;
# installs its binaries into ~/.cargo/bin. Cargo fetches the source (through a
# throwaway manifest that depends on it), so this follows the machine's cargo
# configuration: its registry, mirror and proxy.
install_from_source() {
  local name=$1 version=$2 pin_pkg=$3 pin_version=$4
  shift 4
  local dir source patch
  make_tool_build
  dir=$(mktemp -d)
  log "building $name $version from source"
  mkdir -p "$dir/fetch/src" "$dir/build"
  touch "$dir/fetch/src/lib.rs"
  printf '[package]\nname = "fetch-%s"\nversion = "0.0.0"\nedition = "2021"\npublish = false\n\n[dependencies]\n%s = "=%s"\n' \
    "$name" "$name" "$version" > "$dir/fetch/Cargo.toml"
  cargo fetch -q --manifest-path "$dir/fetch/Cargo.toml"
  source=$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -mindepth 2 -maxdepth 2 -type d -name "$name-$version" | head -n 1)
  [ -n "$source" ] || { echo "setup.sh: cargo fetched no source for $name $version" >&2; exit 1; }
  cp -r "$source" "$dir/build/"
  (
    cd "$dir/build/$name-$version"
    for patch in "$SCRIPTS/patches/$name-$version"-*.patch; do
      [ -e "$patch" ] || continue
      log "applying $(basename "$patch")"
      git apply "$patch"
      # The lock file follows the patched manifest (dropped crates leave it).
      cargo metadata -q --format-version 1 >/dev/null
    done
    if [ "$pin_pkg" != - ]; then
      cargo update -q -p "$pin_pkg" --precise "$pin_version"
    fi
    cargo install -q --locked --path . --root "${CARGO_HOME:-$HOME/.cargo}" --target-dir "$TOOL_BUILD" "$@"
  )
  rm -rf "$dir"
}

want_release=false want_browser=false want_trunk=false want_load=false want_observe=false want_fuzz=false want_chaos=false
for arg in "$@"; do
  case $arg in
    build) ;;
    release) want_release=true ;;
    browser) want_browser=true ;;
    trunk) want_trunk=true ;;
    load) want_load=true ;;
    observe) want_observe=true ;;
    fuzz) want_fuzz=true ;;
    chaos) want_chaos=true ;;
    *) echo "setup.sh: unknown part '$arg' (build, release, browser, trunk, load, observe, fuzz, chaos)" >&2; exit 2 ;;
  esac
done

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# (Unpatched, cargo-leptos also needed cargo-util-schemas pinned back: only
# cargo-generate used it.)
if ! has_version cargo-leptos "$CARGO_LEPTOS_VERSION"; then
  install_from_source cargo-leptos "$CARGO_LEPTOS_VERSION" - -
fi

if ! has_version wasm-bindgen "$WASM_BINDGEN_VERSION"; then
  install_from_source wasm-bindgen-cli "$WASM_BINDGEN_VERSION" webpki-roots 1.0.10 \
    --no-default-features --bin wasm-bindgen
fi

apt_get() { if [ "$(id -u)" = 0 ]; then apt-get "$@"; else sudo apt-get "$@"; fi; }

# npm_package NAME VERSION: installs NAME@VERSION into $NODE_TOOLS unless it is there.
npm_package() {
  local name=$1 version=$2
  if [ "$(node -p "require('$NODE_TOOLS/node_modules/$name/package.json').version" 2>/dev/null)" = "$version" ]; then
    return
  fi
  if ! command -v npm >/dev/null 2>&1; then
    log "installing node and npm from Debian"
    apt_get update -qq
    DEBIAN_FRONTEND=noninteractive apt_get install -y -qq nodejs npm >/dev/null
  fi
  log "installing $name $version from npm"
  mkdir -p "$NODE_TOOLS"
  npm install --prefix "$NODE_TOOLS" --no-audit --no-fund --silent "$name@$version"
}

# wasm-opt as npm ships it (binaryen compiled to wasm, run by node): seconds to
# install, where building binaryen's C++ takes a quarter of an hour on two cores.
if $want_release; then
  npm_package binaryen "$BINARYEN_VERSION"
fi

if $want_trunk && ! has_version trunk "$TRUNK_VERSION"; then
  log "building trunk $TRUNK_VERSION"
  make_tool_build
  cargo install -q --locked trunk --version "$TRUNK_VERSION" --no-default-features --target-dir "$TOOL_BUILD"
fi

if $want_browser; then
  npm_package axe-core "$AXE_CORE_VERSION"
fi

if $want_fuzz && ! has_version cargo-fuzz "$CARGO_FUZZ_VERSION"; then
  if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    log "building cargo-fuzz $CARGO_FUZZ_VERSION"
    make_tool_build
    cargo install -q --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION" --target-dir "$TOOL_BUILD"
  else
    log "no nightly toolchain: cargo-fuzz not installed, make test's fuzzing stage will say it skipped"
  fi
fi

if $want_load; then
  npm_package newman "$NEWMAN_VERSION"
fi

if $want_browser && ! { command -v chromium && command -v chromedriver; } >/dev/null 2>&1; then
  log "installing chromium and chromium-driver from Debian"
  apt_get update -qq
  DEBIAN_FRONTEND=noninteractive apt_get install -y -qq chromium chromium-driver >/dev/null
fi

# Debian's prometheus package would start a server at install where a service
# manager runs; only the binaries are wanted (make observe and the tests start
# their own, on their own configuration).
if $want_observe && ! { command -v prometheus && command -v promtool; } >/dev/null 2>&1; then
  log "installing prometheus and promtool from Debian"
  apt_get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt_get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends prometheus >/dev/null
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
    log "stopping the prometheus service the package started (it would hold port 9090)"
    if [ "$(id -u)" = 0 ]; then systemctl disable --now prometheus; else sudo systemctl disable --now prometheus; fi
  fi
fi

if $want_chaos && ! command -v iptables >/dev/null 2>&1; then
  log "installing iptables from Debian"
  apt_get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt_get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends iptables >/dev/null
fi

log "tools ready"
