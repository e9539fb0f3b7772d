#!/usr/bin/env bash
# Builds the govmomi client suite (tests/govmomi/main.go) offline from Debian packages into
# target/govmomi/govmomi-suite. Idempotent: installs the packages only when missing, rebuilds only
# when main.go is newer than the binary. Same approach as tests/vcsim/build.sh: GOPATH mode over
# /usr/share/gocode, no modules, nothing fetched but Debian packages.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
out="$target/govmomi/govmomi-suite"

if ! command -v go >/dev/null || [ ! -d /usr/share/gocode/src/github.com/vmware/govmomi/find ]; then
  sudo_cmd=""
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq golang-go golang-github-vmware-govmomi-dev
fi

if [ -x "$out" ] && [ "$out" -nt "$root/tests/govmomi/main.go" ]; then
  echo "govmomi suite up to date: $out"
  exit 0
fi

mkdir -p "$(dirname "$out")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src/labsync-govmomi-suite"
cp "$root/tests/govmomi/main.go" "$work/src/labsync-govmomi-suite/"
(cd "$work/src/labsync-govmomi-suite" && GO111MODULE=off GOPATH="$work:/usr/share/gocode" GOCACHE="$target/govmomi/gocache" GOFLAGS= go build -o "$out" .)
echo "built $out"
