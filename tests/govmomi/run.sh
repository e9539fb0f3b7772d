#!/usr/bin/env bash
# Runs the govmomi client suite (tests/govmomi/main.go, VMware's Go SDK from Debian) against a
# freshly started `labsync sim serve --tls`, pinned to the thumbprint the server prints.
#
# Builds the suite with tests/govmomi/build.sh (installs golang-go and
# golang-github-vmware-govmomi-dev through apt when missing) and the labsync binary with cargo
# when it is missing. Extra arguments go to the suite (e.g. `-run 'snapshot|rename'`).
#
# Environment:
#   LABSYNC_BIN            binary under test (default: $CARGO_TARGET_DIR or target/, then debug/labsync)
#   LABSYNC_SIM_INVENTORY  inventory served (default: examples/sim-inventory.yaml)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
inventory="${LABSYNC_SIM_INVENTORY:-$root/examples/sim-inventory.yaml}"

bash "$here/build.sh"
suite="$target/govmomi/govmomi-suite"

if [[ -z "${LABSYNC_BIN:-}" ]]; then
    LABSYNC_BIN="$target/debug/labsync"
    if [[ ! -x "$LABSYNC_BIN" ]]; then
        echo "govmomi: building $LABSYNC_BIN" >&2
        (cd "$root" && CARGO_TARGET_DIR="$target" cargo build --bin labsync)
    fi
fi
if [[ ! -x "$LABSYNC_BIN" ]]; then
    echo "govmomi: no executable labsync binary at $LABSYNC_BIN" >&2
    exit 1
fi

work="$(mktemp -d)"
server=""
cleanup() {
    if [[ -n "$server" ]] && kill -0 "$server" 2>/dev/null; then
        kill -TERM "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# Not the default password, so a server ignoring the variable fails the login.
export LABSYNC_SIM_PASSWORD="govmomi-$$-$RANDOM"
"$LABSYNC_BIN" sim serve --inventory "$inventory" --listen 127.0.0.1:0 --tls --time-scale 0.01 \
    >"$work/stdout" 2>"$work/stderr" &
server=$!

# The contract (docs/simulator.md): "url: …" then "thumbprint: …", flushed at once.
for _ in $(seq 1 300); do
    if [[ "$(grep -c . "$work/stdout" || true)" -ge 2 ]]; then break; fi
    if ! kill -0 "$server" 2>/dev/null; then break; fi
    sleep 0.1
done
url="$(sed -n 's/^url: //p' "$work/stdout" | head -n 1)"
thumbprint="$(sed -n 's/^thumbprint: //p' "$work/stdout" | head -n 1)"
if [[ -z "$url" || -z "$thumbprint" ]]; then
    echo "govmomi: labsync sim serve did not print its url and thumbprint; its stderr:" >&2
    cat "$work/stderr" >&2
    exit 1
fi
echo "govmomi: suite against $url" >&2

set +e
start=$(date +%s%N)
"$suite" -url "$url" -thumbprint "$thumbprint" "$@"
status=$?
end=$(date +%s%N)
set -e
echo "govmomi: suite ran in $(( (end - start) / 1000000 )) ms" >&2

kill -TERM "$server"
set +e
wait "$server"
server_status=$?
set -e
server=""
if [[ $server_status -ne 0 ]]; then
    echo "govmomi: labsync sim serve exited $server_status after SIGTERM; its stderr:" >&2
    cat "$work/stderr" >&2
    exit 1
fi
exit $status
