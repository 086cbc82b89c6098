"""The town's wasteland connection (`town_wasteland_connections`), as upstream's wasteland.ts:
one row per connect call, read back as the first active row; disconnecting deletes the rows of
that wasteland (upstream never writes the `disconnecting` status, but reads it)."""

from __future__ import annotations

from typing import Literal

import apsw
import msgspec

from town.clock import new_id, now_iso
from town.errors import BadRequest

WastelandConnectionStatus = Literal["active", "disconnecting"]

_COLUMNS = "connection_id, wasteland_id, upstream, rig_handle, dolthub_org, connected_at, status"


class WastelandConnection(msgspec.Struct, kw_only=True):
    """Upstream's connection record; field order is its key order."""

    connection_id: str
    wasteland_id: str
    upstream: str
    rig_handle: str
    dolthub_org: str
    connected_at: str
    status: WastelandConnectionStatus


def get_connection(conn: apsw.Connection) -> WastelandConnection | None:
    """The first active connection (oldest row first, the order upstream's unordered scan of
    this rowid table yields), or None."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM town_wasteland_connections WHERE status = 'active'"
        " ORDER BY rowid LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    return WastelandConnection(
        connection_id=row[0],
        wasteland_id=row[1],
        upstream=row[2],
        rig_handle=row[3],
        dolthub_org=row[4],
        connected_at=row[5],
        status=row[6],
    )


def connect(
    conn: apsw.Connection, *, wasteland_id: str, upstream: str, rig_handle: str, dolthub_org: str
) -> WastelandConnection:
    """Record a new active connection under a fresh id and return it.

    Existing connections are neither replaced nor refused, as upstream (whose upsert is keyed by
    the fresh connection id): while an older one stays active, get_connection still returns it.
    """
    for name, value in (
        ("wastelandId", wasteland_id),
        ("upstream", upstream),
        ("rigHandle", rig_handle),
        ("dolthubOrg", dolthub_org),
    ):
        if not value:
            raise BadRequest(f"{name} must not be empty")
    connection = WastelandConnection(
        connection_id=new_id(),
        wasteland_id=wasteland_id,
        upstream=upstream,
        rig_handle=rig_handle,
        dolthub_org=dolthub_org,
        connected_at=now_iso(),
        status="active",
    )
    conn.execute(
        f"INSERT INTO town_wasteland_connections ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            connection.connection_id,
            connection.wasteland_id,
            connection.upstream,
            connection.rig_handle,
            connection.dolthub_org,
            connection.connected_at,
            connection.status,
        ),
    )
    return connection


def disconnect(conn: apsw.Connection, wasteland_id: str) -> bool:
    """Delete every connection to `wasteland_id`; False when there was none (upstream answers
    success either way)."""
    conn.execute("DELETE FROM town_wasteland_connections WHERE wasteland_id = ?", (wasteland_id,))
    return conn.changes() > 0
