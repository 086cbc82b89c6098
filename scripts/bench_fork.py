#!/usr/bin/env python3
"""End-to-end wall time of gastown.forkTown, next to getTown and a dryRun fork.

By default (--serve) a source town is seeded into a temporary data dir *before* the server
starts (tools write only while the server is stopped), the real server is started on it, and
--runs forks go through `POST /trpc/gastown.forkTown`, one at a time, each with a new name and
no idempotencyKey. Every fork's new town is deleted again (untimed) unless --keep-forks.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # runnable as `python scripts/bench_fork.py` without an install
    sys.path.insert(0, str(ROOT))

from _support import ServerProcess, Summary, clean_exit, format_table, ratio, start_server, summarize
from seed_town import SeedResult, seed_town

from dos.lifecycle import Owner
from rpc.auth import mint_token

BENCH_USER = "bench-user"

EPILOG = """\
--serve (the default unless --url is given): seed a source town of --beads beads and about
--events-per-bead events each with scripts/seed_town.py's builder into a temporary data dir,
start `python -m rpc.serve` on it (ephemeral port, NEXTAUTH_SECRET random), bench, stop the
server (its peak RSS, VmHWM, is reported) and remove the data dir (unless --keep-data).

--url: bench a running server instead; --token (or $TOKEN) must be able to fork --town-id
(default: the first town of gastown.listTowns). The forks are deleted again unless --keep-forks.

examples:
  .venv/bin/python scripts/bench_fork.py
  .venv/bin/python scripts/bench_fork.py --beads 100000 --events-per-bead 10 --runs 5
  TOKEN=... .venv/bin/python scripts/bench_fork.py --url http://127.0.0.1:8787 --town-id <uuid>
"""


class BadResponse(Exception):
    """A response that is not a tRPC success."""


@dataclass
class Measurements:
    get_town: list[float]
    dry_runs: list[float]
    forks: list[float]
    sample_fork: dict[str, Any]


# -- tRPC calls -----------------------------------------------------------------------------------
def trpc_data(response: httpx.Response, path: str) -> Any:
    """The `result.data` of a tRPC HTTP success; BadResponse otherwise."""
    if response.status_code != 200:
        raise BadResponse(f"{path}: HTTP {response.status_code}: {response.text[:300]}")
    body = response.json()
    if not isinstance(body, dict) or "result" not in body:
        raise BadResponse(f"{path}: not a tRPC success: {response.text[:300]}")
    return body["result"].get("data")


def query(client: httpx.Client, path: str, input: dict[str, Any] | None = None) -> Any:
    params = {"input": json.dumps(input)} if input is not None else None
    return trpc_data(client.get(f"/trpc/{path}", params=params), path)


def mutate(client: httpx.Client, path: str, input: dict[str, Any]) -> Any:
    return trpc_data(client.post(f"/trpc/{path}", json=input), path)


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


# -- the bench --------------------------------------------------------------------------------------
def bench_get_town(client: httpx.Client, town_id: str, samples: int) -> list[float]:
    def get() -> None:
        town = query(client, "gastown.getTown", {"townId": town_id})
        if not isinstance(town, dict) or town.get("id") != town_id:
            raise BadResponse(f"gastown.getTown: expected town {town_id}, got {str(town)[:200]}")

    for _ in range(3):  # warm-up: connection, object open
        get()
    return [timed(get) for _ in range(samples)]


def fork_once(client: httpx.Client, town_id: str, name: str, *, dry_run: bool) -> dict[str, Any]:
    result = mutate(
        client, "gastown.forkTown", {"sourceTownId": town_id, "newTownName": name, "dryRun": dry_run}
    )
    if not isinstance(result, dict) or "copied" not in result or "skipped" not in result:
        raise BadResponse(f"gastown.forkTown: unexpected result {str(result)[:300]}")
    town = result.get("town")
    if dry_run and town is not None:
        raise BadResponse("gastown.forkTown: a dryRun created a town")
    if not dry_run and not (isinstance(town, dict) and town.get("id")):
        raise BadResponse(f"gastown.forkTown: no new town in {str(result)[:300]}")
    return result


def bench_forks(
    client: httpx.Client, town_id: str, *, runs: int, dry_run: bool, keep: bool
) -> tuple[list[float], dict[str, Any]]:
    durations: list[float] = []
    first: dict[str, Any] = {}
    label = "dry run" if dry_run else "fork"
    for i in range(1, runs + 1):
        name = f"bench {label} {i} of {runs}"
        started = time.perf_counter()
        result = fork_once(client, town_id, name, dry_run=dry_run)
        seconds = time.perf_counter() - started
        durations.append(seconds)
        first = first or result
        if not dry_run and not keep:
            mutate(client, "gastown.deleteTown", {"townId": result["town"]["id"]})  # untimed
        print(f"  {label} {i}/{runs}: {seconds * 1000:,.1f} ms", file=sys.stderr, flush=True)
    return durations, first


def measure(url: str, token: str, town_id: str, args: argparse.Namespace) -> Measurements:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=args.timeout) as client:
        get_town = bench_get_town(client, town_id, args.get_town_samples)
        dry_runs, _ = bench_forks(client, town_id, runs=args.runs, dry_run=True, keep=args.keep_forks)
        forks, sample = bench_forks(client, town_id, runs=args.runs, dry_run=False, keep=args.keep_forks)
    return Measurements(get_town, dry_runs, forks, sample)


# -- report -----------------------------------------------------------------------------------------
def stats_row(label: str, s: Summary) -> list[str]:
    return [label, str(s.count), *(f"{v * 1000:,.2f}" for v in (s.median, s.p90, s.minimum, s.maximum))]


def counts_line(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counts.items())


def report(m: Measurements) -> str:
    get_town, dry, fork = summarize(m.get_town), summarize(m.dry_runs), summarize(m.forks)
    table = format_table(
        ["call", "n", "median ms", "p90 ms", "min ms", "max ms"],
        [
            stats_row("gastown.getTown", get_town),
            stats_row("forkTown dryRun", dry),
            stats_row("forkTown", fork),
        ],
    )
    warnings = ", ".join(w.get("code", "?") for w in m.sample_fork.get("warnings", [])) or "none"
    return "\n".join(
        [
            table,
            f"fork median / getTown median: {ratio(fork.median, get_town.median)}",
            f"fork median / dryRun median:  {ratio(fork.median, dry.median)}",
            f"copied (fork 1):  {counts_line(m.sample_fork['copied'])}",
            f"skipped (fork 1): {counts_line(m.sample_fork['skipped'])}",
            f"warnings (fork 1): {warnings}",
        ]
    )


def mib(kib: int | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:,.1f} MiB"


# -- modes ------------------------------------------------------------------------------------------
def seed_source(data_dir: Path, secret: str, args: argparse.Namespace) -> SeedResult:
    print(
        f"seeding a source town: {args.beads:,} beads, ~{args.events_per_bead} events each",
        file=sys.stderr,
        flush=True,
    )
    return seed_town(
        data_dir,
        secret=secret,
        owner=Owner("user", BENCH_USER, BENCH_USER),
        name=f"Bench source ({args.beads:,} beads)",
        beads=args.beads,
        events_per_bead=args.events_per_bead,
        seed=args.seed,
        rig_count=3,
        show_progress=True,
    )


def serve_and_run(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="bench-fork-"))
    secret = secrets.token_urlsafe(32)
    server: ServerProcess | None = None
    try:
        seeded = seed_source(workdir / "data", secret, args)
        server = start_server(workdir / "data", secret=secret, demo=False, log_level=args.server_log_level)
        before = server.peak_rss_kib()
        print(
            f"bench_fork: source town {seeded.town_id}: {seeded.counts.get('beads', 0):,} beads, "
            f"{seeded.counts.get('bead_events', 0):,} bead_events, {seeded.counts.get('rigs', 0)} rigs, "
            f"{seeded.file_bytes / 2**20:,.1f} MiB, seeded in {seeded.seconds:.1f} s; server {server.url} (--serve); "
            f"{args.runs} forks, {args.runs} dry runs, {args.get_town_samples} getTown calls, sequential",
            flush=True,
        )
        m = measure(server.url, mint_token(secret, BENCH_USER), seeded.town_id, args)
        after = server.peak_rss_kib()
        print(report(m))
        print(f"server peak RSS (VmHWM): {mib(after)} after the forks ({mib(before)} after startup)")
        return 0
    finally:
        if server is not None:
            status = server.stop()
            if not clean_exit(status):
                print(
                    f"bench_fork: server exited with status {status}:\n{server.log_tail()}", file=sys.stderr
                )
        if args.keep_data:
            print(f"data kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def run_remote(args: argparse.Namespace) -> int:
    token = args.token or os.environ.get("TOKEN")
    if not token:
        print("bench_fork: pass --token or set $TOKEN (or drop --url to use --serve)", file=sys.stderr)
        return 2
    with httpx.Client(base_url=args.url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        towns = query(client, "gastown.listTowns") if args.town_id is None else [{"id": args.town_id}]
    if not towns:
        print("bench_fork: the caller has no towns; pass --town-id", file=sys.stderr)
        return 2
    town_id = str(towns[0]["id"])
    print(
        f"bench_fork: source town {town_id} on {args.url}; {args.runs} forks, {args.runs} dry runs, "
        f"{args.get_town_samples} getTown calls, sequential",
        flush=True,
    )
    print(report(measure(args.url, token, town_id, args)))
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Bench gastown.forkTown end to end (with getTown and a dryRun fork for scale).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--serve", action="store_true", help="seed and start a server of our own (the default without --url)"
    )
    parser.add_argument("--url", default=None, help="bench this running server instead of --serve")
    parser.add_argument("--token", default=None, help="bearer token for --url (default $TOKEN)")
    parser.add_argument(
        "--town-id", default=None, help="source town for --url (default: first of gastown.listTowns)"
    )
    parser.add_argument("--runs", type=int, default=20, help="forks, and dryRun forks, to time (default 20)")
    parser.add_argument(
        "--beads", type=int, default=1000, help="--serve: beads in the source town (default 1000)"
    )
    parser.add_argument("--events-per-bead", type=int, default=5, help="--serve: events per bead (default 5)")
    parser.add_argument(
        "--seed", type=int, default=0, help="--serve: random seed of the source history (default 0)"
    )
    parser.add_argument(
        "--get-town-samples", type=int, default=200, help="getTown calls to time (default 200)"
    )
    parser.add_argument("--keep-forks", action="store_true", help="do not delete the forked towns")
    parser.add_argument("--keep-data", action="store_true", help="--serve: keep the temporary data dir")
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="per-request timeout, seconds (default 600)"
    )
    parser.add_argument(
        "--server-log-level", default="info", help="--serve: GASTOWN_LOG_LEVEL (default info)"
    )
    args = parser.parse_args(argv)
    if args.serve and args.url:
        parser.error("--serve and --url exclude each other")
    if args.runs < 1 or args.get_town_samples < 1 or args.beads < 1 or args.events_per_bead < 0:
        parser.error("--runs, --get-town-samples and --beads must be >= 1, --events-per-bead >= 0")
    if args.url:
        args.url = args.url.rstrip("/")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run_remote(args) if args.url else serve_and_run(args)
    except (BadResponse, httpx.HTTPError, RuntimeError) as exc:
        print(f"bench_fork: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
