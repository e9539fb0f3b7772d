#!/usr/bin/env bash
# Builds VMware's vcsim (govmomi simulator) offline from Debian packages into target/vcsim/vcsim.
# Idempotent: installs the packages only when missing, rebuilds only when main.go is newer.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
# The suite looks in target/vcsim/vcsim under the repository unless LABSYNC_VCSIM says otherwise.
out="$root/target/vcsim/vcsim"

if ! command -v go >/dev/null || [ ! -d /usr/share/gocode/src/github.com/vmware/govmomi/simulator ]; then
  sudo_cmd=""
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq golang-go golang-github-vmware-govmomi-dev
fi

if [ -x "$out" ] && [ "$out" -nt "$root/tests/vcsim/main.go" ]; then
  echo "vcsim up to date: $out"
  exit 0
fi

mkdir -p "$(dirname "$out")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src/labsync-vcsim"
cp "$root/tests/vcsim/main.go" "$work/src/labsync-vcsim/"
# GOPATH mode: Debian's Go libraries live in /usr/share/gocode; no network, no modules.
(cd "$work/src/labsync-vcsim" && GO111MODULE=off GOPATH="$work:/usr/share/gocode" GOCACHE="$root/target/vcsim/gocache" GOFLAGS= go build -o "$out" .)
echo "built $out"
