"""Deleting beads (model.md §3): a bead goes with its descendants (by parent_bead_id), its
dependency edges in both directions, its events, satellite rows, an agent's nudges and the
reconciler events naming it; references from surviving rows are cleared."""

from __future__ import annotations

from collections.abc import Iterable

import apsw

from town.bead_events import json_text
from town.clock import now_iso
from town.errors import NotFound


def delete_beads(conn: apsw.Connection, bead_ids: Iterable[str]) -> int:
    """Delete beads and all their descendants with everything attached; missing ids are skipped.

    Returns the number of beads deleted.
    """
    roots = json_text(list(dict.fromkeys(bead_ids)))
    doomed = [
        str(r[0])
        for r in conn.execute(
            "WITH RECURSIVE tree(id) AS ("
            " SELECT bead_id FROM beads WHERE bead_id IN (SELECT value FROM json_each(?)) UNION"
            " SELECT b.bead_id FROM beads b JOIN tree ON b.parent_bead_id = tree.id"
            ") SELECT id FROM tree",
            (roots,),
        )
    ]
    if not doomed:
        return 0
    ids = json_text(doomed)
    in_ids = "IN (SELECT value FROM json_each(?))"
    now = now_iso()
    # References from surviving rows are cleared first so nothing points at a missing bead.
    conn.execute(
        f"UPDATE agent_metadata SET current_hook_bead_id = NULL"
        f" WHERE current_hook_bead_id {in_ids}",
        (ids,),
    )
    conn.execute(
        f"UPDATE beads SET assignee_agent_bead_id = NULL, updated_at = ?"
        f" WHERE assignee_agent_bead_id {in_ids}",
        (now, ids),
    )
    conn.execute(
        f"DELETE FROM bead_dependencies WHERE bead_id {in_ids} OR depends_on_bead_id {in_ids}",
        (ids, ids),
    )
    conn.execute(f"DELETE FROM bead_events WHERE bead_id {in_ids}", (ids,))
    for table in ("agent_metadata", "review_metadata", "escalation_metadata", "convoy_metadata"):
        conn.execute(f"DELETE FROM {table} WHERE bead_id {in_ids}", (ids,))
    conn.execute(f"DELETE FROM agent_nudges WHERE agent_bead_id {in_ids}", (ids,))
    conn.execute(f"DELETE FROM town_events WHERE bead_id {in_ids} OR agent_id {in_ids}", (ids, ids))
    # One statement: with foreign_keys on, parent/child references are checked at its end.
    conn.execute(f"DELETE FROM beads WHERE bead_id {in_ids}", (ids,))
    return len(doomed)


def delete_bead(conn: apsw.Connection, bead_id: str) -> int:
    """Delete one bead and its descendants; returns how many beads were deleted."""
    if conn.execute("SELECT 1 FROM beads WHERE bead_id = ?", (bead_id,)).fetchone() is None:
        raise NotFound(f"Bead {bead_id} not found")
    return delete_beads(conn, [bead_id])
