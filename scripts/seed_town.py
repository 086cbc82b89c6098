#!/usr/bin/env python3
"""Build a realistic town of any size directly in a data dir (the server must be stopped).

The town is made by `dos.demo.build_town`: createTown/createRig's own flows, the demo config,
then `town.demo.populate_town` inside the town's object (chunked writes, bounded memory), so
a seeded town is indistinguishable from the dev-mode demo towns except for its size.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import apsw

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # runnable as `python scripts/seed_town.py` without an install
    sys.path.insert(0, str(ROOT))

from _support import ProgressBar, port_in_use

from dos import lifecycle
from dos.demo import DEMO_RIGS, build_town
from dos.runtime import ObjectRuntime
from dos.town_do import TownDO
from rpc.auth import OrgMembership, mint_token
from rpc.settings import load_settings
from rpc.startup import DEV_USER_ID

LOCK_NAME = ".seed_town.lock"

EPILOG = """\
The server must be stopped: tools may write the data dir only while the server is stopped
(storage.md). The server takes no lock on its data dir, so a running server is detected by
connecting to --host:--port (defaults: $HOST/$PORT, else 127.0.0.1:8787); if a server of this
data dir listens elsewhere, pass that address. Two seed_town runs on one data dir exclude each
other with a lock file (<data-dir>/.seed_town.lock).

The token secret is the server's: $NEXTAUTH_SECRET, else (dev mode) <data-dir>/dev-secret,
created if missing just as the server would. In dev mode a bearer token for the owner is
printed, ready for curl; with $NEXTAUTH_SECRET set, only with --print-token.

Ctrl-C stops after the current chunk of 1,000 beads and removes the half-built town.

examples:
  .venv/bin/python scripts/seed_town.py --beads 100000 --events-per-bead 10
  .venv/bin/python scripts/seed_town.py --org 00000000-0000-4000-8000-00000000d0e0 --name "Org town"
"""


class Interrupted(Exception):
    """Ctrl-C during the history write: the write rolls back, the town is removed."""


@dataclass(frozen=True)
class SeedResult:
    town_id: str
    town_file: Path
    counts: dict[str, int]
    file_bytes: int
    seconds: float


def rig_specs(count: int) -> tuple[tuple[str, str, str], ...]:
    """The demo rigs first, then numbered ones: (name, git url, default branch)."""
    extra = tuple(
        (f"rig-{i}", f"https://github.com/example/rig-{i}.git", "main")
        for i in range(len(DEMO_RIGS) + 1, count + 1)
    )
    return (DEMO_RIGS + extra)[:count]


def table_counts(town_file: Path) -> dict[str, int]:
    """Rows per table, read from the town's SQLite file (read-only)."""
    conn = apsw.Connection(str(town_file), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        names = [
            str(row[0])
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        counts: dict[str, int] = {}
        for name in names:
            quoted = '"' + name.replace('"', '""') + '"'
            row = conn.execute(f"SELECT count(*) FROM {quoted}").fetchone()
            counts[name] = int(row[0]) if row else 0
        return counts
    finally:
        conn.close()


def database_bytes(path: Path) -> int:
    return sum(
        Path(f"{path}{suffix}").stat().st_size for suffix in ("", "-wal") if Path(f"{path}{suffix}").exists()
    )


@contextmanager
def exclusive_seed_lock(data_dir: Path) -> Iterator[None]:
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / LOCK_NAME, "w") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(
                f"seed_town: another seed_town is writing {data_dir}; wait for it to finish"
            ) from None
        yield


async def _build(
    data_dir: Path,
    *,
    secret: str,
    owner: lifecycle.Owner,
    name: str,
    beads: int,
    events_per_bead: int,
    seed: int,
    rigs: tuple[tuple[str, str, str], ...],
    progress: Callable[[int], None],
) -> str:
    runtime = ObjectRuntime(data_dir)
    towns = runtime.namespace(TownDO)
    before = set(towns.ids_on_disk())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, stop.set)

    def report(done: int) -> None:  # runs in the object's worker thread, inside the write
        if stop.is_set():
            raise Interrupted
        progress(done)

    try:
        return await build_town(
            runtime,
            lambda user_id: mint_token(secret, user_id),
            owner=owner,
            name=name,
            beads=beads,
            events_per_bead=events_per_bead,
            seed=seed,
            rigs=rigs,
            progress=report,
        )
    except BaseException:
        # Ours alone (the seed lock is held, the server is stopped): remove what we published.
        for town_id in set(towns.ids_on_disk()) - before:
            await lifecycle.delete_town(runtime, owner_kind=owner.kind, owner_id=owner.id, town_id=town_id)
        raise
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        await runtime.close()


def seed_town(
    data_dir: Path,
    *,
    secret: str,
    owner: lifecycle.Owner,
    name: str,
    beads: int,
    events_per_bead: int,
    seed: int,
    rig_count: int,
    show_progress: bool = True,
) -> SeedResult:
    """Build one town in `data_dir` (server stopped) and count what it holds."""
    bar = ProgressBar(beads, "beads") if show_progress else None
    started = time.monotonic()
    with exclusive_seed_lock(data_dir):
        town_id = asyncio.run(
            _build(
                data_dir,
                secret=secret,
                owner=owner,
                name=name,
                beads=beads,
                events_per_bead=events_per_bead,
                seed=seed,
                rigs=rig_specs(rig_count),
                progress=bar.update if bar else (lambda _: None),
            )
        )
    seconds = time.monotonic() - started
    if bar:
        bar.finish()
    town_file = ObjectRuntime(data_dir).namespace(TownDO).path_for(town_id)
    return SeedResult(town_id, town_file, table_counts(town_file), database_bytes(town_file), seconds)


def owner_token(secret: str, owner: lifecycle.Owner) -> str:
    orgs = [OrgMembership(orgId=owner.id, role="owner")] if owner.kind == "org" else []
    return mint_token(secret, owner.created_by_user_id, org_memberships=orgs)


def print_result(result: SeedResult, *, data_dir: Path, owner: lifecycle.Owner, name: str) -> None:
    print(f"town id: {result.town_id}")
    print(f"name: {name!r}  owner: {owner.kind} {owner.id}  data dir: {data_dir}")
    width = max(len(t) for t in result.counts)
    print(f"{'table'.ljust(width)}  {'rows':>12}")
    for table, count in result.counts.items():
        print(f"{table.ljust(width)}  {count:>12,}")
    print(f"file: {result.town_file} ({result.file_bytes / 2**20:,.1f} MiB)")
    print(f"elapsed: {result.seconds:.1f} s")


def print_token(token: str, town_id: str, host: str, port: int) -> None:
    query = quote(json.dumps({"townId": town_id}, separators=(",", ":")))
    print(f"export TOKEN={token}")
    print(
        f"curl -H \"Authorization: Bearer $TOKEN\" 'http://{host}:{port}/trpc/gastown.getTown?input={query}'"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Build a realistic town of any size in a data dir (server stopped).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("GASTOWN_DATA_DIR", "./data")),
        help="data dir of the server (default: $GASTOWN_DATA_DIR or ./data)",
    )
    parser.add_argument("--beads", type=int, default=1000, help="number of beads (default 1000)")
    parser.add_argument(
        "--events-per-bead", type=int, default=5, help="bead events per bead, on average (default 5)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed: same seed, same history (default 0)"
    )
    parser.add_argument(
        "--user", default=DEV_USER_ID, help=f"owner user id / creator (default {DEV_USER_ID})"
    )
    parser.add_argument(
        "--org",
        type=uuid.UUID,
        default=None,
        help="organization id: make an org town, created by --user (default: a personal town)",
    )
    parser.add_argument(
        "--name", default=None, help="town name, 1..64 characters (default 'Seeded town (N beads)')"
    )
    parser.add_argument("--rigs", type=int, default=3, help="number of rigs (default 3)")
    parser.add_argument(
        "--host",
        default=os.environ.get("HOST", "127.0.0.1"),
        help="address the server would listen on (default $HOST or 127.0.0.1)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("PORT", "8787")),
        help="port the server would listen on (default $PORT or 8787)",
    )
    parser.add_argument(
        "--print-token",
        action="store_true",
        help="print an owner token even when $NEXTAUTH_SECRET is set (not dev mode)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    args = parser.parse_args(argv)
    if args.beads < 0 or args.events_per_bead < 0:
        parser.error("--beads and --events-per-bead must be >= 0")
    if args.rigs < 1:
        parser.error("--rigs must be >= 1")
    args.name = args.name or f"Seeded town ({args.beads:,} beads)"
    if not 1 <= len(args.name) <= 64:
        parser.error("--name must be 1..64 characters")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if port_in_use(args.host, args.port):
        print(
            f"seed_town: a server is listening on {args.host}:{args.port}. Stop it first: tools may write "
            "the data dir only while the server is stopped (storage.md). If that server uses another "
            "data dir, pass --host/--port of this data dir's server.",
            file=sys.stderr,
        )
        return 2
    data_dir = args.data_dir.resolve()
    settings = load_settings({**os.environ, "GASTOWN_DATA_DIR": str(data_dir)})
    owner = (
        lifecycle.Owner("org", str(args.org), args.user)
        if args.org
        else lifecycle.Owner("user", args.user, args.user)
    )
    try:
        result = seed_town(
            data_dir,
            secret=settings.secret,
            owner=owner,
            name=args.name,
            beads=args.beads,
            events_per_bead=args.events_per_bead,
            seed=args.seed,
            rig_count=args.rigs,
            show_progress=not args.no_progress,
        )
    except Interrupted:
        print("\nseed_town: interrupted; the half-built town was removed", file=sys.stderr)
        return 130
    print_result(result, data_dir=data_dir, owner=owner, name=args.name)
    if settings.dev_mode or args.print_token:
        print(
            "owner token (dev mode) — valid 30 days:" if settings.dev_mode else "owner token — valid 30 days:"
        )
        print_token(owner_token(settings.secret, owner), result.town_id, args.host, args.port)
    else:
        print("NEXTAUTH_SECRET is set: no token printed (use --print-token to get one)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
