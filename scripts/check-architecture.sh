#!/usr/bin/env bash
# Checks that ARCHITECTURE.md, the code map, names every crate of the workspace
# and every top-level module of each (`src/<name>.rs` as `<name>.rs`, a folder
# `src/<name>/` as `<name>/`). Run by `make test`; prints what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

map=ARCHITECTURE.md
missing=0
members=$(sed -n 's/^members = \[\(.*\)\]/\1/p' Cargo.toml | tr -d '" ' | tr ',' ' ')
for crate in $members; do
  if ! grep -qF "\`$crate/\`" "$map"; then
    echo "ARCHITECTURE.md does not name the crate $crate/" >&2
    missing=1
  fi
  for path in "$crate"/src/*; do
    name=$(basename "$path")
    case $name in
      lib.rs | main.rs | bin) continue ;;
    esac
    [ -d "$path" ] && name="$name/"
    if ! grep -qF "\`$name" "$map"; then
      echo "ARCHITECTURE.md does not name $crate's module $name" >&2
      missing=1
    fi
  done
done
# The boundaries the map draws between crates: the web server does not build on
# the services, and test support is a dev-dependency only.
section_deps() { # <Cargo.toml> <section>: the crates named in that section
  awk -v want="[$2]" '/^\[/ { in_section = ($0 == want); next } in_section && /^[a-z]/ { sub(/[ .=].*/, ""); print }' "$1"
}
if section_deps server/Cargo.toml dependencies | grep -qx services; then
  echo "server depends on services: what they share belongs in platform/" >&2
  missing=1
fi
for manifest in */Cargo.toml; do
  if section_deps "$manifest" dependencies | grep -qx testkit; then
    echo "$manifest takes testkit as a dependency; it is a dev-dependency only" >&2
    missing=1
  fi
done
if [ "$missing" = 0 ]; then
  echo "ARCHITECTURE.md names every crate and top-level module; the crates keep their boundaries"
fi
exit "$missing"
