"""Small status reads the town pages poll: drain state and the mayor's session.

This service runs no container or agents, so these report what the town's own data says:
a drain that a runtime recorded in KV, and a mayor session that is always absent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import apsw
import msgspec

from dos.kv import kv_get
from town.clock import iso

DRAINING_KEY = "town:draining"
DRAIN_STARTED_KEY = "town:drainStartedAt"
TOWN_ID_KEY = "town:id"

SessionStatus = Literal["idle", "active", "starting"]


class DrainStatus(msgspec.Struct, kw_only=True):
    draining: bool
    drainStartedAt: str | None


class MayorSession(msgspec.Struct, kw_only=True):
    agentId: str
    sessionId: str
    status: SessionStatus
    lastActivityAt: str


class MayorStatus(msgspec.Struct, kw_only=True):
    configured: bool
    townId: str | None
    session: MayorSession | None


def drain_status(conn: apsw.Connection) -> DrainStatus:
    """KV `town:draining` (a flag) and `town:drainStartedAt` (epoch milliseconds, as upstream
    stores it); an unreadable start time reads as unknown rather than failing the page."""
    draining = kv_get(conn, DRAINING_KEY) is True
    started = kv_get(conn, DRAIN_STARTED_KEY)
    started_at = None
    if draining and isinstance(started, (int, float)) and not isinstance(started, bool):
        try:
            started_at = iso(datetime.fromtimestamp(started / 1000, UTC))
        except (OverflowError, OSError, ValueError):
            started_at = None
    return DrainStatus(draining=draining, drainStartedAt=started_at)


def mayor_status(conn: apsw.Connection) -> MayorStatus:
    """A town is configured once it has its id; no mayor session runs in this deployment."""
    town_id = kv_get(conn, TOWN_ID_KEY)
    return MayorStatus(
        configured=isinstance(town_id, str),
        townId=town_id if isinstance(town_id, str) else None,
        session=None,
    )
