"""Beads: the town's unit of work (issues, mail, escalations, merge requests, convoys, agents…).

Rules from model.md §3: creating writes a `created` event; status changes go through the
terminal-state guard; non-status fields stay editable on terminal beads; deleting cascades to
descendants, edges, events, satellites and reconciler events that name the bead.
"""

from __future__ import annotations

import logging
from typing import Any, Literal, get_args

import apsw
import msgspec
from msgspec import UNSET, UnsetType

from town.bead_deletion import delete_bead, delete_beads
from town.bead_events import (
    EVENT_TYPES,
    BeadEvent,
    decode_object,
    json_text,
    list_bead_events,
    record_bead_event,
)
from town.clock import new_id, now_iso
from town.dependencies import (
    DEPENDENCY_TYPES,
    DependencyType,
    add_dependency,
    replace_blocking_dependencies,
)
from town.errors import BadRequest, NotFound

__all__ = [
    "BEAD_STATUSES",
    "BEAD_TYPES",
    "DEPENDENCY_TYPES",
    "EVENT_TYPES",
    "PRIORITIES",
    "TERMINAL_STATUSES",
    "Bead",
    "BeadEvent",
    "BeadStatus",
    "BeadType",
    "BeadUpdate",
    "DependencyType",
    "Priority",
    "add_dependency",
    "create_bead",
    "delete_bead",
    "delete_beads",
    "get_bead",
    "list_bead_events",
    "list_beads",
    "update_bead",
    "update_bead_status",
]

log = logging.getLogger(__name__)

BeadType = Literal["issue", "message", "escalation", "merge_request", "convoy", "molecule", "agent"]
BeadStatus = Literal["open", "in_progress", "in_review", "closed", "failed"]
Priority = Literal["low", "medium", "high", "critical"]

BEAD_TYPES: tuple[str, ...] = get_args(BeadType)
BEAD_STATUSES: tuple[str, ...] = get_args(BeadStatus)
PRIORITIES: tuple[str, ...] = get_args(Priority)
TERMINAL_STATUSES: frozenset[str] = frozenset({"closed", "failed"})


class Bead(msgspec.Struct, kw_only=True):
    """A `beads` row as the API shows it (no dispatch bookkeeping columns)."""

    bead_id: str
    type: BeadType
    status: BeadStatus
    title: str
    body: str | None
    rig_id: str | None
    parent_bead_id: str | None
    assignee_agent_bead_id: str | None
    priority: Priority
    labels: list[str]
    metadata: dict[str, Any]
    created_by: str | None
    created_at: str
    updated_at: str
    closed_at: str | None


class BeadUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Partial update; UNSET = leave alone. `depends_on` replaces the bead's `blocks` edges."""

    title: str | UnsetType = UNSET
    body: str | UnsetType | None = UNSET
    status: BeadStatus | UnsetType = UNSET
    priority: Priority | UnsetType = UNSET
    labels: list[str] | UnsetType = UNSET
    metadata: dict[str, Any] | UnsetType = UNSET
    rig_id: str | UnsetType | None = UNSET
    parent_bead_id: str | UnsetType | None = UNSET
    depends_on: list[str] | UnsetType = UNSET


BEAD_COLUMNS = (
    "bead_id, type, status, title, body, rig_id, parent_bead_id, assignee_agent_bead_id, "
    "priority, labels, metadata, created_by, created_at, updated_at, closed_at"
)

# Plain column updates of BeadUpdate (depends_on and status are handled separately).
_COLUMN_FIELDS = ("title", "body", "priority", "labels", "metadata", "rig_id", "parent_bead_id")


def _decode_labels(text: str | None) -> list[str]:
    if not text:
        return []
    try:
        value = msgspec.json.decode(text)
    except msgspec.DecodeError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def row_to_bead(row: tuple[Any, ...]) -> Bead:
    return Bead(
        bead_id=row[0],
        type=row[1],
        status=row[2],
        title=row[3],
        body=row[4],
        rig_id=row[5],
        parent_bead_id=row[6],
        assignee_agent_bead_id=row[7],
        # NULL (allowed by the column) reads as its default, as upstream's record schema does.
        priority=row[8] or "medium",
        labels=_decode_labels(row[9]),
        metadata=decode_object(row[10]),
        created_by=row[11],
        created_at=row[12],
        updated_at=row[13],
        closed_at=row[14],
    )


def _check_choice(kind: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise BadRequest(f"Invalid bead {kind} {value!r}; expected one of {', '.join(allowed)}")


def create_bead(
    conn: apsw.Connection,
    *,
    type: BeadType,
    title: str,
    body: str | None = None,
    rig_id: str | None = None,
    parent_bead_id: str | None = None,
    labels: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    priority: Priority = "medium",
    created_by: str | None = None,
) -> Bead:
    _check_choice("type", type, BEAD_TYPES)
    _check_choice("priority", priority, PRIORITIES)
    if parent_bead_id is not None and get_bead(conn, parent_bead_id) is None:
        raise NotFound(f"Bead {parent_bead_id} not found")
    now = now_iso()
    bead = Bead(
        bead_id=new_id(),
        type=type,
        status="open",
        title=title,
        body=body,
        rig_id=rig_id,
        parent_bead_id=parent_bead_id,
        assignee_agent_bead_id=None,
        priority=priority,
        labels=list(labels or []),
        metadata=dict(metadata or {}),
        created_by=created_by,
        created_at=now,
        updated_at=now,
        closed_at=None,
    )
    conn.execute(
        f"INSERT INTO beads ({BEAD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            bead.bead_id,
            bead.type,
            bead.status,
            bead.title,
            bead.body,
            bead.rig_id,
            bead.parent_bead_id,
            bead.assignee_agent_bead_id,
            bead.priority,
            json_text(bead.labels),
            json_text(bead.metadata),
            bead.created_by,
            bead.created_at,
            bead.updated_at,
            bead.closed_at,
        ),
    )
    record_bead_event(
        conn,
        bead_id=bead.bead_id,
        event_type="created",
        agent_id=created_by,
        new_value="open",
        metadata={"type": type, "title": title},
        created_at=now,
    )
    return bead


def get_bead(conn: apsw.Connection, bead_id: str) -> Bead | None:
    row = conn.execute(f"SELECT {BEAD_COLUMNS} FROM beads WHERE bead_id = ?", (bead_id,)).fetchone()
    return None if row is None else row_to_bead(row)


def _require(conn: apsw.Connection, bead_id: str) -> Bead:
    bead = get_bead(conn, bead_id)
    if bead is None:
        raise NotFound(f"Bead {bead_id} not found")
    return bead


def _check_parent(conn: apsw.Connection, bead_id: str, parent_id: str) -> None:
    """The new parent must exist and must not be the bead itself or one of its descendants."""
    if parent_id == bead_id:
        raise BadRequest(f"Bead {bead_id} cannot be its own parent")
    _require(conn, parent_id)
    # Walk up from the new parent; UNION (not ALL) stops on a cycle already in the data.
    cycle = conn.execute(
        "WITH RECURSIVE up(id) AS ("
        " SELECT ? UNION"
        " SELECT b.parent_bead_id FROM beads b JOIN up ON b.bead_id = up.id"
        " WHERE b.parent_bead_id IS NOT NULL"
        ") SELECT 1 FROM up WHERE id = ? LIMIT 1",
        (parent_id, bead_id),
    ).fetchone()
    if cycle is not None:
        raise BadRequest(f"Setting parent {parent_id} on bead {bead_id} would create a cycle")


def update_bead_status(
    conn: apsw.Connection,
    bead_id: str,
    status: BeadStatus,
    *,
    actor: str | None,
    metadata: dict[str, Any] | None = None,
) -> Bead:
    """Guarded status change (model.md §3); returns the bead as it is afterwards."""
    _check_choice("status", status, BEAD_STATUSES)
    bead = _require(conn, bead_id)
    if bead.status == status:
        return bead
    if bead.status in TERMINAL_STATUSES:
        # Refused without an error, as upstream: callers racing a close must not fail.
        log.warning(
            "Refusing status change of terminal bead %s from %s to %s", bead_id, bead.status, status
        )
        return bead
    now = now_iso()
    closed_at = now if status == "closed" else bead.closed_at
    conn.execute(
        "UPDATE beads SET status = ?, updated_at = ?, closed_at = ? WHERE bead_id = ?",
        (status, now, closed_at, bead_id),
    )
    record_bead_event(
        conn,
        bead_id=bead_id,
        event_type="status_changed",
        agent_id=actor,
        old_value=bead.status,
        new_value=status,
        metadata=metadata,
        created_at=now,
    )
    return msgspec.structs.replace(bead, status=status, updated_at=now, closed_at=closed_at)


def update_bead(
    conn: apsw.Connection, bead_id: str, changes: BeadUpdate, *, actor: str | None
) -> Bead:
    bead = _require(conn, bead_id)
    if changes.priority is not UNSET:
        _check_choice("priority", changes.priority, PRIORITIES)
    if isinstance(changes.parent_bead_id, str):
        _check_parent(conn, bead_id, changes.parent_bead_id)

    touched: list[str] = []
    assignments: list[str] = []
    params: list[Any] = []
    for name in _COLUMN_FIELDS:
        value = getattr(changes, name)
        if value is UNSET:
            continue
        touched.append(name)
        assignments.append(f"{name} = ?")
        params.append(json_text(value) if name in ("labels", "metadata") else value)
    if changes.depends_on is not UNSET:
        replace_blocking_dependencies(conn, bead_id, changes.depends_on)
        touched.append("depends_on")

    if touched:
        now = now_iso()
        assignments.append("updated_at = ?")
        # Column names come from _COLUMN_FIELDS, never from input; values are bound.
        conn.execute(
            f"UPDATE beads SET {', '.join(assignments)} WHERE bead_id = ?",
            (*params, now, bead_id),
        )
        record_bead_event(
            conn,
            bead_id=bead_id,
            event_type="fields_updated",
            agent_id=actor,
            new_value=",".join(touched),
            created_at=now,
        )
    if changes.status is not UNSET:
        update_bead_status(conn, bead_id, changes.status, actor=actor)
    return _require(conn, bead_id) if touched or changes.status is not UNSET else bead


def list_beads(
    conn: apsw.Connection,
    *,
    rig_id: str | None = None,
    status: BeadStatus | None = None,
    type: BeadType | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Bead]:
    """Beads newest first (created_at, then bead_id), optionally filtered."""
    if limit < 1 or offset < 0:
        raise BadRequest(f"Invalid page limit={limit} offset={offset}")
    where: list[str] = []
    params: list[Any] = []
    for column, value in (("rig_id", rig_id), ("status", status), ("type", type)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = conn.execute(
        f"SELECT {BEAD_COLUMNS} FROM beads {clause} "
        "ORDER BY created_at DESC, bead_id DESC LIMIT ? OFFSET ?",
        (*params, limit, offset),
    ).fetchall()
    return [row_to_bead(r) for r in rows]
