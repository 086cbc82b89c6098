"""Bead history (`bead_events`): append-only rows written by bead operations, read newest first."""

from __future__ import annotations

from typing import Any

import apsw
import msgspec

from town.clock import new_id, now_iso
from town.errors import BadRequest

# Known event types (model.md §2). Stored values are not restricted to these: rows written by
# other versions must stay readable, so BeadEvent.event_type is a plain `str`.
EVENT_TYPES: tuple[str, ...] = (
    "created",
    "assigned",
    "hooked",
    "unhooked",
    "status_changed",
    "closed",
    "escalated",
    "notification_failed",
    "mail_sent",
    "review_submitted",
    "review_completed",
    "agent_spawned",
    "agent_exited",
    "pr_created",
    "pr_creation_failed",
    "agent_status",
    "triage_resolved",
    "fields_updated",
    "review_queue_depth_alert",
    "escalation_rate_spike",
    "agent_restart_loop",
    "rework_requested",
    "babysit_started",
)


class BeadEvent(msgspec.Struct, kw_only=True):
    bead_event_id: str
    bead_id: str
    agent_id: str | None
    event_type: str
    old_value: str | None
    new_value: str | None
    metadata: dict[str, Any]
    created_at: str
    # The bead's rig, filled in by list_bead_events (absent for town-level beads, as upstream).
    rig_id: str | msgspec.UnsetType = msgspec.UNSET
    rig_name: str | msgspec.UnsetType = msgspec.UNSET


_encode = msgspec.json.Encoder().encode

EVENT_COLUMNS = (
    "bead_event_id, bead_id, agent_id, event_type, old_value, new_value, metadata, created_at"
)


def json_text(value: Any) -> str:
    """JSON as TEXT: APSW would bind the encoder's bytes as a BLOB."""
    return _encode(value).decode()


def decode_object(text: str | None) -> dict[str, Any]:
    """A JSON-object column; NULL or damaged values read as `{}` so listing never fails."""
    if not text:
        return {}
    try:
        value = msgspec.json.decode(text)
    except msgspec.DecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def row_to_event(row: tuple[Any, ...]) -> BeadEvent:
    return BeadEvent(
        bead_event_id=row[0],
        bead_id=row[1],
        agent_id=row[2],
        event_type=row[3],
        old_value=row[4],
        new_value=row[5],
        metadata=decode_object(row[6]),
        created_at=row[7],
    )


def record_bead_event(
    conn: apsw.Connection,
    *,
    bead_id: str,
    event_type: str,
    agent_id: str | None = None,
    old_value: str | None = None,
    new_value: str | None = None,
    metadata: dict[str, Any] | None = None,
    created_at: str | None = None,
) -> BeadEvent:
    event = BeadEvent(
        bead_event_id=new_id(),
        bead_id=bead_id,
        agent_id=agent_id,
        event_type=event_type,
        old_value=old_value,
        new_value=new_value,
        metadata=metadata or {},
        created_at=created_at or now_iso(),
    )
    conn.execute(
        f"INSERT INTO bead_events ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            event.bead_event_id,
            event.bead_id,
            event.agent_id,
            event.event_type,
            event.old_value,
            event.new_value,
            json_text(event.metadata),
            event.created_at,
        ),
    )
    return event


def _scalar(conn: apsw.Connection, sql: str, *params: Any) -> int:
    row = conn.execute(sql, params).fetchone()
    return 0 if row is None else int(row[0])


def _rig_filter(conn: apsw.Connection, rig_id: str, *, by_bead: bool) -> str:
    """SQL condition keeping events of the rig's beads, shaped for the cheaper query plan.

    A rig holding a large share of the town's beads is best served by walking the events
    newest-first and probing each bead (stops after `limit` hits); a small rig by collecting
    its beads' events and sorting them (walking newest-first could scan the whole history).
    """
    membership = "bead_id IN (SELECT bead_id FROM beads WHERE rig_id = ?)"
    if by_bead:
        return membership
    rig_beads = _scalar(conn, "SELECT count(*) FROM beads WHERE rig_id = ?", rig_id)
    all_beads = _scalar(conn, "SELECT count(*) FROM beads")
    if rig_beads * 20 < all_beads:
        return membership
    return "EXISTS (SELECT 1 FROM beads b WHERE b.bead_id = bead_events.bead_id AND b.rig_id = ?)"


def list_bead_events(
    conn: apsw.Connection,
    *,
    rig_id: str | None = None,
    bead_id: str | None = None,
    since: str | None = None,
    limit: int = 100,
    oldest_first: bool = False,
) -> list[BeadEvent]:
    """Events newest first (or oldest first, for feeds that page forward from `since`);
    `rig_id` keeps events of that rig's beads, `since` is exclusive."""
    if limit < 1:
        raise BadRequest(f"limit must be >= 1, got {limit}")
    where: list[str] = []
    params: list[Any] = []
    if bead_id is not None:
        where.append("bead_id = ?")
        params.append(bead_id)
    if rig_id is not None:
        where.append(_rig_filter(conn, rig_id, by_bead=bead_id is not None))
        params.append(rig_id)
    if since is not None:
        where.append("created_at > ?")
        params.append(since)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    order = "ASC" if oldest_first else "DESC"
    rows = conn.execute(
        f"SELECT {EVENT_COLUMNS} FROM bead_events {clause} "
        f"ORDER BY created_at {order}, bead_event_id {order} LIMIT ?",
        (*params, limit),
    ).fetchall()
    return _with_rigs(conn, [row_to_event(r) for r in rows])


def _with_rigs(conn: apsw.Connection, events: list[BeadEvent]) -> list[BeadEvent]:
    """Attach each event's rig id and name with one lookup for the whole page."""
    if not events:
        return events
    ids = json_text(list({e.bead_id for e in events}))
    rigs: dict[str, tuple[str, str | None]] = {
        bead_id: (rig_id, name)
        for bead_id, rig_id, name in conn.execute(
            "SELECT b.bead_id, b.rig_id, r.name FROM beads b LEFT JOIN rigs r ON r.id = b.rig_id"
            " WHERE b.bead_id IN (SELECT value FROM json_each(?)) AND b.rig_id IS NOT NULL",
            (ids,),
        )
    }
    for event in events:
        found = rigs.get(event.bead_id)
        if found is not None:
            event.rig_id = found[0]
            if found[1] is not None:
                event.rig_name = found[1]
    return events
