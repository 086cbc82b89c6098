"""wrk runs and the Node peer, for `scripts/bench_rpc.py --wrk` (not an entry point).

`wrk` is Debian's package (`apt-get install wrk`); the Node peer is `scripts/node_peer/`
(the stock @trpc/server standalone adapter), started with `node` on its own port.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from _support import ROOT, free_port

NODE_PEER_DIR = ROOT / "scripts" / "node_peer"

_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
_LATENCY_LINE = re.compile(r"^\s*(50|75|90|99)%\s+([0-9.]+)(us|ms|s|m)\s*$", re.MULTILINE)
_RATE_LINE = re.compile(r"^Requests/sec:\s+([0-9.]+)", re.MULTILINE)
_TOTAL_LINE = re.compile(r"^\s*([0-9]+) requests in ", re.MULTILINE)
_NON_2XX_LINE = re.compile(r"Non-2xx or 3xx responses:\s+([0-9]+)")
_SOCKET_ERRORS_LINE = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


@dataclass(frozen=True)
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int

    @property
    def ok(self) -> bool:
        return self.requests > 0 and self.non_2xx == 0 and self.socket_errors == 0


def wrk_command(url: str, *, token: str, seconds: float, threads: int, connections: int) -> list[str]:
    return [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "-H",
        f"Authorization: Bearer {token}",
        url,
    ]


def printable_command(command: list[str], token: str) -> str:
    """The command as a shell line, with the token shown as `$TOKEN`."""
    header = f"Authorization: Bearer {token}"
    return " ".join(
        '"Authorization: Bearer $TOKEN"' if arg == header else shlex.quote(arg) for arg in command
    )


def parse_wrk(output: str) -> WrkResult:
    latencies = {q: float(v) * _UNIT_MS[u] for q, v, u in _LATENCY_LINE.findall(output)}
    rate = _RATE_LINE.search(output)
    total = _TOTAL_LINE.search(output)
    if rate is None or total is None or "99" not in latencies:
        raise ValueError(f"unexpected wrk output:\n{output}")
    non_2xx = _NON_2XX_LINE.search(output)
    socket_errors = _SOCKET_ERRORS_LINE.search(output)
    return WrkResult(
        requests_per_s=float(rate.group(1)),
        p50_ms=latencies["50"],
        p99_ms=latencies["99"],
        requests=int(total.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in socket_errors.groups()) if socket_errors else 0,
    )


def run_wrk(command: list[str], seconds: float) -> WrkResult:
    completed = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"wrk exited with {completed.returncode}: {completed.stderr.strip()}")
    return parse_wrk(completed.stdout)


def require_wrk() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("bench_rpc: wrk is not installed (Debian: apt-get install -y wrk)")


# -- the Node peer ----------------------------------------------------------------------------------
def ensure_node_peer_installed() -> None:
    """`npm ci` in scripts/node_peer when its node_modules are missing (they are not committed)."""
    if shutil.which("node") is None:
        raise SystemExit("bench_rpc: node is not installed (the Node peer needs Node 20+)")
    if (NODE_PEER_DIR / "node_modules" / "@trpc" / "server").is_dir():
        return
    print("bench_rpc: installing the Node peer: npm ci --prefix scripts/node_peer", flush=True)
    subprocess.run(
        ["npm", "ci", "--prefix", str(NODE_PEER_DIR), "--no-audit", "--no-fund", "--loglevel=error"],
        check=True,
    )


@dataclass
class NodePeer:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    command: str  # how it was started, for the report (the secret shown as $NEXTAUTH_SECRET)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no peer log)"

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_node_peer(secret: str, towns_file: Path, workdir: Path, startup_timeout: float = 30.0) -> NodePeer:
    """Start `node scripts/node_peer/server.mjs` on an ephemeral port; wait until it listens."""
    port = free_port()
    env = {
        **os.environ,
        "NODE_ENV": "production",
        "NEXTAUTH_SECRET": secret,
        "PEER_TOWNS_FILE": str(towns_file),
        "HOST": "127.0.0.1",
        "PORT": str(port),
    }
    log_path = workdir / f"node-peer-{port}.log"
    script = NODE_PEER_DIR / "server.mjs"
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            ["node", str(script)], cwd=NODE_PEER_DIR, env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    command = (
        f"NODE_ENV=production NEXTAUTH_SECRET=$NEXTAUTH_SECRET PEER_TOWNS_FILE={towns_file} "
        f"HOST=127.0.0.1 PORT={port} node {script.relative_to(ROOT)}"
    )
    peer = NodePeer(process, port, log_path, command)
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"node peer exited with status {process.returncode}:\n{peer.log_tail()}")
        try:
            httpx.get(f"{peer.url}/trpc/gastown.getTown", timeout=1)
            return peer  # any HTTP answer (401 without a token) means it is listening
        except httpx.HTTPError:
            time.sleep(0.05)
    peer.stop()
    raise RuntimeError(f"node peer did not listen within {startup_timeout:.0f}s:\n{peer.log_tail()}")
