#!/usr/bin/env python3
"""The cost of durable commits on the bead-write path: gastown.createBead over tRPC HTTP with
SQLite's `synchronous` at NORMAL and at FULL (GASTOWN_SQLITE_SYNCHRONOUS), alternating.

Each run starts the real server on a fresh temporary data dir with one mode, creates a town
and a rig, then makes --writes createBead calls one after another (each answer waited for:
the latency a client sees) and --concurrent-writes more from --clients threads at once
(throughput). Runs alternate NORMAL, FULL for --pairs pairs; the medians and FULL ÷ NORMAL
are printed with the exact command.
"""

from __future__ import annotations

import argparse
import secrets
import shlex
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _support import format_table, start_server

from rpc.auth import mint_token

MODES = ("NORMAL", "FULL")


def _post(client: httpx.Client, path: str, body: dict[str, object]) -> dict[str, object]:
    response = client.post(f"/trpc/gastown.{path}", json=body)
    response.raise_for_status()
    data = response.json()["result"]["data"]
    assert isinstance(data, dict)
    return data


def one_run(mode: str, writes: int, concurrent: int, clients: int) -> tuple[float, float]:
    """(median createBead latency in ms, concurrent createBead/s) with one synchronous mode."""
    secret = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="bench-writes-") as tmp:
        server = start_server(
            Path(tmp) / "data", secret=secret, demo=False, log_level="warning",
            extra_env={"GASTOWN_SQLITE_SYNCHRONOUS": mode},
        )
        try:
            headers = {"Authorization": f"Bearer {mint_token(secret, 'bench-user')}"}
            with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
                town = _post(client, "createTown", {"name": "bench"})["id"]
                rig = _post(client, "createRig", {"townId": town, "name": "web", "gitUrl": "https://github.com/a/b.git"})["id"]
                for _ in range(20):  # warm up
                    _post(client, "createBead", {"rigId": rig, "title": "warm"})
                latencies = []
                for i in range(writes):
                    started = time.perf_counter()
                    _post(client, "createBead", {"rigId": rig, "title": f"bead {i}"})
                    latencies.append((time.perf_counter() - started) * 1000)

                def burst(n: int) -> None:
                    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as own:
                        for i in range(n):
                            _post(own, "createBead", {"rigId": rig, "title": f"c {i}"})

                started = time.perf_counter()
                with ThreadPoolExecutor(clients) as pool:
                    list(pool.map(burst, [concurrent // clients] * clients))
                throughput = (concurrent // clients * clients) / (time.perf_counter() - started)
        finally:
            server.stop()
    return statistics.median(latencies), throughput


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--writes", type=int, default=300, help="sequential createBead calls per run")
    parser.add_argument("--concurrent-writes", type=int, default=400, help="createBead calls from --clients at once")
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    results: dict[str, list[tuple[float, float]]] = {m: [] for m in MODES}
    for pair in range(args.pairs):
        for mode in MODES:
            latency, rate = one_run(mode, args.writes, args.concurrent_writes, args.clients)
            results[mode].append((latency, rate))
            print(f"pair {pair + 1} {mode:6}: createBead p50 {latency:.2f} ms, {rate:.0f} writes/s with {args.clients} clients", flush=True)
    med = {m: (statistics.median(r[0] for r in results[m]), statistics.median(r[1] for r in results[m])) for m in MODES}
    rows = [[m, f"{med[m][0]:.2f}", f"{med[m][1]:.0f}"] for m in MODES]
    rows.append(["FULL / NORMAL", f"{med['FULL'][0] / med['NORMAL'][0]:.2f}x", f"{med['FULL'][1] / med['NORMAL'][1]:.2f}x"])
    print(format_table(["synchronous", "createBead p50 ms (sequential)", f"writes/s ({args.clients} clients)"], rows))
    print("command:", shlex.join([sys.executable, *sys.argv]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
