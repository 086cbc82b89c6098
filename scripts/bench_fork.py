#!/usr/bin/env python3
"""End-to-end wall time of gastown.forkTown, next to getTown and a dryRun fork.

By default (--serve) a source town is seeded into a temporary data dir *before* the server
starts (tools write only while the server is stopped), the real server is started on it, and
--runs forks go through `POST /trpc/gastown.forkTown`, one at a time, each with a new name and
no idempotencyKey. Every fork's new town is deleted again (untimed) unless --keep-forks.

--compare-sqlite puts each fork next to SQLite's own copy of the same rows (scripts/_sqlite_copy.py),
in alternating pairs, for the big town and (unless --no-small) the seed-size town, with getTown on
another town sampled during every fork and the server's peak RSS growth (issue 7, part 4).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import shlex
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # runnable as `python scripts/bench_fork.py` without an install
    sys.path.insert(0, str(ROOT))

from _sqlite_copy import CopyResult, remove_database, sqlite_copy
from _support import (
    ServerProcess,
    Summary,
    clean_exit,
    format_table,
    percentile,
    ratio,
    start_server,
    summarize,
)
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

--compare-sqlite (with --serve): seed the big source (--beads/--events-per-bead) and, unless
--no-small, a 1,000-bead / 5-event one, start the server, create a small probe town, then run
--pairs (big) and --small-pairs (small) ALTERNATING pairs: a fork over HTTP (timed end to end,
deleted after, untimed), then SQLite's own copy of the same rows into a fresh temp file (ATTACH the
source, tables without secondary indexes, rows in key order, indexes built at the end, one
transaction; timed BEGIN..COMMIT; deleted after). During each big fork a second client thread
samples gastown.getTown on the probe town (--sample-gap-ms between calls); the small forks run
alone, as their SQLite copies do. Reports per pair, medians,
the median ratio, getTown p50/p99, server VmHWM growth, next to issue 7's targets; exits 1 if any
request failed.

examples:
  .venv/bin/python scripts/bench_fork.py
  .venv/bin/python scripts/bench_fork.py --compare-sqlite --beads 100000 --events-per-bead 10 --pairs 3
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
def seed_source(
    data_dir: Path,
    secret: str,
    args: argparse.Namespace,
    *,
    beads: int | None = None,
    events_per_bead: int | None = None,
) -> SeedResult:
    beads = args.beads if beads is None else beads
    events_per_bead = args.events_per_bead if events_per_bead is None else events_per_bead
    print(
        f"seeding a source town: {beads:,} beads, ~{events_per_bead} events each",
        file=sys.stderr,
        flush=True,
    )
    return seed_town(
        data_dir,
        secret=secret,
        owner=Owner("user", BENCH_USER, BENCH_USER),
        name=f"Bench source ({beads:,} beads)",
        beads=beads,
        events_per_bead=events_per_bead,
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
        server = start_server(workdir / "data", secret=secret, demo=False, log_level=args.server_log_level, extra_env=_sync_env(args))
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
        _stop_and_clean(server, workdir, args)


def _stop_and_clean(server: ServerProcess | None, workdir: Path, args: argparse.Namespace) -> None:
    """Stop our server (saying so if it did not exit cleanly) and remove the data dir unless kept."""
    if server is not None:
        status = server.stop()
        if not clean_exit(status):
            print(f"bench_fork: server exited with status {status}:\n{server.log_tail()}", file=sys.stderr)
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


# -- --compare-sqlite ---------------------------------------------------------------------------------
SMALL_BEADS, SMALL_EVENTS_PER_BEAD = 1000, 5
TARGETS = {"big": 1.2, "small": 1.5, "rss_mib": 150.0, "p99_ms": 50.0}  # issue 7, Targets


class GetTownSampler:
    """A second client on its own thread: gastown.getTown on the probe town, back to back (with
    `gap` seconds between calls) while a window is open; latencies of calls started inside it."""

    def __init__(self, url: str, token: str, town_id: str, *, gap: float, timeout: float) -> None:
        self.url, self.token, self.town_id, self.gap, self.timeout = url, token, town_id, gap, timeout
        self.active = threading.Event()
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.window: list[float] = []
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._run, name="getTown-sampler", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def begin(self) -> None:
        with self.lock:
            self.window = []
        self.active.set()

    def end(self) -> list[float]:
        self.active.clear()
        with self.lock:
            samples, self.window = self.window, []
        return samples

    def stop(self) -> None:
        self.stopping.set()
        self.active.set()  # wake it
        self.thread.join(timeout=self.timeout + 5)

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=self.timeout) as client:
            for _ in range(3):  # warm-up: connection, object open (untimed)
                self._get(client)
            while not self.stopping.is_set():
                self.active.wait()
                if self.stopping.is_set():
                    break
                started = time.perf_counter()
                ok = self._get(client)
                seconds = time.perf_counter() - started
                with self.lock:
                    if ok and self.active.is_set():
                        self.window.append(seconds)
                if self.gap > 0:
                    time.sleep(self.gap)

    def _get(self, client: httpx.Client) -> bool:
        try:
            town = query(client, "gastown.getTown", {"townId": self.town_id})
            if not isinstance(town, dict) or town.get("id") != self.town_id:
                raise BadResponse(f"gastown.getTown: expected town {self.town_id}, got {str(town)[:200]}")
            return True
        except (BadResponse, httpx.HTTPError) as exc:
            with self.lock:
                self.errors.append(str(exc)[:300])
            return False


@dataclass
class Pair:
    fork_s: float
    sqlite: CopyResult
    samples: list[float]
    copied: dict[str, int]  # the fork's `copied`

    @property
    def ratio(self) -> float:
        return self.fork_s / self.sqlite.seconds if self.sqlite.seconds > 0 else float("nan")


@dataclass
class Comparison:
    label: str  # "big" | "small"
    seeded: SeedResult
    pairs: list[Pair]
    warnings: list[str]

    @property
    def samples(self) -> list[float]:
        return [s for p in self.pairs for s in p.samples]


def compare_counts(fork: dict[str, int], reference: dict[str, int]) -> list[str]:
    return [
        f"{table}: fork {fork.get(table)} vs sqlite {reference.get(table)}"
        for table in sorted(set(fork) | set(reference))
        if fork.get(table) != reference.get(table)
    ]


def run_pairs(
    label: str,
    client: httpx.Client,
    sampler: GetTownSampler | None,
    seeded: SeedResult,
    *,
    pairs: int,
    scratch: Path,
    cache_kib: int | None,
    keep_forks: bool,
) -> Comparison:
    results: list[Pair] = []
    warnings: list[str] = []
    for i in range(1, pairs + 1):
        if sampler is not None:
            sampler.begin()
        started = time.perf_counter()
        try:
            result = fork_once(client, seeded.town_id, f"bench {label} fork {i} of {pairs}", dry_run=False)
        finally:
            fork_s = time.perf_counter() - started
            samples = [] if sampler is None else sampler.end()
        if not keep_forks:
            mutate(client, "gastown.deleteTown", {"townId": result["town"]["id"]})  # untimed

        target = scratch / f"{label}-pair-{i}.sqlite3"
        try:
            copy = sqlite_copy(seeded.town_file, target, cache_kib=cache_kib)
        finally:
            remove_database(target)
        copied = {k: int(v) for k, v in result["copied"].items()}
        for mismatch in compare_counts(copied, copy.copied):
            warning = f"{label} pair {i}: row counts differ: {mismatch}"
            warnings.append(warning)
            print(f"WARNING: {warning}", file=sys.stderr, flush=True)
        pair = Pair(fork_s, copy, samples, copied)
        results.append(pair)
        print(
            f"  {label} pair {i}/{pairs}: fork {fork_s:.3f} s, sqlite {copy.seconds:.3f} s, "
            f"ratio {pair.ratio:.2f}x, getTown samples {len(samples)}",
            file=sys.stderr,
            flush=True,
        )
    return Comparison(label, seeded, results, warnings)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}" if math.isfinite(seconds) else "n/a"


def secs(seconds: float, small: bool) -> str:
    return f"{seconds * 1000:,.1f} ms" if small else f"{seconds:,.3f} s"


def comparison_table(comparisons: list[Comparison]) -> str:
    rows: list[list[str]] = []
    for c in comparisons:
        small = c.label == "small"
        for i, p in enumerate(c.pairs, 1):
            rows.append(
                [
                    f"{c.label} {i}",
                    secs(p.fork_s, small),
                    secs(p.sqlite.seconds, small),
                    f"{p.ratio:.2f}x",
                    secs(p.sqlite.phases["rows"], small),
                    secs(p.sqlite.phases["indexes"], small),
                    str(len(p.samples)),
                    ms(percentile(p.samples, 50)),
                    ms(percentile(p.samples, 99)),
                ]
            )
        rows.append(
            [
                f"{c.label} median",
                secs(statistics.median(p.fork_s for p in c.pairs), small),
                secs(statistics.median(p.sqlite.seconds for p in c.pairs), small),
                f"{statistics.median(p.ratio for p in c.pairs):.2f}x",
                secs(statistics.median(p.sqlite.phases["rows"] for p in c.pairs), small),
                secs(statistics.median(p.sqlite.phases["indexes"] for p in c.pairs), small),
                str(len(c.samples)),
                ms(percentile(c.samples, 50)),
                ms(percentile(c.samples, 99)),
            ]
        )
    return format_table(
        [
            "pair",
            "fork",
            "sqlite copy",
            "fork/sqlite",
            "sqlite rows",
            "sqlite idx",
            "getTown n",
            "p50 ms",
            "p99 ms",
        ],
        rows,
    )


def target_table(comparisons: list[Comparison], rss_growth_kib: int | None) -> tuple[str, bool]:
    rows: list[list[str]] = []
    all_met = True

    def check(name: str, value: float, shown: str, target: float, target_shown: str) -> None:
        nonlocal all_met
        met = math.isfinite(value) and value <= target
        all_met = all_met and met
        rows.append([name, shown, target_shown, "met" if met else "MISSED"])

    for c in comparisons:
        median_ratio = statistics.median(p.ratio for p in c.pairs)
        check(
            f"{c.label} fork / sqlite (median ratio)",
            median_ratio,
            f"{median_ratio:.2f}x",
            TARGETS[c.label],
            f"<= {TARGETS[c.label]}x",
        )
    big = next((c for c in comparisons if c.label == "big"), None)
    if big is not None:
        p99 = percentile(big.samples, 99)
        check(
            "getTown p99 during big forks",
            p99 * 1000,
            f"{ms(p99)} ms",
            TARGETS["p99_ms"],
            f"<= {TARGETS['p99_ms']:.0f} ms",
        )
    growth = float("nan") if rss_growth_kib is None else rss_growth_kib / 1024
    check(
        "server peak RSS growth",
        growth,
        mib(rss_growth_kib),
        TARGETS["rss_mib"],
        f"<= {TARGETS['rss_mib']:.0f} MiB",
    )
    return format_table(["target (issue 7)", "measured", "target", ""], rows), all_met


def copied_line(c: Comparison) -> str:
    first = c.pairs[0]
    return (
        f"{c.label}: source {c.seeded.counts.get('beads', 0):,} beads / {c.seeded.counts.get('bead_events', 0):,} "
        f"events ({c.seeded.file_bytes / 2**20:,.1f} MiB); copied {counts_line(first.copied)}; "
        f"sqlite copy file {first.sqlite.file_bytes / 2**20:,.1f} MiB"
    )


def compare_sqlite_run(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="bench-fork-"))
    secret = secrets.token_urlsafe(32)
    server: ServerProcess | None = None
    sampler: GetTownSampler | None = None
    try:
        big_seed = seed_source(workdir / "data", secret, args)
        small_seed = (
            None
            if args.no_small
            else seed_source(
                workdir / "data", secret, args, beads=SMALL_BEADS, events_per_bead=SMALL_EVENTS_PER_BEAD
            )
        )
        server = start_server(workdir / "data", secret=secret, demo=False, log_level=args.server_log_level, extra_env=_sync_env(args))
        rss_start = server.peak_rss_kib()
        token = mint_token(secret, BENCH_USER)
        scratch = workdir / "sqlite-reference"
        scratch.mkdir()
        print(
            f"bench_fork --compare-sqlite: server {server.url}; big source {big_seed.town_id} seeded in "
            f"{big_seed.seconds:.1f} s; {args.pairs} big pairs"
            + ("" if small_seed is None else f", {args.small_pairs} small pairs (+1 warm-up pair)")
            + f"; getTown sampled with {args.sample_gap_ms:g} ms gaps; sqlite cache "
            + (f"{args.sqlite_cache_kib} KiB" if args.sqlite_cache_kib else "SQLite's default"),
            flush=True,
        )
        comparisons: list[Comparison] = []
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=args.timeout) as client:
            probe = mutate(client, "gastown.createTown", {"name": "bench getTown probe"})
            if not isinstance(probe, dict) or not probe.get("id"):
                raise BadResponse(f"gastown.createTown: unexpected result {str(probe)[:300]}")
            sampler = GetTownSampler(
                server.url, token, str(probe["id"]), gap=args.sample_gap_ms / 1000, timeout=args.timeout
            )
            sampler.start()
            common = {
                "scratch": scratch,
                "cache_kib": args.sqlite_cache_kib or None,
                "keep_forks": args.keep_forks,
            }
            comparisons.append(run_pairs("big", client, sampler, big_seed, pairs=args.pairs, **common))
            rss_big = server.peak_rss_kib()
            sampler.stop()
            # The seed-size forks run alone, as their SQLite copies do: getTown is sampled
            # during the big forks only (issue 7), and sampling here would load the fork alone.
            if small_seed is not None:
                run_pairs("warmup", client, None, small_seed, pairs=1, **common)  # untimed warm-up
                comparisons.append(run_pairs("small", client, None, small_seed, pairs=args.small_pairs, **common))
        rss_end = server.peak_rss_kib()
        growth = None if rss_start is None or rss_end is None else rss_end - rss_start

        print()
        print(comparison_table(comparisons))
        print()
        for c in comparisons:
            print(copied_line(c))
        print(
            f"server peak RSS (VmHWM): {mib(rss_start)} at start, {mib(rss_big)} after the big forks, "
            f"{mib(rss_end)} at the end: growth {mib(growth)}"
        )
        print()
        table, _ = target_table(comparisons, growth)
        print(table)
        warnings = [w for c in comparisons for w in c.warnings]
        for w in warnings:
            print(f"WARNING: {w}")
        failed = list(sampler.errors)
        for e in failed[:5]:
            print(f"FAILED getTown sample: {e}")
        if failed:
            print(f"{len(failed)} getTown sample(s) failed")
        print(f"command: {shlex.join(getattr(sys, 'orig_argv', [sys.executable, *sys.argv]))}")
        return 1 if failed else 0
    finally:
        if sampler is not None and sampler.thread.is_alive():
            sampler.stop()
        _stop_and_clean(server, workdir, args)


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
    parser.add_argument(
        "--compare-sqlite",
        action="store_true",
        help="--serve: forks next to SQLite's own copy of the same rows, alternating pairs (see below)",
    )
    parser.add_argument("--pairs", type=int, default=3, help="--compare-sqlite: big-town pairs (default 3)")
    parser.add_argument(
        "--small-pairs", type=int, default=10, help="--compare-sqlite: 1,000-bead town pairs (default 10)"
    )
    parser.add_argument("--no-small", action="store_true", help="--compare-sqlite: skip the 1,000-bead town")
    parser.add_argument(
        "--synchronous", choices=["FULL", "NORMAL"], help="the server's SQLite synchronous mode (default: the server's, FULL)"
    )
    parser.add_argument(
        "--sample-gap-ms",
        type=float,
        default=10.0,
        help="--compare-sqlite: pause between getTown samples during a fork, ms (default 10; 0 = back to back)",
    )
    parser.add_argument(
        "--sqlite-cache-kib",
        type=int,
        default=0,
        help="--compare-sqlite: page cache of the SQLite copy, KiB (default 0: SQLite's default, as the fork import)",
    )
    args = parser.parse_args(argv)
    if args.compare_sqlite and args.url:
        parser.error("--compare-sqlite needs --serve (it reads the source file and seeds it)")
    if args.pairs < 1 or args.small_pairs < 1 or args.sample_gap_ms < 0:
        parser.error("--pairs and --small-pairs must be >= 1, --sample-gap-ms >= 0")
    if args.serve and args.url:
        parser.error("--serve and --url exclude each other")
    if args.runs < 1 or args.get_town_samples < 1 or args.beads < 1 or args.events_per_bead < 0:
        parser.error("--runs, --get-town-samples and --beads must be >= 1, --events-per-bead >= 0")
    if args.url:
        args.url = args.url.rstrip("/")
    return args


def _sync_env(args: argparse.Namespace) -> dict[str, str]:
    return {"GASTOWN_SQLITE_SYNCHRONOUS": args.synchronous} if args.synchronous else {}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.compare_sqlite:
            return compare_sqlite_run(args)
        return run_remote(args) if args.url else serve_and_run(args)
    except (BadResponse, httpx.HTTPError, RuntimeError) as exc:
        print(f"bench_fork: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
