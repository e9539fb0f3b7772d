#!/usr/bin/env bash
# Runs the Ansible conformance playbook (community.vmware modules) against `labsync sim serve --tls`.
#
# Creates (or reuses) a venv under the cargo target directory, installs the pinned packages of
# tests/ansible/requirements.txt from PyPI (ansible, which bundles community.vmware, and pyvmomi),
# starts the simulator on a free loopback port with TLS, pins its certificate (the PEM fetched
# from the server must have the SHA-256 thumbprint the server printed; Ansible then validates
# against it with hostname checking, validate_certs stays on), and runs the playbook.
# Extra arguments go to ansible-playbook (e.g. `-v`, `--start-at-task NAME`).
#
# Environment:
#   LABSYNC_BIN     binary under test (default: $CARGO_TARGET_DIR or target/, then debug/labsync)
#   PYTHON          interpreter used to create the venv (default: python3; ansible 12 needs >= 3.11)
#   ANSIBLE_VENV    venv location (default: <target>/ansible-venv)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
venv="${ANSIBLE_VENV:-$target/ansible-venv}"
requirements="$here/requirements.txt"
python="${PYTHON:-python3}"

# The venv is rebuilt when the pinned requirements change.
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/ansible-playbook" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "ansible: creating venv at $venv" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    echo "$want" > "$stamp"
fi

if [[ -z "${LABSYNC_BIN:-}" ]]; then
    LABSYNC_BIN="$target/debug/labsync"
    if [[ ! -x "$LABSYNC_BIN" ]]; then
        echo "ansible: building $LABSYNC_BIN" >&2
        (cd "$root" && CARGO_TARGET_DIR="$target" cargo build --bin labsync)
    fi
fi
if [[ ! -x "$LABSYNC_BIN" ]]; then
    echo "ansible: no executable labsync binary at $LABSYNC_BIN" >&2
    exit 1
fi

work="$(mktemp -d)"
sim_pid=""
cleanup() {
    if [[ -n "$sim_pid" ]] && kill -0 "$sim_pid" 2>/dev/null; then
        kill -TERM "$sim_pid" 2>/dev/null || true
        wait "$sim_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# Not the default password, so the run also proves LABSYNC_SIM_PASSWORD is honoured.
password="ansible-pw-4c1e"
LABSYNC_SIM_PASSWORD="$password" "$LABSYNC_BIN" sim serve \
    --inventory "$root/examples/sim-inventory.yaml" \
    --listen 127.0.0.1:0 --time-scale 0.01 --tls \
    > "$work/sim.out" 2> "$work/sim.err" < /dev/null &
sim_pid=$!

# The contract: first stdout line `url: https://127.0.0.1:PORT/sdk`, second `thumbprint: AB:…`.
for _ in $(seq 1 600); do
    [[ "$(wc -l < "$work/sim.out")" -ge 2 ]] && break
    if ! kill -0 "$sim_pid" 2>/dev/null; then
        echo "ansible: labsync sim serve exited before announcing its url; stderr:" >&2
        cat "$work/sim.err" >&2
        exit 1
    fi
    sleep 0.1
done
url_line="$(sed -n 1p "$work/sim.out")"
thumb_line="$(sed -n 2p "$work/sim.out")"
if [[ ! "$url_line" =~ ^url:\ https://127\.0\.0\.1:([0-9]+)/sdk$ ]]; then
    echo "ansible: unexpected url line: $url_line" >&2
    exit 1
fi
port="${BASH_REMATCH[1]}"
if [[ ! "$thumb_line" =~ ^thumbprint:\ (([0-9A-F]{2}:){31}[0-9A-F]{2})$ ]]; then
    echo "ansible: unexpected thumbprint line: $thumb_line" >&2
    exit 1
fi
thumbprint="${BASH_REMATCH[1]}"

# Pin: fetch the certificate, refuse it unless its SHA-256 is the announced thumbprint, and make
# it the only extra trust anchor (OpenSSL's SSL_CERT_FILE, read by ssl.load_default_certs()).
"$venv/bin/python" - "$port" "$thumbprint" "$work/sim-cert.pem" <<'EOF'
import hashlib, ssl, sys
port, want, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
pem = ssl.get_server_certificate(("127.0.0.1", port))
got = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest().upper()
got = ":".join(got[i:i + 2] for i in range(0, len(got), 2))
if got != want:
    sys.exit(f"ansible: certificate thumbprint {got} is not the announced {want}")
open(out, "w").write(pem)
EOF

set +e
(
    cd "$here"
    export SSL_CERT_FILE="$work/sim-cert.pem"
    export VMWARE_HOST=127.0.0.1 VMWARE_PORT="$port" VMWARE_USER=labsync
    export VMWARE_PASSWORD="$password" VMWARE_VALIDATE_CERTS=true
    # Everything Ansible writes stays in the work directory, nothing in ~/.ansible.
    export ANSIBLE_CONFIG="$here/ansible.cfg" ANSIBLE_HOME="$work/ansible-home"
    export ANSIBLE_LOCAL_TEMP="$work/ansible-tmp" ANSIBLE_REMOTE_TEMP="$work/ansible-tmp"
    export PYTHONDONTWRITEBYTECODE=1
    "$venv/bin/ansible-playbook" -i localhost, -c local \
        -e "ansible_python_interpreter=$venv/bin/python" \
        playbook.yml "$@"
)
status=$?
set -e

if [[ $status -ne 0 ]]; then
    echo "ansible: playbook failed ($status); simulator stderr (tail):" >&2
    tail -n 40 "$work/sim.err" >&2
fi
if ! kill -0 "$sim_pid" 2>/dev/null; then
    echo "ansible: labsync sim serve died during the run" >&2
    status=1
else
    # The contract: SIGTERM ends the server with exit code 0.
    kill -TERM "$sim_pid"
    set +e
    wait "$sim_pid"
    code=$?
    set -e
    sim_pid=""
    if [[ $code -ne 0 ]]; then
        echo "ansible: labsync sim serve exited $code after SIGTERM" >&2
        status=1
    fi
fi
exit $status
