"""Convoys as the API shows them: a `convoy` bead + `convoy_metadata`, its members (beads with a
`tracks` edge to it) and the `blocks` edges among those members; and the convoy actions (close,
start, add and remove a member).

The actions follow upstream's Town.do.ts / beads.ts: an id is a convoy for them only when it
has a `convoy_metadata` row, since the counters and flags they change live there.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Literal

import apsw
import msgspec

from town.bead_events import json_text, record_bead_event
from town.beads import TERMINAL_STATUSES, BeadStatus, update_bead_status
from town.clock import now_iso
from town.dependencies import replace_blocking_dependencies
from town.errors import BadRequest, NotFound
from town.town_events import record_town_event

ConvoyStatus = Literal["active", "landed"]
ConvoyMergeMode = Literal["review-then-land", "review-and-merge"]


class ConvoyBead(msgspec.Struct, kw_only=True):
    bead_id: str
    title: str
    status: BeadStatus
    rig_id: str | None
    assignee_agent_name: str | None


class DependencyEdge(msgspec.Struct, kw_only=True):
    bead_id: str
    depends_on_bead_id: str


class Convoy(msgspec.Struct, kw_only=True):
    id: str
    title: str
    status: ConvoyStatus
    staged: bool
    total_beads: int
    closed_beads: int
    created_by: str | None
    created_at: str
    landed_at: str | None
    feature_branch: str | None
    merge_mode: ConvoyMergeMode


class ConvoyDetail(Convoy, kw_only=True):
    beads: list[ConvoyBead]
    dependency_edges: list[DependencyEdge]


_CONVOY_SELECT = (
    "SELECT b.bead_id, b.title, b.status, m.staged, m.total_beads, m.closed_beads, b.created_by,"
    " b.created_at, m.landed_at, m.feature_branch, m.merge_mode"
    " FROM beads b LEFT JOIN convoy_metadata m ON m.bead_id = b.bead_id"
    " WHERE b.type = 'convoy'"
)


def _row_to_fields(row: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "id": row[0],
        "title": row[1],
        # As upstream's API: a closed convoy bead reads as landed, anything else as active.
        "status": "landed" if row[2] == "closed" else "active",
        "staged": bool(row[3]),
        "total_beads": int(row[4] or 0),
        "closed_beads": int(row[5] or 0),
        "created_by": row[6],
        "created_at": row[7],
        "landed_at": row[8],
        "feature_branch": row[9],
        "merge_mode": row[10] or "review-then-land",
    }


def _details(conn: apsw.Connection, rows: list[tuple[Any, ...]]) -> list[ConvoyDetail]:
    """Attach members and edges to convoy rows with two queries, whatever the convoy count."""
    if not rows:
        return []
    ids = json_text([r[0] for r in rows])
    members: dict[str, list[ConvoyBead]] = defaultdict(list)
    for convoy_id, bead_id, title, status, rig_id, agent_name in conn.execute(
        "SELECT t.depends_on_bead_id, b.bead_id, b.title, b.status, b.rig_id, a.title"
        " FROM bead_dependencies t"
        " JOIN beads b ON b.bead_id = t.bead_id"
        " LEFT JOIN beads a ON a.bead_id = b.assignee_agent_bead_id"
        " WHERE t.dependency_type = 'tracks'"
        "   AND t.depends_on_bead_id IN (SELECT value FROM json_each(?))"
        " ORDER BY b.created_at, b.bead_id",
        (ids,),
    ):
        members[convoy_id].append(
            ConvoyBead(
                bead_id=bead_id,
                title=title,
                status=status,
                rig_id=rig_id,
                assignee_agent_name=agent_name,
            )
        )
    edges: dict[str, list[DependencyEdge]] = defaultdict(list)
    for convoy_id, bead_id, depends_on in conn.execute(
        "SELECT t1.depends_on_bead_id, d.bead_id, d.depends_on_bead_id"
        " FROM bead_dependencies d"
        " JOIN bead_dependencies t1"
        "   ON t1.bead_id = d.bead_id AND t1.dependency_type = 'tracks'"
        " JOIN bead_dependencies t2"
        "   ON t2.bead_id = d.depends_on_bead_id AND t2.dependency_type = 'tracks'"
        "   AND t2.depends_on_bead_id = t1.depends_on_bead_id"
        " WHERE d.dependency_type = 'blocks'"
        "   AND t1.depends_on_bead_id IN (SELECT value FROM json_each(?))"
        " ORDER BY d.bead_id, d.depends_on_bead_id",
        (ids,),
    ):
        edges[convoy_id].append(DependencyEdge(bead_id=bead_id, depends_on_bead_id=depends_on))
    return [
        ConvoyDetail(
            **_row_to_fields(r), beads=members.get(r[0], []), dependency_edges=edges.get(r[0], [])
        )
        for r in rows
    ]


def list_convoys(conn: apsw.Connection) -> list[ConvoyDetail]:
    """Convoys whose bead is not closed, newest first."""
    rows = conn.execute(
        _CONVOY_SELECT + " AND b.status != 'closed' ORDER BY b.created_at DESC, b.bead_id DESC"
    ).fetchall()
    return _details(conn, rows)


def get_convoy(conn: apsw.Connection, convoy_id: str) -> ConvoyDetail | None:
    rows = conn.execute(_CONVOY_SELECT + " AND b.bead_id = ?", (convoy_id,)).fetchall()
    found = _details(conn, rows)
    return found[0] if found else None


def _convoy_status(conn: apsw.Connection, convoy_id: str) -> str | None:
    """The convoy bead's status, or None when the id is not a convoy with its metadata row."""
    row = conn.execute(
        "SELECT b.status FROM beads b JOIN convoy_metadata m ON m.bead_id = b.bead_id"
        " WHERE b.bead_id = ? AND b.type = 'convoy'",
        (convoy_id,),
    ).fetchone()
    return None if row is None else str(row[0])


def _require_convoy(conn: apsw.Connection, convoy_id: str) -> None:
    if _convoy_status(conn, convoy_id) is not None:
        return
    if conn.execute("SELECT 1 FROM beads WHERE bead_id = ?", (convoy_id,)).fetchone() is None:
        raise NotFound(f"Convoy {convoy_id} not found")
    raise BadRequest(f"Bead {convoy_id} is not a convoy")


def _total_beads(conn: apsw.Connection, convoy_id: str) -> int:
    row = conn.execute(
        "SELECT total_beads FROM convoy_metadata WHERE bead_id = ?", (convoy_id,)
    ).fetchone()
    return 0 if row is None else int(row[0] or 0)


def _unhook(conn: apsw.Connection, agent_id: str, bead_id: str) -> None:
    """Return an agent hooked on `bead_id` to the idle pool (its checkpoint belonged to that
    bead); an agent that has since moved on to other work keeps its hook."""
    conn.execute(
        "UPDATE agent_metadata SET current_hook_bead_id = NULL, status = 'idle', checkpoint = NULL"
        " WHERE bead_id = ? AND current_hook_bead_id = ?",
        (agent_id, bead_id),
    )
    if conn.changes() > 0:
        record_bead_event(
            conn, bead_id=bead_id, event_type="unhooked", agent_id=agent_id, old_value=agent_id
        )


def close_convoy(conn: apsw.Connection, convoy_id: str) -> ConvoyDetail | None:
    """Force-close a convoy: every tracked bead not yet closed or failed is closed (guarded
    `status_changed` event by `system`, its hooked agent unhooked), then the convoy bead itself
    is closed with `closed_beads = total_beads` and `landed_at` stamped. None when there is no
    such convoy.

    As upstream, the convoy bead's own close is a direct write with no bead event; unlike
    upstream's direct write, a `failed` convoy bead stays failed (the terminal-state guard of
    model.md §3) and is not stamped as landed.
    """
    if _convoy_status(conn, convoy_id) is None:
        return None
    members = conn.execute(
        "SELECT b.bead_id, b.status, b.assignee_agent_bead_id"
        " FROM bead_dependencies d JOIN beads b ON b.bead_id = d.bead_id"
        " WHERE d.depends_on_bead_id = ? AND d.dependency_type = 'tracks'",
        (convoy_id,),
    ).fetchall()
    for bead_id, status, assignee in members:
        if status in TERMINAL_STATUSES:
            continue
        if assignee is not None:
            _unhook(conn, str(assignee), str(bead_id))
        update_bead_status(conn, str(bead_id), "closed", actor="system")
    if _convoy_status(conn, convoy_id) not in TERMINAL_STATUSES:
        now = now_iso()
        conn.execute(
            "UPDATE beads SET status = 'closed', closed_at = ?, updated_at = ? WHERE bead_id = ?",
            (now, now, convoy_id),
        )
        conn.execute(
            "UPDATE convoy_metadata SET closed_beads = total_beads, landed_at = ? WHERE bead_id = ?",
            (now, convoy_id),
        )
    return get_convoy(conn, convoy_id)


def start_convoy(conn: apsw.Connection, convoy_id: str) -> ConvoyDetail:
    """Release a staged convoy: clear `staged` and queue a `convoy_started` reconciler event.

    Members are not touched: agents are assigned and dispatched later by the reconciler, which
    needs the agent runtime (and upstream's wake-up of the town alarm); neither runs here.
    Raises NotFound for an unknown convoy and BadRequest for one that is not staged.
    """
    _require_convoy(conn, convoy_id)
    row = conn.execute("SELECT staged FROM convoy_metadata WHERE bead_id = ?", (convoy_id,)).fetchone()
    if row is None or not row[0]:
        raise BadRequest(f"Convoy {convoy_id} is not staged")
    conn.execute("UPDATE convoy_metadata SET staged = 0 WHERE bead_id = ?", (convoy_id,))
    record_town_event(conn, "convoy_started", payload={"convoy_id": convoy_id})
    detail = get_convoy(conn, convoy_id)
    if detail is None:  # unreachable: checked above in the same transaction
        raise NotFound(f"Convoy {convoy_id} not found")
    return detail


def convoy_add_bead(
    conn: apsw.Connection, convoy_id: str, bead_id: str, depends_on: list[str] | None
) -> int:
    """Track `bead_id` in the convoy; returns the convoy's total_beads.

    `total_beads` grows only when the `tracks` edge is new (the pair index allows one edge per
    ordered pair, so a repeat is a no-op); `closed_beads` is left as it is, as upstream. A
    `depends_on` list (even empty) replaces the bead's `blocks` edges: it waits for each.
    """
    _require_convoy(conn, convoy_id)
    if conn.execute("SELECT 1 FROM beads WHERE bead_id = ?", (bead_id,)).fetchone() is None:
        raise NotFound(f"Bead {bead_id} not found")
    if bead_id == convoy_id:
        raise BadRequest(f"Convoy {convoy_id} cannot track itself")
    # Edges first: a missing target raises before anything is written.
    if depends_on is not None:
        replace_blocking_dependencies(conn, bead_id, depends_on)
    conn.execute(
        "INSERT OR IGNORE INTO bead_dependencies (bead_id, depends_on_bead_id, dependency_type)"
        " VALUES (?, ?, 'tracks')",
        (bead_id, convoy_id),
    )
    if conn.changes() > 0:
        conn.execute(
            "UPDATE convoy_metadata SET total_beads = total_beads + 1 WHERE bead_id = ?",
            (convoy_id,),
        )
    return _total_beads(conn, convoy_id)


def convoy_remove_bead(conn: apsw.Connection, convoy_id: str, bead_id: str) -> int:
    """Stop tracking `bead_id`; returns the convoy's total_beads (never below 0).

    The `blocks` edges between the bead and the convoy's remaining members go too (both
    directions); edges to beads outside the convoy stay. An untracked bead is a no-op.
    """
    _require_convoy(conn, convoy_id)
    conn.execute(
        "DELETE FROM bead_dependencies"
        " WHERE bead_id = ? AND depends_on_bead_id = ? AND dependency_type = 'tracks'",
        (bead_id, convoy_id),
    )
    if conn.changes() == 0:
        return _total_beads(conn, convoy_id)
    conn.execute(
        "UPDATE convoy_metadata SET total_beads = MAX(0, total_beads - 1) WHERE bead_id = ?",
        (convoy_id,),
    )
    members = (
        "SELECT bead_id FROM bead_dependencies"
        " WHERE depends_on_bead_id = ? AND dependency_type = 'tracks'"
    )
    conn.execute(
        "DELETE FROM bead_dependencies WHERE dependency_type = 'blocks' AND ("
        f" (bead_id = ? AND depends_on_bead_id IN ({members}))"
        f" OR (depends_on_bead_id = ? AND bead_id IN ({members})))",
        (bead_id, convoy_id, bead_id, convoy_id),
    )
    return _total_beads(conn, convoy_id)
