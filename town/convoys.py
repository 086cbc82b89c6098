"""Convoys as the API shows them: a `convoy` bead + `convoy_metadata`, its members (beads with a
`tracks` edge to it) and the `blocks` edges among those members."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Literal

import apsw
import msgspec

from town.bead_events import json_text

ConvoyStatus = Literal["active", "landed"]
ConvoyMergeMode = Literal["review-then-land", "review-and-merge"]


class ConvoyBead(msgspec.Struct, kw_only=True):
    bead_id: str
    title: str
    status: str
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
