#!/usr/bin/env python3
"""Mixed load against the server: the front end's page loads, bead writes, config updates and
forks, from --clients concurrent asyncio + httpx clients for --seconds (issue 9, "Load").

Each client is one signed-in user of a few; it loops until the deadline over
- a page load: the page's on-load queries in one tRPC batch GET, as httpBatchLink sends them
  (town page, rig page, settings, town list);
- a bead write: createBead, then half the time updateBead (status), each acknowledged write
  remembered;
- a config update: updateTownConfig (custom instructions / max polecats);
- a fork: forkTown of one of the user's seed-size towns with an idempotencyKey, a retry with
  the same key (must return the same town), then deleteTown of the fork.
Afterwards every acknowledged bead write is looked up through the API (listBeads, paged) and,
with --serve, in the SQLite files once the server has stopped. Prints throughput, p50/p99 per
procedure, errors (5xx counted apart) and lost writes; exits 1 unless all are zero.

The clients are spread over --processes processes (default 4), so the load generator is not
the bottleneck; the statistics are merged. Only 127.0.0.1 is ever loaded: --url must point there.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import multiprocessing
import os
import random
import secrets
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # runnable as `python scripts/load.py` without an install
    sys.path.insert(0, str(ROOT))

from _support import clean_exit, format_table, percentile, start_server

from rpc.auth import mint_token

G = "gastown."
MAX_CLIENTS, MAX_SECONDS = 1000, 600


class CallFailed(Exception):
    def __init__(self, label: str, status: int, detail: str) -> None:
        self.label, self.status = label, status
        super().__init__(f"{label}: HTTP {status}: {detail[:300]}")


# -- tRPC over HTTP, as @trpc/client's links send it ------------------------------------------
@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    server_errors: int = 0  # HTTP 5xx or an INTERNAL_SERVER_ERROR inside a batch
    samples: list[str] = field(default_factory=list)
    requests: int = 0
    seconds: float = 0.0  # wall time of the load phase

    def fail(self, label: str, exc: BaseException, status: int = 0) -> None:
        self.errors[label] += 1
        if status >= 500:
            self.server_errors += 1
        if len(self.samples) < 10:
            self.samples.append(f"{label}: {type(exc).__name__}: {str(exc)[:300]}")


class Caller:
    """One user's calls over a shared AsyncClient; latency per procedure into Stats."""

    def __init__(self, http: httpx.AsyncClient, token: str, stats: Stats) -> None:
        self.http, self.stats = http, stats
        self.headers = {"Authorization": f"Bearer {token}"}

    async def batch(self, calls: list[tuple[str, dict[str, Any] | None]]) -> list[Any]:
        """httpBatchLink's GET: /trpc/a,b?batch=1&input={"0":…}; every part must succeed."""
        paths = ",".join(G + p for p, _ in calls)
        inputs = {str(i): inp for i, (_, inp) in enumerate(calls) if inp is not None}
        url = f"/trpc/{paths}?batch=1&input={quote(json.dumps(inputs, separators=(',', ':')))}"
        started = time.perf_counter()
        self.stats.requests += 1
        response = await self.http.get(url, headers=self.headers)
        elapsed = time.perf_counter() - started
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else None
        if response.status_code >= 500 or not isinstance(body, list) or len(body) != len(calls):
            raise CallFailed("batch(" + paths + ")", response.status_code, response.text)
        results = []
        for (path, _), part in zip(calls, body):
            if "error" in part:
                code = part["error"].get("data", {}).get("code")
                raise CallFailed(path, 500 if code == "INTERNAL_SERVER_ERROR" else 400, json.dumps(part))
            self.stats.latencies[path].append(elapsed)
            results.append(part["result"]["data"])
        self.stats.latencies["(page batch)"].append(elapsed)
        return results

    async def mutate(self, path: str, input: dict[str, Any]) -> Any:
        """httpLink's POST of one mutation."""
        started = time.perf_counter()
        self.stats.requests += 1
        response = await self.http.post(f"/trpc/{G}{path}", json=input, headers=self.headers)
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise CallFailed(path, response.status_code, response.text)
        self.stats.latencies[path].append(elapsed)
        return response.json()["result"]["data"]

    async def query(self, path: str, input: dict[str, Any] | None = None) -> Any:
        return (await self.batch([(path, input)]))[0]


# -- the world: users, towns, rigs ------------------------------------------------------------
@dataclass
class TownInfo:
    id: str
    rig_ids: list[str]


@dataclass
class User:
    id: str
    token: str
    towns: list[TownInfo]


@dataclass
class Ledger:
    """Acknowledged bead writes: bead id -> (town id, rig id, last acknowledged status)."""

    beads: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    forks_made: int = 0
    forks_retried_same: int = 0


async def seed_world(http: httpx.AsyncClient, secret: str, *, users: int, towns: int, beads: int) -> list[User]:
    """Users with seed-size towns, made through the API (createTown/createRig/createBead…)."""
    stats = Stats()
    world: list[User] = []
    for u in range(users):
        user_id = f"load-user-{u}"
        token = mint_token(secret, user_id)
        caller = Caller(http, token, stats)
        infos = []
        for t in range(towns):
            town = await caller.mutate("createTown", {"name": f"Load town {u}.{t}"})
            rigs = [
                (await caller.mutate("createRig", {"townId": town["id"], "name": f"rig{r}", "gitUrl": f"https://github.com/load/r{r}.git"}))["id"]
                for r in range(2)
            ]
            await caller.mutate(
                "updateTownConfig", {"townId": town["id"], "config": {"env_vars": {"LOAD": "1"}, "max_polecats_per_rig": 2}}
            )

            async def one(i: int, rigs: list[str] = rigs, caller: Caller = caller) -> None:
                bead = await caller.mutate("createBead", {"rigId": rigs[i % 2], "title": f"seed bead {i}", "body": "history"})
                if i % 3:
                    await caller.mutate("updateBead", {"rigId": rigs[i % 2], "beadId": bead["bead_id"], "status": "closed" if i % 2 else "failed"})

            await asyncio.gather(*(one(i) for i in range(beads)))
            infos.append(TownInfo(town["id"], rigs))
        world.append(User(user_id, token, infos))
    return world


async def discover_world(http: httpx.AsyncClient, token: str) -> list[User]:
    """With --url: the token's user and the towns it lists (each needs a rig for bead writes)."""
    caller = Caller(http, token, Stats())
    infos = []
    for town in await caller.query("listTowns"):
        rigs = [r["id"] for r in await caller.query("listRigs", {"townId": town["id"]})]
        if rigs:
            infos.append(TownInfo(town["id"], rigs))
    if not infos:
        raise SystemExit("the token's user has no town with a rig to load")
    return [User("(token)", token, infos)]


# -- what a client does -----------------------------------------------------------------------
def page_load(rng: random.Random, town: TownInfo) -> list[tuple[str, dict[str, Any] | None]]:
    t = {"townId": town.id}
    rig = {"rigId": rng.choice(town.rig_ids), "townId": town.id}
    pages = [
        [("getTown", t), ("listRigs", t), ("getTownConfig", t), ("listBeads", {**t, "limit": 50}),
         ("getTownEvents", {**t, "limit": 50}), ("getAlarmStatus", t), ("getMergeQueueData", t)],
        [("getRig", rig), ("listBeads", {**rig, "limit": 50}), ("listAgents", rig), ("getTownConfig", t)],
        [("getTownConfig", t), ("getTown", t)],
        [("listTowns", None), ("getTown", t)],
    ]
    return rng.choices(pages, weights=[4, 3, 1, 2])[0]


async def client_loop(
    n: int, http: httpx.AsyncClient, user: User, deadline: float, stats: Stats, ledger: Ledger, fork_share: float
) -> None:
    rng = random.Random(n)
    caller = Caller(http, user.token, stats)
    while time.monotonic() < deadline:
        town = rng.choice(user.towns)
        roll = rng.random()
        label = "page"
        try:
            if roll < fork_share:
                label = "forkTown"
                await fork_round(caller, rng, user, town, ledger)
            elif roll < 0.30:
                label = "createBead"
                rig = rng.choice(town.rig_ids)
                bead = await caller.mutate("createBead", {"rigId": rig, "title": f"load {n} {uuid.uuid4().hex[:8]}"})
                ledger.beads[bead["bead_id"]] = (town.id, rig, "open")
                if rng.random() < 0.5:
                    label = "updateBead"
                    status = rng.choice(["in_progress", "closed", "failed"])
                    await caller.mutate("updateBead", {"rigId": rig, "beadId": bead["bead_id"], "status": status})
                    ledger.beads[bead["bead_id"]] = (town.id, rig, status)
            elif roll < 0.34:
                label = "updateTownConfig"
                config = {"custom_instructions": {"polecat": f"load {n} {rng.random():.6f}"}} if rng.random() < 0.5 else {"max_polecats_per_rig": rng.randint(1, 5)}
                await caller.mutate("updateTownConfig", {"townId": town.id, "config": config})
            else:
                await caller.batch(page_load(rng, town))
        except CallFailed as exc:
            stats.fail(exc.label, exc, exc.status)
        except httpx.HTTPError as exc:
            stats.fail(label, exc)


async def fork_round(caller: Caller, rng: random.Random, user: User, town: TownInfo, ledger: Ledger) -> None:
    key = f"load-{uuid.uuid4().hex}"
    body = {"sourceTownId": town.id, "newTownName": f"Load fork {rng.randrange(10**6)}", "idempotencyKey": key}
    first = await caller.mutate("forkTown", body)
    again = await caller.mutate("forkTown", body)  # a retry with the same key: the same town
    if again["town"]["id"] != first["town"]["id"]:
        raise CallFailed("forkTown", 0, f"retry with key {key} made a second town")
    ledger.forks_made += 1
    await caller.mutate("deleteTown", {"townId": first["town"]["id"]})


# -- checks -----------------------------------------------------------------------------------
async def lost_via_api(http: httpx.AsyncClient, world: list[User], ledger: Ledger) -> list[str]:
    """Acknowledged beads missing (or with another status) in listBeads of their rig."""
    by_rig: dict[str, dict[str, str]] = defaultdict(dict)
    for bead_id, (_, rig, status) in ledger.beads.items():
        by_rig[rig][bead_id] = status
    token_of = {rig: u.token for u in world for t in u.towns for rig in t.rig_ids}
    lost: list[str] = []
    for rig, expected in by_rig.items():
        caller = Caller(http, token_of[rig], Stats())
        seen: dict[str, str] = {}
        offset = 0
        while True:
            page = await caller.query("listBeads", {"rigId": rig, "limit": 500, "offset": offset})
            seen.update({b["bead_id"]: b["status"] for b in page})
            if len(page) < 500:
                break
            offset += 500
        lost += [f"{b} (rig {rig}): want {s}, API has {seen.get(b)}" for b, s in expected.items() if seen.get(b) != s]
    return lost


def lost_on_disk(data_dir: Path, ledger: Ledger) -> list[str]:
    by_town: dict[str, dict[str, str]] = defaultdict(dict)
    for bead_id, (town, _, status) in ledger.beads.items():
        by_town[town][bead_id] = status
    lost: list[str] = []
    for town, expected in by_town.items():
        conn = sqlite3.connect(f"file:{data_dir / 'TownDO' / f'{town}.sqlite3'}?mode=ro", uri=True)
        try:
            seen = dict(conn.execute("SELECT bead_id, status FROM beads"))
        finally:
            conn.close()
        lost += [f"{b} (town {town}): want {s}, file has {seen.get(b)}" for b, s in expected.items() if seen.get(b) != s]
    return lost


async def towns_left(http: httpx.AsyncClient, world: list[User]) -> list[str]:
    """Towns listed beyond the seeded ones (a fork not deleted, or one made twice)."""
    extra = []
    for user in world:
        listed = {t["id"] for t in await Caller(http, user.token, Stats()).query("listTowns")}
        extra += sorted(listed - {t.id for t in user.towns})
    return extra


# -- run --------------------------------------------------------------------------------------
def report(stats: Stats, seconds: float, ledger: Ledger, lost_api: list[str], lost_disk: list[str] | None, extra: list[str]) -> str:
    rows = []
    for path in sorted(stats.latencies, key=lambda p: -len(stats.latencies[p])):
        values = stats.latencies[path]
        rows.append([path, f"{len(values):,}", f"{percentile(values, 50) * 1000:,.1f}", f"{percentile(values, 99) * 1000:,.1f}", str(stats.errors.get(path, 0))])
    for path in sorted(set(stats.errors) - set(stats.latencies)):
        rows.append([path, "0", "-", "-", str(stats.errors[path])])
    errors = sum(stats.errors.values())
    lines = [
        format_table(["procedure", "ok", "p50 ms", "p99 ms", "errors"], rows),
        (
            f"http requests: {stats.requests:,} in {seconds:.1f} s = {stats.requests / seconds:,.0f} req/s"
            f" ({sum(len(v) for k, v in stats.latencies.items() if k != '(page batch)') / seconds:,.0f} procedure calls/s)"
        ),
        f"errors: {errors} (5xx / INTERNAL_SERVER_ERROR: {stats.server_errors})",
        f"forks: {ledger.forks_made} made, retried with their key and deleted; towns left over: {len(extra)}",
        f"acknowledged bead writes: {len(ledger.beads):,}; lost via API: {len(lost_api)}"
        + ("" if lost_disk is None else f"; lost in the SQLite files: {len(lost_disk)}"),
        *(f"  error: {s}" for s in stats.samples),
        *(f"  lost: {s}" for s in (lost_api + (lost_disk or []))[:10]),
        *(f"  left over: {t}" for t in extra[:10]),
    ]
    return "\n".join(lines)


def load_part(url: str, world: list[User], clients: list[int], deadline_in: float, args: argparse.Namespace) -> tuple[Stats, Ledger]:
    """One process's share of the clients (httpx's pool and one Python thread would otherwise
    be the bottleneck long before the server is)."""

    async def run() -> tuple[Stats, Ledger]:
        stats, ledger = Stats(), Ledger()
        limits = httpx.Limits(max_connections=len(clients), max_keepalive_connections=len(clients))
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=args.timeout) as http:
            started = time.monotonic()
            await asyncio.gather(
                *(client_loop(n, http, world[n % len(world)], started + deadline_in, stats, ledger, args.fork_share) for n in clients)
            )
            stats.seconds = time.monotonic() - started
        return stats, ledger

    return asyncio.run(run())


def merge(parts: list[tuple[Stats, Ledger]]) -> tuple[Stats, Ledger]:
    stats, ledger = Stats(), Ledger()
    for s, led in parts:
        for k, v in s.latencies.items():
            stats.latencies[k] += v
        for k, n in s.errors.items():
            stats.errors[k] += n
        stats.server_errors += s.server_errors
        stats.seconds = max(stats.seconds, s.seconds)
        stats.requests += s.requests
        stats.samples += s.samples[: max(0, 10 - len(stats.samples))]
        ledger.beads.update(led.beads)
        ledger.forks_made += led.forks_made
    return stats, ledger


def run_load(url: str, world: list[User], args: argparse.Namespace) -> tuple[Stats, Ledger, float, list[str], list[str]]:
    processes = max(1, min(args.processes, args.clients))
    if processes == 1:
        stats, ledger = load_part(url, world, list(range(args.clients)), args.seconds, args)
    else:
        with concurrent.futures.ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [
                pool.submit(load_part, url, world, list(range(p, args.clients, processes)), args.seconds, args)
                for p in range(processes)
            ]
            stats, ledger = merge([f.result() for f in futures])
    elapsed = stats.seconds

    async def verify() -> tuple[list[str], list[str]]:
        async with httpx.AsyncClient(base_url=url, timeout=args.timeout) as http:
            return await lost_via_api(http, world, ledger), await towns_left(http, world)

    lost_api, extra = asyncio.run(verify())
    return stats, ledger, elapsed, lost_api, extra


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname != "127.0.0.1":
        raise SystemExit(f"refusing to load {url!r}: only http://127.0.0.1 is allowed")
    return url.rstrip("/")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=200, help=f"concurrent clients (1..{MAX_CLIENTS}, default 200)")
    p.add_argument("--seconds", type=float, default=60, help=f"duration (≤ {MAX_SECONDS}, default 60)")
    p.add_argument("--url", help="a running server on 127.0.0.1 (with --token or $TOKEN); default --serve")
    p.add_argument("--token", default=os.environ.get("TOKEN"))
    p.add_argument("--serve", action="store_true", help="start a server on a temporary data dir (the default)")
    p.add_argument("--users", type=int, default=4, help="--serve: users (default 4)")
    p.add_argument("--towns", type=int, default=2, help="--serve: towns per user (default 2)")
    p.add_argument("--beads", type=int, default=40, help="--serve: seeded beads per town (default 40)")
    p.add_argument("--fork-share", type=float, default=0.02, help="share of rounds that fork (default 0.02)")
    p.add_argument("--processes", type=int, default=4, help="client processes sharing --clients (default 4)")
    p.add_argument("--timeout", type=float, default=60)
    p.add_argument("--keep-data", action="store_true")
    args = p.parse_args(argv)
    if not 1 <= args.clients <= MAX_CLIENTS or not 0 < args.seconds <= MAX_SECONDS:
        p.error(f"--clients must be 1..{MAX_CLIENTS} and --seconds in (0, {MAX_SECONDS}]")
    if args.url:
        args.url = check_url(args.url)
        if not args.token:
            p.error("--url needs --token (or $TOKEN)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    lost_disk: list[str] | None = None
    if args.url:
        def against_url() -> tuple[Stats, Ledger, float, list[str], list[str]]:
            async def discover() -> list[User]:
                async with httpx.AsyncClient(base_url=args.url, timeout=args.timeout) as http:
                    return await discover_world(http, args.token)

            return run_load(args.url, asyncio.run(discover()), args)

        stats, ledger, elapsed, lost_api, extra = against_url()
    else:
        root = Path(tempfile.mkdtemp(prefix="gastown-load-"))
        data_dir = root / "data"
        secret = secrets.token_urlsafe(32)
        server = start_server(data_dir, secret=secret, demo=False, log_level="warning")
        try:
            async def seed() -> list[User]:
                async with httpx.AsyncClient(base_url=server.url, timeout=args.timeout) as http:
                    return await seed_world(http, secret, users=args.users, towns=args.towns, beads=args.beads)

            world = asyncio.run(seed())
            print(f"seeded {args.users} users x {args.towns} towns x {args.beads} beads; loading {args.clients} clients for {args.seconds:g} s", file=sys.stderr)
            stats, ledger, elapsed, lost_api, extra = run_load(server.url, world, args)
        finally:
            status = server.stop()
        if not clean_exit(status):
            print(f"server exited with {status}:\n{server.log_tail()}", file=sys.stderr)
            stats.fail("(server exit)", RuntimeError(str(status)))
        lost_disk = lost_on_disk(data_dir, ledger)
        if "Traceback" in server.log_path.read_text(errors="replace"):
            stats.fail("(server log)", RuntimeError("a traceback in the server log:\n" + server.log_tail(30)))
        if not args.keep_data:
            shutil.rmtree(root, ignore_errors=True)
    print(report(stats, elapsed, ledger, lost_api, lost_disk, extra))
    failed = sum(stats.errors.values()) or lost_api or lost_disk or extra
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
