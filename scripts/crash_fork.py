#!/usr/bin/env python3
"""Crash loop (issue 9): forks and bead writes run while the server is SIGKILLed at random
moments (and, now and then, at a named fork step through GASTOWN_TEST_FAULT), then restarted.

A template data dir is built once: a source town (3 rigs, a history of some thousand rows to
import, env vars) and a second town that takes the bead writes, owned by one user who is
also a member of an organization. Each iteration starts `python -m rpc.serve` on the data dir,
runs --fork-workers threads forking the source (forkTown / forkOrgTown, each with a fresh
idempotencyKey) and --write-workers threads creating beads in the second town, kills the
server after a random 0..--max-kill-ms, restarts it and checks:

- every fork is fully visible (listed, getTown's forked_from, its rigs, all copied beads, in
  the source's listForks, getForkStatus done with that town) or absent (no file, not listed);
- no leftovers after start: the TownDO files are exactly the visible towns; no container or
  lineage object of a town that does not exist; listForks names only visible forks;
- the source's logical dump (every table, schema, user_version) is unchanged;
- a retry of every attempted key (twice) returns one town, the same both times, and each key
  leaves exactly one fork;
- every acknowledged bead write is there (through the API, and in the file at the end).
The forks are then deleted and the next iteration starts. Prints iterations and violations;
exits 1 if there is any.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import apsw
import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _support import ServerProcess, start_server

from rpc.auth import OrgMembership, mint_token
from town.demo import populate_town

USER = "crash-user"
ORG = "00000000-0000-4000-8000-00000000c4a5"
RIGS = (("web", "https://github.com/acme/web.git"), ("api", "https://github.com/acme/api.git"), ("infra", "https://gitlab.com/acme/infra.git"))
STEPS = ("initialized", "import_part", "configured", "imported", "lineage", "published")


class Failed(Exception):
    """A tRPC call that did not succeed (while the server is meant to be up)."""


def data(response: httpx.Response, path: str) -> Any:
    if response.status_code != 200:
        raise Failed(f"{path}: HTTP {response.status_code}: {response.text[:300]}")
    return response.json()["result"]["data"]


def query(client: httpx.Client, path: str, input: dict[str, Any] | None = None) -> Any:
    params = {"input": json.dumps(input)} if input is not None else None
    return data(client.get(f"/trpc/gastown.{path}", params=params), path)


def mutate(client: httpx.Client, path: str, input: dict[str, Any]) -> Any:
    return data(client.post(f"/trpc/gastown.{path}", json=input), path)


def logical_dump(path: Path) -> dict[str, Any]:
    """Every table (the KV included) as sorted rows, plus the schema and user_version."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        dump: dict[str, Any] = {
            "user_version": conn.execute("PRAGMA user_version").fetchone()[0],
            "schema": sorted(conn.execute("SELECT type, name, sql FROM sqlite_master")),
        }
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").fetchall():
            dump[table] = sorted(conn.execute(f'SELECT * FROM "{table}"').fetchall(), key=repr)
        return dump
    finally:
        conn.close()


@dataclass
class World:
    data_dir: Path
    secret: str
    source_id: str
    writes_town: str
    writes_rig: str
    copied: dict[str, int]

    def token(self) -> str:
        return mint_token(self.secret, USER, org_memberships=[OrgMembership(orgId=ORG, role="owner")])

    def client(self, server: ServerProcess, timeout: float = 30) -> httpx.Client:
        return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {self.token()}"}, timeout=timeout)


def build_world(data_dir: Path, beads: int) -> World:
    secret = secrets.token_urlsafe(32)
    server = start_server(data_dir, secret=secret, demo=False, log_level="warning")
    try:
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {mint_token(secret, USER)}"}, timeout=30) as c:
            source = mutate(c, "createTown", {"name": "Crash source"})["id"]
            rig_ids = [mutate(c, "createRig", {"townId": source, "name": n, "gitUrl": u})["id"] for n, u in RIGS]
            mutate(c, "updateTownConfig", {"townId": source, "config": {"env_vars": {"A": "1"}, "max_polecats_per_rig": 3}})
            writes = mutate(c, "createTown", {"name": "Crash writes"})["id"]
            writes_rig = mutate(c, "createRig", {"townId": writes, "name": "w", "gitUrl": "https://github.com/acme/w.git"})["id"]
    finally:
        server.stop()
    conn = apsw.Connection(str(data_dir / "TownDO" / f"{source}.sqlite3"))
    try:
        with conn:
            populate_town(conn, rig_ids=rig_ids, beads=beads, events_per_bead=6, seed=7, actor_user_id=USER, town_id=source)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    world = World(data_dir, secret, source, writes, writes_rig, {})
    server = start_server(data_dir, secret=secret, demo=False, log_level="warning")
    try:
        with world.client(server) as c:
            world.copied = mutate(c, "forkTown", {"sourceTownId": source, "newTownName": "dry", "dryRun": True})["copied"]
    finally:
        server.stop()
    return world


# -- one iteration ------------------------------------------------------------------------------
@dataclass
class Attempt:
    key: str
    path: str
    body: dict[str, Any]
    acked_town: str | None = None


@dataclass
class Load:
    attempts: list[Attempt] = field(default_factory=list)
    acked_beads: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)


def fork_body(world: World, rng: random.Random) -> tuple[str, dict[str, Any]]:
    body: dict[str, Any] = {"sourceTownId": world.source_id, "newTownName": f"Crash fork {rng.randrange(10**6)}", "idempotencyKey": f"crash-{uuid.uuid4().hex}"}
    if rng.random() < 0.3:
        return "forkOrgTown", {**body, "organizationId": ORG}
    return "forkTown", body


def fork_worker(world: World, server: ServerProcess, load: Load, seed: int) -> None:
    rng = random.Random(seed)
    with world.client(server) as c:
        while not load.stop.is_set():
            path, body = fork_body(world, rng)
            attempt = Attempt(body["idempotencyKey"], path, body)
            with load.lock:
                load.attempts.append(attempt)
            try:
                attempt.acked_town = mutate(c, path, body)["town"]["id"]
            except (httpx.HTTPError, Failed, KeyError, ValueError):
                return  # the server is gone (or dying): the kill decides what stays


def write_worker(world: World, server: ServerProcess, load: Load, n: int) -> None:
    with world.client(server) as c:
        i = 0
        while not load.stop.is_set():
            i += 1
            try:
                bead = mutate(c, "createBead", {"rigId": world.writes_rig, "title": f"w{n}-{i}"})["bead_id"]
            except (httpx.HTTPError, Failed, KeyError, ValueError):
                return
            with load.lock:
                load.acked_beads.append(bead)


def ids_on_disk(data_dir: Path, cls: str) -> set[str]:
    """Ids of the object databases of a class (`<id>.sqlite3`, its -wal/-shm)."""
    folder = data_dir / cls
    return {p.name.split(".", 1)[0] for p in folder.glob("*.sqlite3*") if ".sqlite3.new" not in p.name} if folder.exists() else set()


def stray_files(data_dir: Path) -> list[str]:
    """Anything in an object folder that is not an object database (a half-written `.new`…)."""
    return sorted(
        f"{p.parent.name}/{p.name}"
        for p in data_dir.glob("*/*")
        if p.is_file() and not (p.name.endswith((".sqlite3", ".sqlite3-wal", ".sqlite3-shm")))
    )


def visible_forks(c: httpx.Client, world: World) -> dict[str, dict[str, Any]]:
    towns = [t for t in query(c, "listTowns") if t["id"] not in (world.source_id, world.writes_town)]
    towns += query(c, "listOrgTowns", {"organizationId": ORG})
    return {t["id"]: t for t in towns}


def check_fork_complete(c: httpx.Client, world: World, town_id: str) -> list[str]:
    problems = []
    town = query(c, "getTown", {"townId": town_id})
    if (town.get("forked_from") or {}).get("town_id") != world.source_id:
        problems.append(f"fork {town_id}: forked_from is {town.get('forked_from')}")
    rigs = sorted(r["name"] for r in query(c, "listRigs", {"townId": town_id}))
    if rigs != sorted(n for n, _ in RIGS):
        problems.append(f"fork {town_id}: rigs {rigs}")
    count, offset = 0, 0
    while True:
        page = query(c, "listBeads", {"townId": town_id, "limit": 500, "offset": offset})
        count += len(page)
        if len(page) < 500:
            break
        offset += 500
    if count != world.copied["beads"]:
        problems.append(f"fork {town_id}: {count} beads, the fork copies {world.copied['beads']}")
    return problems


def check_after_restart(c: httpx.Client, world: World, load: Load, source_dump: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    forks = visible_forks(c, world)
    attempted = {a.key: a for a in load.attempts}
    # Each attempt: done and visible, or nothing of it.
    claimed: dict[str, str] = {}
    for a in load.attempts:
        response = c.get("/trpc/gastown.getForkStatus", params={"input": json.dumps({"idempotencyKey": a.key})})
        status = response.json()["result"]["data"] if response.status_code == 200 else None
        if a.acked_town and a.acked_town not in forks:
            problems.append(f"acknowledged fork {a.acked_town} (key {a.key}) is not visible")
        if status and status["phase"] == "done":
            if status["townId"] not in forks:
                problems.append(f"key {a.key}: status done but town {status['townId']} is not visible")
            if a.acked_town and status["townId"] != a.acked_town:
                problems.append(f"key {a.key}: acknowledged {a.acked_town}, status says {status['townId']}")
            claimed[status["townId"]] = a.key
        elif response.status_code not in (200, 404):
            problems.append(f"getForkStatus {a.key}: HTTP {response.status_code}: {response.text[:200]}")
    for town_id in forks:
        if town_id not in claimed:
            problems.append(f"visible fork {town_id} belongs to no finished attempt")
        problems += check_fork_complete(c, world, town_id)
    lineage = {f["id"] if "id" in f else f.get("town_id") for f in query(c, "listForks", {"townId": world.source_id})}
    if lineage != set(forks):
        problems.append(f"listForks {sorted(lineage)} != visible forks {sorted(forks)}")
    # No leftovers: files are exactly the visible towns; containers and lineage of real towns only.
    towns_on_disk = ids_on_disk(world.data_dir, "TownDO")
    expected = {world.source_id, world.writes_town, *forks}
    if towns_on_disk != expected:
        problems.append(f"town files {sorted(towns_on_disk - expected)} extra, {sorted(expected - towns_on_disk)} missing")
    for cls in ("TownContainerDO", "TownLineageDO"):
        stray = ids_on_disk(world.data_dir, cls) - expected
        if stray:
            problems.append(f"{cls} state of absent towns: {sorted(stray)}")
    stray = stray_files(world.data_dir)
    if stray:
        problems.append(f"stray files after start: {stray}")
    if logical_dump(world.data_dir / "TownDO" / f"{world.source_id}.sqlite3") != source_dump:
        problems.append("the source town's logical dump changed")
    # Acknowledged bead writes.
    have, offset = set(), 0
    while True:
        page = query(c, "listBeads", {"rigId": world.writes_rig, "limit": 500, "offset": offset})
        have |= {b["bead_id"] for b in page}
        if len(page) < 500:
            break
        offset += 500
    lost = [b for b in load.acked_beads if b not in have]
    if lost:
        problems.append(f"{len(lost)} acknowledged bead writes lost, e.g. {lost[:3]}")
    # Retries: every attempted key, twice; one town per key.
    for a in attempted.values():
        first = mutate(c, a.path, a.body)["town"]["id"]
        again = mutate(c, a.path, a.body)["town"]["id"]
        if first != again:
            problems.append(f"key {a.key}: retries returned {first} then {again}")
        if a.acked_town and first != a.acked_town:
            problems.append(f"key {a.key}: acknowledged {a.acked_town}, a retry returned {first}")
        a.acked_town = first
    after = visible_forks(c, world)
    if set(after) != {a.acked_town for a in attempted.values()}:
        problems.append(f"after retries {len(after)} forks are visible for {len(attempted)} keys")
    for town_id in set(after) - set(forks):
        problems += check_fork_complete(c, world, town_id)
    return problems


def delete_forks(c: httpx.Client, world: World) -> None:
    for town_id in visible_forks(c, world):
        mutate(c, "deleteTown", {"townId": town_id})


def start(world: World, fault: str | None) -> ServerProcess:
    extra = {"GASTOWN_TEST_FAULT": fault} if fault else None
    return start_server(world.data_dir, secret=world.secret, demo=False, log_level="warning", extra_env=extra)


def iteration(
    world: World, rng: random.Random, args: argparse.Namespace, source_dump: dict[str, Any], acked_beads: list[str]
) -> tuple[list[str], str]:
    fault = rng.choice(STEPS) if rng.random() < args.fault_share else None
    server = start(world, fault)
    load = Load()
    threads = [threading.Thread(target=fork_worker, args=(world, server, load, rng.randrange(2**32))) for _ in range(args.fork_workers)]
    threads += [threading.Thread(target=write_worker, args=(world, server, load, n)) for n in range(args.write_workers)]
    for t in threads:
        t.start()
    delay = rng.uniform(0, args.max_kill_ms / 1000)
    try:
        server.process.wait(timeout=delay)  # a fault point may kill it first
    except subprocess.TimeoutExpired:
        server.process.send_signal(signal.SIGKILL)
    server.process.wait()
    load.stop.set()
    for t in threads:
        t.join(timeout=60)
    acked = sum(1 for a in load.attempts if a.acked_town)
    how = f"fault {fault}" if fault and server.process.returncode == -signal.SIGKILL and "fork step" in server.log_tail(200) else f"kill after {delay * 1000:.0f} ms"
    restarted = start_server(world.data_dir, secret=world.secret, demo=False, log_level="warning")
    try:
        with world.client(restarted, timeout=60) as c:
            problems = check_after_restart(c, world, load, source_dump)
            delete_forks(c, world)
        log = restarted.log_path.read_text(errors="replace")
        if "Traceback" in log:
            problems.append("traceback in the restarted server's log:\n" + restarted.log_tail(30))
    finally:
        restarted.stop()
    acked_beads += load.acked_beads
    summary = f"{how}: {len(load.attempts)} forks attempted ({acked} acknowledged before the kill), {len(load.acked_beads)} bead writes acknowledged"
    return problems, summary


def final_file_check(world: World, beads: list[str]) -> list[str]:
    conn = sqlite3.connect(f"file:{world.data_dir / 'TownDO' / f'{world.writes_town}.sqlite3'}?mode=ro", uri=True)
    try:
        have = {r[0] for r in conn.execute("SELECT bead_id FROM beads")}
    finally:
        conn.close()
    lost = [b for b in beads if b not in have]
    return [f"{len(lost)} acknowledged bead writes missing from the file, e.g. {lost[:3]}"] if lost else []


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iterations", type=int, default=50)
    p.add_argument("--seed", type=int, default=None, help="random seed (default: random, printed)")
    p.add_argument("--beads", type=int, default=1400, help="beads of the source's history (default 1400)")
    p.add_argument("--fork-workers", type=int, default=3)
    p.add_argument("--write-workers", type=int, default=2)
    p.add_argument("--max-kill-ms", type=float, default=1500, help="kill within this long of the start (default 1500)")
    p.add_argument("--fault-share", type=float, default=0.2, help="share of iterations with a named fault point (default 0.2)")
    p.add_argument("--keep-data", action="store_true")
    args = p.parse_args(argv)
    if not 1 <= args.iterations <= 1000:
        p.error("--iterations must be 1..1000")
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    rng = random.Random(seed)
    root = Path(tempfile.mkdtemp(prefix="gastown-crash-"))
    print(f"seed {seed}; data in {root}", flush=True)
    violations: list[str] = []
    all_beads: list[str] = []
    try:
        world = build_world(root / "data", args.beads)
        source_dump = logical_dump(world.data_dir / "TownDO" / f"{world.source_id}.sqlite3")
        print(f"source {world.source_id}: a fork copies {world.copied}", flush=True)
        for i in range(1, args.iterations + 1):
            problems, summary = iteration(world, rng, args, source_dump, all_beads)
            print(f"iteration {i}/{args.iterations}: {summary}: {len(problems)} violation(s)", flush=True)
            for problem in problems:
                print(f"  VIOLATION: {problem}", flush=True)
            violations += problems
        # every bead acknowledged over the whole run, in the file (no server runs now)
        violations += final_file_check(world, all_beads)
    finally:
        if not args.keep_data:
            shutil.rmtree(root, ignore_errors=True)
    print(f"iterations: {args.iterations}, violations: {len(violations)}, seed {seed}")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
