"""Edges between beads (`bead_dependencies`).

`blocks`: bead_id waits for depends_on_bead_id. `tracks`: convoy membership (member → convoy)
and merge request → source bead. At most one edge per ordered pair (UNIQUE idx_bead_deps_pk),
whatever its type; inserting a second one for the same pair is a no-op, as upstream.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, get_args

import apsw

from town.errors import BadRequest, NotFound

DependencyType = Literal["blocks", "tracks", "parent-child"]
DEPENDENCY_TYPES: tuple[str, ...] = get_args(DependencyType)


def _require_bead(conn: apsw.Connection, bead_id: str) -> None:
    if conn.execute("SELECT 1 FROM beads WHERE bead_id = ?", (bead_id,)).fetchone() is None:
        raise NotFound(f"Bead {bead_id} not found")


def add_dependency(
    conn: apsw.Connection,
    bead_id: str,
    depends_on_bead_id: str,
    dependency_type: DependencyType = "blocks",
) -> bool:
    """Add the edge bead_id → depends_on_bead_id; False when the pair already had an edge."""
    if dependency_type not in DEPENDENCY_TYPES:
        raise BadRequest(f"Unknown dependency type {dependency_type!r}")
    if bead_id == depends_on_bead_id:
        raise BadRequest(f"Bead {bead_id} cannot depend on itself")
    _require_bead(conn, bead_id)
    _require_bead(conn, depends_on_bead_id)
    conn.execute(
        "INSERT OR IGNORE INTO bead_dependencies (bead_id, depends_on_bead_id, dependency_type) "
        "VALUES (?, ?, ?)",
        (bead_id, depends_on_bead_id, dependency_type),
    )
    return conn.changes() > 0


def replace_blocking_dependencies(
    conn: apsw.Connection, bead_id: str, depends_on: Iterable[str]
) -> list[str]:
    """Make `depends_on` the exact set of beads `bead_id` is blocked by (updateBead's depends_on).

    Self-loops are skipped, as upstream; every target must exist. Returns the targets kept.
    """
    targets = list(dict.fromkeys(t for t in depends_on if t != bead_id))
    for target in targets:
        _require_bead(conn, target)
    conn.execute(
        "DELETE FROM bead_dependencies WHERE bead_id = ? AND dependency_type = 'blocks'",
        (bead_id,),
    )
    conn.executemany(
        "INSERT OR IGNORE INTO bead_dependencies (bead_id, depends_on_bead_id, dependency_type) "
        "VALUES (?, ?, 'blocks')",
        [(bead_id, t) for t in targets],
    )
    return targets


def list_dependencies(
    conn: apsw.Connection, bead_id: str, dependency_type: DependencyType | None = None
) -> list[tuple[str, str]]:
    """(depends_on_bead_id, dependency_type) pairs of the edges leaving `bead_id`."""
    sql = "SELECT depends_on_bead_id, dependency_type FROM bead_dependencies WHERE bead_id = ?"
    params: tuple[str, ...] = (bead_id,)
    if dependency_type is not None:
        sql += " AND dependency_type = ?"
        params = (bead_id, dependency_type)
    return [
        (str(r[0]), str(r[1])) for r in conn.execute(sql + " ORDER BY depends_on_bead_id", params)
    ]
