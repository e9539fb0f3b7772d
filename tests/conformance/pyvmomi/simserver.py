"""Starts and stops `labsync sim serve` as the command-line contract describes it.

The contract: the first stdout line is exactly `url: http(s)://127.0.0.1:PORT/sdk`, flushed at
once; with `--tls` the second is `thumbprint: AB:CD:...` (SHA-256 of the certificate DER); the
server runs until SIGINT/SIGTERM and then exits 0. The password comes from the environment.
"""

import os
import queue
import re
import signal
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

REPO_ROOT = Path(__file__).resolve().parents[3]

URL_LINE = re.compile(r"^url: (?P<scheme>https?)://(?P<host>127\.0\.0\.1):(?P<port>\d+)/sdk$")
THUMBPRINT_LINE = re.compile(r"^thumbprint: (?P<thumbprint>(?:[0-9A-F]{2}:){31}[0-9A-F]{2})$")

# How long the server may take to print its url line; generous because CI shares 2 cores.
STARTUP_TIMEOUT_S = 60.0
SHUTDOWN_TIMEOUT_S = 10.0

USERNAME = "labsync"
# Not the default password, so the suite also proves that LABSYNC_SIM_PASSWORD is honoured.
PASSWORD = "conformance-pw-7f3a"


def labsync_bin() -> Path:
    """The binary under test: env LABSYNC_BIN, else the debug build of this checkout."""
    configured = os.environ.get("LABSYNC_BIN")
    if configured:
        return Path(configured)
    target = os.environ.get("CARGO_TARGET_DIR")
    base = Path(target) if target else REPO_ROOT / "target"
    return base / "debug" / "labsync"


def inventory_file() -> Path:
    """The inventory served: env LABSYNC_SIM_INVENTORY, else the example topology."""
    configured = os.environ.get("LABSYNC_SIM_INVENTORY")
    if configured:
        return Path(configured)
    return REPO_ROOT / "examples" / "sim-inventory.yaml"


class SimStartError(RuntimeError):
    """The server did not print its url line as the contract says."""


@dataclass
class SimServer:
    """A running `labsync sim serve` process and what it announced."""

    process: subprocess.Popen
    url: str
    scheme: str
    host: str
    port: int
    thumbprint: Optional[str]
    stderr_path: Path
    exit_code: Optional[int] = None

    def stop(self) -> int:
        """SIGTERM, wait, kill on timeout; returns the exit code (negative: killed by signal)."""
        if self.exit_code is not None:
            return self.exit_code
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=SHUTDOWN_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.exit_code = self.process.returncode
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.exit_code

    def kill_hard(self) -> None:
        """SIGKILL, as a crash would: the server gets no chance to save or clean up."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.exit_code = self.process.returncode
        if self.process.stdout is not None:
            self.process.stdout.close()

    def stderr_tail(self, limit: int = 4000) -> str:
        """The end of what the server wrote to stderr, for failure messages."""
        try:
            return self.stderr_path.read_text(errors="replace")[-limit:]
        except OSError:
            return ""


def _read_lines(stream, lines: "queue.Queue[Optional[str]]") -> None:
    for raw in iter(stream.readline, ""):
        lines.put(raw.rstrip("\n"))
    lines.put(None)


def _next_line(lines: "queue.Queue[Optional[str]]", what: str, stderr_path: Path) -> str:
    try:
        line = lines.get(timeout=STARTUP_TIMEOUT_S)
    except queue.Empty:
        raise SimStartError(f"no {what} line within {STARTUP_TIMEOUT_S}s") from None
    if line is None:
        tail = stderr_path.read_text(errors="replace")[-4000:]
        raise SimStartError(f"server closed stdout before its {what} line; stderr:\n{tail}")
    return line


def start(log_dir: Path, tls: bool = False, extra_args: tuple = (),
          time_scale: str = "0.01") -> SimServer:
    """Starts a fresh server on a free loopback port, by default 100x faster than real time."""
    binary = labsync_bin()
    if not binary.exists():
        raise SimStartError(f"labsync binary not found at {binary} (set LABSYNC_BIN)")
    args = [
        str(binary), "sim", "serve",
        "--inventory", str(inventory_file()),
        "--listen", "127.0.0.1:0",
        "--time-scale", time_scale,
    ]
    if tls:
        args.append("--tls")
    args.extend(extra_args)
    env = dict(os.environ, LABSYNC_SIM_PASSWORD=PASSWORD)
    log_dir.mkdir(parents=True, exist_ok=True)
    stderr_path = log_dir / "sim-stderr.log"
    with open(stderr_path, "ab") as stderr:
        process = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL,
            text=True, cwd=REPO_ROOT, env=env,
        )
    lines: "queue.Queue[Optional[str]]" = queue.Queue()
    threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True).start()
    try:
        first = _next_line(lines, "url", stderr_path)
        match = URL_LINE.match(first)
        if match is None:
            raise SimStartError(f"first stdout line is not the url line: {first!r}")
        expected_scheme = "https" if tls else "http"
        if match["scheme"] != expected_scheme:
            raise SimStartError(f"url scheme is {match['scheme']}, expected {expected_scheme}")
        thumbprint = None
        if tls:
            second = _next_line(lines, "thumbprint", stderr_path)
            tp = THUMBPRINT_LINE.match(second)
            if tp is None:
                raise SimStartError(f"second stdout line is not the thumbprint line: {second!r}")
            thumbprint = tp["thumbprint"]
    except SimStartError:
        if process.poll() is None:
            process.kill()
            process.wait()
        raise
    return SimServer(
        process=process, url=first[len("url: "):], scheme=match["scheme"], host=match["host"],
        port=int(match["port"]), thumbprint=thumbprint, stderr_path=stderr_path,
    )
