"""The forks of one town (TownLineageDO's `forks` table): which towns were forked from it, who
owns each, and when. `gastown.listForks` reads it; the source town's own database is never
written by a fork (fork.md §5), so the index lives in an object of its own, keyed by the
source town id.

A row is written before the fork is published and removed after the fork is deleted, so a row
may name a town that is not visible (yet, or any more): readers confirm each row with its
owner object, and startup prunes rows whose town is gone.
"""

from __future__ import annotations

from typing import Any, Literal

import apsw
import msgspec

from dos.kv import KV_DDL
from dos.migrations import Migration

OwnerKind = Literal["user", "org"]

FORKS_DDL = """CREATE TABLE IF NOT EXISTS forks (
  town_id TEXT PRIMARY KEY NOT NULL,
  owner_kind TEXT NOT NULL CHECK (owner_kind IN ('user', 'org')),
  owner_id TEXT NOT NULL,
  forked_at TEXT NOT NULL
)"""
# listForks answers newest first.
FORKS_ORDER_INDEX = "CREATE INDEX IF NOT EXISTS idx_forks_forked_at ON forks(forked_at DESC, town_id DESC)"


def _create(conn: apsw.Connection) -> None:
    for sql in (KV_DDL, FORKS_DDL, FORKS_ORDER_INDEX):
        conn.execute(sql)


LINEAGE_MIGRATIONS: list[Migration] = [_create]


class ForkEntry(msgspec.Struct, kw_only=True, frozen=True):
    town_id: str
    owner_kind: OwnerKind
    owner_id: str
    forked_at: str


def add_fork(conn: apsw.Connection, entry: ForkEntry) -> None:
    """Record (or re-record, on a retried publish) one fork of this town."""
    conn.execute(
        "INSERT INTO forks (town_id, owner_kind, owner_id, forked_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(town_id) DO UPDATE SET owner_kind = excluded.owner_kind, "
        "owner_id = excluded.owner_id, forked_at = excluded.forked_at",
        (entry.town_id, entry.owner_kind, entry.owner_id, entry.forked_at),
    )


def remove_fork(conn: apsw.Connection, town_id: str) -> bool:
    conn.execute("DELETE FROM forks WHERE town_id = ?", (town_id,))
    return conn.changes() > 0


def list_forks(conn: apsw.Connection) -> list[ForkEntry]:
    """Every recorded fork, newest first."""
    rows = conn.execute(
        "SELECT town_id, owner_kind, owner_id, forked_at FROM forks ORDER BY forked_at DESC, town_id DESC"
    )
    return [_entry(row) for row in rows]


def _entry(row: tuple[Any, ...]) -> ForkEntry:
    return ForkEntry(town_id=row[0], owner_kind=row[1], owner_id=row[2], forked_at=row[3])
