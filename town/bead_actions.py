"""Operator actions on beads (upstream's Town.do.ts): start a held bead, bulk-delete by status,
and the admin force-close / force-fail.

Upstream also wakes the town alarm and dispatches agents to beads these actions unblock; that
needs the agent runtime, which this service does not run, so the reconciler picks them up later.
"""

from __future__ import annotations

from typing import Any

import apsw

from town.bead_deletion import delete_beads
from town.beads import (
    BEAD_STATUSES,
    BEAD_TYPES,
    Bead,
    BeadStatus,
    BeadUpdate,
    get_bead,
    update_bead,
    update_bead_status,
)
from town.errors import BadRequest, NotFound
from town.town_events import record_town_event

HELD_LABEL = "gt:held"

# Roots deleted per statement: bounds memory (ids and their descendants) on large towns.
DELETE_BATCH = 500

ADMIN_FORCE_FAIL_REASON: dict[str, Any] = {
    "code": "admin_force_fail",
    "message": "Manually failed by admin",
    "source": "admin",
}


def start_held_bead(conn: apsw.Connection, bead_id: str, rig_id: str) -> Bead:
    """Drop the `gt:held` label so the reconciler may dispatch the bead; returns the bead.

    As upstream, the labels are rewritten (a `fields_updated` event by `system`) even when the
    bead was not held. A bead of another rig reads as missing, so a rig's caller learns nothing
    about other rigs. The dispatch itself needs the agent runtime and is not done here.
    """
    bead = get_bead(conn, bead_id)
    if bead is None:
        raise NotFound(f"Bead {bead_id} not found")
    if bead.rig_id != rig_id:
        raise NotFound(f"Bead {bead_id} not found in rig {rig_id}")
    labels = [label for label in bead.labels if label != HELD_LABEL]
    return update_bead(conn, bead_id, BeadUpdate(labels=labels), actor="system")


def delete_beads_by_status(
    conn: apsw.Connection,
    status: str,
    type: str | None = None,
    rig_id: str | None = None,
) -> int:
    """Delete every bead with `status` (and `type`, `rig_id` when given) through the usual
    cascade; returns how many beads went, descendants included, as upstream counts.

    `status` and `type` are checked here (BadRequest), so callers may pass wire strings.
    """
    if status not in BEAD_STATUSES:
        raise BadRequest(f"Invalid bead status {status!r}")
    if type is not None and type not in BEAD_TYPES:
        raise BadRequest(f"Invalid bead type {type!r}")
    where = ["status = ?"]
    params: list[Any] = [status]
    for column, value in (("type", type), ("rig_id", rig_id)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    # Re-select from the start each round: the previous batch's rows are gone, so this ends.
    select = f"SELECT bead_id FROM beads WHERE {' AND '.join(where)} LIMIT ?"
    deleted = 0
    while True:
        ids = [str(r[0]) for r in conn.execute(select, (*params, DELETE_BATCH))]
        if not ids:
            return deleted
        deleted += delete_beads(conn, ids)


def _terminate(
    conn: apsw.Connection,
    bead_id: str,
    status: BeadStatus,
    actor: str,
    metadata: dict[str, Any] | None = None,
) -> Bead:
    if get_bead(conn, bead_id) is None:
        raise NotFound(f"Bead {bead_id} not found")
    # Upstream queues this for every requested terminal status, even one the guard then refuses.
    record_town_event(conn, "bead_cancelled", bead_id=bead_id, payload={"cancel_status": status})
    return update_bead_status(conn, bead_id, status, actor=actor, metadata=metadata)


def force_close_bead(conn: apsw.Connection, bead_id: str, actor: str = "admin") -> Bead:
    """Close a bead through the terminal-state guard (a closed or failed bead stays as it is)."""
    return _terminate(conn, bead_id, "closed", actor)


def force_fail_bead(conn: apsw.Connection, bead_id: str, actor: str = "admin") -> Bead:
    """Fail a bead through the guard; the `status_changed` event carries the admin failure
    reason in its metadata (`failure_reason`)."""
    return _terminate(
        conn, bead_id, "failed", actor, {"failure_reason": dict(ADMIN_FORCE_FAIL_REASON)}
    )
