#!/usr/bin/env bash
# Runs the pyvmomi conformance suite against `labsync sim serve`.
#
# Creates (or reuses) a venv under the cargo target directory, installs the pinned packages of
# tests/conformance/requirements.txt from PyPI, builds the labsync binary if it is missing, and
# runs pytest. Extra arguments go to pytest (e.g. `-k paging`, `-x`).
#
# Environment:
#   LABSYNC_BIN        binary under test (default: $CARGO_TARGET_DIR or target/, then debug/labsync)
#   PYTHON             interpreter used to create the venv (default: python3)
#   CONFORMANCE_VENV   venv location (default: <target>/conformance-venv)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
venv="${CONFORMANCE_VENV:-$target/conformance-venv}"
requirements="$here/requirements.txt"
python="${PYTHON:-python3}"

# The venv is rebuilt when the pinned requirements change.
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "conformance: creating venv at $venv" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    echo "$want" > "$stamp"
fi

if [[ -z "${LABSYNC_BIN:-}" ]]; then
    export LABSYNC_BIN="$target/debug/labsync"
    if [[ ! -x "$LABSYNC_BIN" ]]; then
        echo "conformance: building $LABSYNC_BIN" >&2
        (cd "$root" && CARGO_TARGET_DIR="$target" cargo build --bin labsync)
    fi
fi
if [[ ! -x "$LABSYNC_BIN" ]]; then
    echo "conformance: no executable labsync binary at $LABSYNC_BIN" >&2
    exit 1
fi

set +e
# No bytecode or cache files in the source tree.
(cd "$here/pyvmomi" && PYTHONDONTWRITEBYTECODE=1 "$venv/bin/python" -m pytest "$@")
status=$?
set -e

# pytest exits 5 when it collected no tests: a suite that ran nothing has not passed.
if [[ $status -eq 5 ]]; then
    echo "conformance: pytest collected no tests; treating that as a failure" >&2
    exit 1
fi
exit $status
