"""Helpers shared by scripts/seed_town.py, bench_rpc.py and bench_fork.py (not an entry point).

A text progress bar, a port probe, a server subprocess (`python -m rpc.serve` on a data dir)
and latency statistics. Standard library only, plus httpx (a project dependency).
"""

from __future__ import annotations

import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import httpx

ROOT = Path(__file__).resolve().parent.parent


# -- progress ---------------------------------------------------------------------------------
class ProgressBar:
    """`[####----] done/total unit  rate/s  ETA` on stderr, redrawn at most every `interval` s.

    Safe to call from another thread (populate_town reports from the object's worker thread).
    On a terminal the line is redrawn in place; otherwise a plain line is written at most once
    a second, so logs stay readable.
    """

    def __init__(self, total: int, unit: str, *, stream: TextIO = sys.stderr, width: int = 30) -> None:
        self.total, self.unit, self.stream, self.width = max(total, 0), unit, stream, width
        self.tty = stream.isatty()
        self.interval = 0.1 if self.tty else 1.0
        self.started = time.monotonic()
        self._last_draw = -math.inf
        self._done = 0
        self._drawn = -1  # `done` of the last drawn line
        self._lock = threading.Lock()

    def update(self, done: int) -> None:
        with self._lock:
            self._done = done
            now = time.monotonic()
            if now - self._last_draw >= self.interval:
                self._last_draw = now
                self._draw(now)

    def finish(self) -> None:
        with self._lock:
            if self._drawn != self._done:
                self._draw(time.monotonic())
            if self.tty:
                self.stream.write("\n")
            self.stream.flush()

    def _draw(self, now: float) -> None:
        elapsed = max(now - self.started, 1e-9)
        fraction = min(self._done / self.total, 1.0) if self.total else 1.0
        filled = int(fraction * self.width)
        rate = self._done / elapsed
        remaining = max(self.total - self._done, 0)
        eta = remaining / rate if rate > 0 else (0.0 if remaining == 0 else math.inf)
        line = (
            f"[{'#' * filled}{'-' * (self.width - filled)}] {self._done:,}/{self.total:,} {self.unit}"
            f"  {rate:,.0f}/s  ETA {format_seconds(eta)}"
        )
        self.stream.write(f"\r{line}\x1b[K" if self.tty else f"{line}\n")
        self._drawn = self._done
        self.stream.flush()


def format_seconds(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "--:--"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes:d}:{secs:02d}"


# -- ports and servers ------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_in_use(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class ServerProcess:
    """A `python -m rpc.serve` child on 127.0.0.1:<port>; its output goes to `log_path`."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def peak_rss_kib(self) -> int | None:
        """VmHWM (peak resident set) of the server process, from /proc (Linux only)."""
        return read_proc_status_kib(self.process.pid, "VmHWM")

    def stop(self) -> int:
        """SIGTERM, wait for the graceful shutdown; the exit status (see `clean_exit`)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def clean_exit(status: int) -> bool:
    """uvicorn re-raises SIGTERM after a graceful shutdown, so -SIGTERM is a clean stop too."""
    return status in (0, -signal.SIGTERM)


def start_server(
    data_dir: Path,
    *,
    secret: str,
    demo: bool,
    log_level: str = "info",
    startup_timeout: float = 120.0,
    extra_env: dict[str, str] | None = None,
    module: str = "rpc.serve",
) -> ServerProcess:
    """Start the real server (`python -m <module>`: rpc.serve, or rpc.serve_ray for Ray Serve)
    on an ephemeral port and wait until /healthz answers."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GASTOWN_")}
    env.update(
        {
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "GASTOWN_DATA_DIR": str(data_dir),
            "NEXTAUTH_SECRET": secret,
            "GASTOWN_DEMO": "1" if demo else "0",
            "GASTOWN_LOG_LEVEL": log_level,
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra_env or {})  # e.g. GASTOWN_TEST_FAULT for scripts/crash_fork.py
    log_path = data_dir.parent / f"server-{port}.log"
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", module], cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    server = ServerProcess(process=process, port=port, log_path=log_path)
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with status {process.returncode}:\n{server.log_tail()}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    server.process.kill()
    server.process.wait()
    raise RuntimeError(f"server did not answer /healthz within {startup_timeout:.0f}s:\n{server.log_tail()}")


def read_proc_status_kib(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])  # "VmHWM:   123456 kB"
    except (OSError, ValueError, IndexError):
        return None
    return None


# -- statistics -------------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Summary:
    count: int
    median: float
    p90: float
    p99: float
    minimum: float
    maximum: float


def summarize(values: list[float]) -> Summary:
    if not values:
        return Summary(0, math.nan, math.nan, math.nan, math.nan, math.nan)
    return Summary(
        count=len(values),
        median=statistics.median(values),
        p90=percentile(values, 90),
        p99=percentile(values, 99),
        minimum=min(values),
        maximum=max(values),
    )


def ratio(numerator: float, denominator: float) -> str:
    if not (math.isfinite(numerator) and math.isfinite(denominator)) or denominator == 0:
        return "n/a"
    return f"{numerator / denominator:.2f}x"


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """Left-aligned first column, right-aligned others."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])
