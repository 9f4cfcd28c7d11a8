#!/usr/bin/env bash
# Installs what building, running and testing the shop needs, idempotently:
# the wasm32 target, cargo-leptos, wasm-bindgen-cli, and (on request) wasm-opt,
# trunk, Chromium, ChromeDriver and axe-core. A tool already at the right version is left
# alone. (The container tools have a script of their own: scripts/container-tools.sh.)
#
# Usage: scripts/setup.sh [build] [release] [browser] [trunk]
#   build    wasm32 target, cargo-leptos, wasm-bindgen-cli (always implied)
#   release  wasm-opt (a release build of the page runs it), from npm's binaryen
#   browser  chromium and chromium-driver from Debian, axe-core from npm (the
#            browser tests and their accessibility audit)
#   trunk    trunk (the client-side-only build)
#
# Why the detours: the lock files that cargo-leptos 0.3.11 and wasm-bindgen-cli 0.2.130
# ship pin crates this toolchain cannot build or the registry no longer has, so each is
# built from its published source with one dependency moved back (the pins are
# below, next to each tool). Tools are built without LTO: they run for seconds, and
# LTO would triple their install time on two cores.
set -euo pipefail

CARGO_LEPTOS_VERSION=0.3.11
WASM_BINDGEN_VERSION=0.2.130   # must equal the wasm-bindgen version in Cargo.lock
BINARYEN_VERSION=132.0.0           # npm's binaryen (wasm-opt); Debian's 108 breaks hydration
AXE_CORE_VERSION=4.11.0
TRUNK_VERSION=0.21.14

CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
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

# Builds crate NAME at VERSION from its published source, after `cargo update -p PKG
# --precise V` on its lock file, and installs its binaries into ~/.cargo/bin. Cargo
# fetches the source (through a throwaway manifest that depends on it), so this
# follows the machine's cargo configuration: its registry, mirror and proxy.
install_from_source() {
  local name=$1 version=$2 pin_pkg=$3 pin_version=$4
  local dir source
  dir=$(mktemp -d)
  log "building $name $version from source (pinning $pin_pkg $pin_version)"
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
    cargo update -q -p "$pin_pkg" --precise "$pin_version"
    cargo install -q --locked --path . --root "${CARGO_HOME:-$HOME/.cargo}"
  )
  rm -rf "$dir"
}

want_release=false want_browser=false want_trunk=false
for arg in "$@"; do
  case $arg in
    build) ;;
    release) want_release=true ;;
    browser) want_browser=true ;;
    trunk) want_trunk=true ;;
    *) echo "setup.sh: unknown part '$arg' (build, release, browser, trunk)" >&2; exit 2 ;;
  esac
done

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if ! has_version cargo-leptos "$CARGO_LEPTOS_VERSION"; then
  install_from_source cargo-leptos "$CARGO_LEPTOS_VERSION" cargo-util-schemas 0.14.1
fi

if ! has_version wasm-bindgen "$WASM_BINDGEN_VERSION"; then
  install_from_source wasm-bindgen-cli "$WASM_BINDGEN_VERSION" webpki-roots 1.0.10
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
  cargo install -q --locked trunk --version "$TRUNK_VERSION"
fi

if $want_browser; then
  npm_package axe-core "$AXE_CORE_VERSION"
fi

if $want_browser && ! { command -v chromium && command -v chromedriver; } >/dev/null 2>&1; then
  log "installing chromium and chromium-driver from Debian"
  apt_get update -qq
  DEBIAN_FRONTEND=noninteractive apt_get install -y -qq chromium chromium-driver >/dev/null
fi

log "tools ready"
