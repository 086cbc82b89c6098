"""Agents: `agent` beads joined with their `agent_metadata` row (model.md §2), as the API shows
them, plus the operator actions on one agent (delete, reset dispatch attempts, force reset).

Rules follow upstream's agents.ts / Town.do.ts; an id that is not an agent bead (including the
id of some other bead) is NotFound, so these actions can never touch a non-agent bead.
"""

from __future__ import annotations

import logging
from typing import Any

import apsw
import msgspec
from msgspec import UNSET, UnsetType

from town.bead_deletion import delete_beads
from town.bead_events import record_bead_event
from town.clock import now_iso
from town.errors import NotFound

log = logging.getLogger(__name__)


class Agent(msgspec.Struct, kw_only=True):
    """Upstream's Agent object; field order is upstream's key order."""

    id: str
    rig_id: str | None
    role: str
    name: str
    identity: str
    status: str
    current_hook_bead_id: str | None
    dispatch_attempts: int
    last_activity_at: str | None
    # Declared `checkpoint?: unknown` upstream: absent when the column is NULL.
    checkpoint: Any | UnsetType = UNSET
    created_at: str
    agent_status_message: str | None
    agent_status_updated_at: str | None


_AGENT_SELECT = (
    "SELECT b.bead_id, b.rig_id, m.role, b.title, m.identity, m.status, m.current_hook_bead_id,"
    " m.dispatch_attempts, m.last_activity_at, m.checkpoint, b.created_at,"
    " m.agent_status_message, m.agent_status_updated_at"
    " FROM beads b JOIN agent_metadata m ON m.bead_id = b.bead_id"
    " WHERE b.type = 'agent'"
)


def _decode_checkpoint(text: str | None) -> Any | UnsetType:
    """The checkpoint column's JSON; NULL, empty or damaged text reads as absent so a listing
    never fails on one bad row (upstream's parser would reject the whole list)."""
    if not text:
        return UNSET
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:
        log.warning("Ignoring unreadable agent checkpoint JSON")
        return UNSET


def _row_to_agent(row: tuple[Any, ...]) -> Agent:
    return Agent(
        id=row[0],
        rig_id=row[1],
        role=row[2],
        name=row[3],
        identity=row[4],
        status=row[5],
        current_hook_bead_id=row[6],
        dispatch_attempts=int(row[7] or 0),
        last_activity_at=row[8],
        checkpoint=_decode_checkpoint(row[9]),
        created_at=row[10],
        agent_status_message=row[11],
        agent_status_updated_at=row[12],
    )


def list_agents(conn: apsw.Connection, *, rig_id: str | None = None) -> list[Agent]:
    """The rig's agents (every agent when rig_id is None), oldest first as upstream."""
    if rig_id is None:
        rows = conn.execute(_AGENT_SELECT + " ORDER BY b.created_at, b.bead_id").fetchall()
    else:
        rows = conn.execute(
            _AGENT_SELECT + " AND b.rig_id = ? ORDER BY b.created_at, b.bead_id", (rig_id,)
        ).fetchall()
    return [_row_to_agent(r) for r in rows]


def get_agent(conn: apsw.Connection, agent_id: str) -> Agent | None:
    row = conn.execute(_AGENT_SELECT + " AND b.bead_id = ?", (agent_id,)).fetchone()
    return None if row is None else _row_to_agent(row)


def _require(conn: apsw.Connection, agent_id: str, rig_id: str | None) -> Agent:
    agent = get_agent(conn, agent_id)
    if agent is None:
        raise NotFound(f"Agent {agent_id} not found")
    if rig_id is not None and agent.rig_id != rig_id:
        # Same answer as a missing agent: a rig's caller learns nothing about other rigs.
        raise NotFound(f"Agent {agent_id} not found in rig {rig_id}")
    return agent


def delete_agent(
    conn: apsw.Connection, agent_id: str, *, rig_id: str | None = None, missing_ok: bool = False
) -> bool:
    """Delete an agent: its non-terminal beads go back to `open` unassigned (so they can be
    dispatched again), its terminal beads just lose the assignee, then the agent bead goes with
    the usual cascade (satellite, events, nudges, edges, town_events, hooks pointing at it).

    The reopening is a direct write without `status_changed` events, as upstream's. Returns
    False for an unknown agent when `missing_ok`, else raises NotFound. `rig_id`, when given,
    must be the agent's rig.
    """
    try:
        _require(conn, agent_id, rig_id)
    except NotFound:
        if missing_ok:
            return False
        raise
    now = now_iso()
    conn.execute(
        "UPDATE beads SET assignee_agent_bead_id = NULL, updated_at = ?"
        " WHERE assignee_agent_bead_id = ? AND status IN ('closed', 'failed')",
        (now, agent_id),
    )
    conn.execute(
        "UPDATE beads SET assignee_agent_bead_id = NULL, status = 'open', updated_at = ?"
        " WHERE assignee_agent_bead_id = ? AND status NOT IN ('closed', 'failed')",
        (now, agent_id),
    )
    delete_beads(conn, [agent_id])
    return True


def reset_dispatch_attempts(
    conn: apsw.Connection, agent_id: str, *, rig_id: str | None = None
) -> None:
    """Zero the agent's dispatch counter and its hooked bead's dispatch state (counter and last
    attempt time), so neither the cooldown nor the max-attempts breaker holds the next dispatch.
    The hook itself stays."""
    agent = _require(conn, agent_id, rig_id)
    conn.execute("UPDATE agent_metadata SET dispatch_attempts = 0 WHERE bead_id = ?", (agent_id,))
    if agent.current_hook_bead_id is not None:
        conn.execute(
            "UPDATE beads SET dispatch_attempts = 0, last_dispatch_attempt_at = NULL"
            " WHERE bead_id = ?",
            (agent.current_hook_bead_id,),
        )


def force_reset_agent(conn: apsw.Connection, agent_id: str) -> None:
    """Admin force reset, as upstream's unhook + set-idle pair: a hooked agent drops its hook and
    checkpoint (an `unhooked` event on the bead it held); every agent ends `idle` with its
    stall mark cleared. The hooked bead itself (status, assignee) is left to the reconciler,
    and the container process id is runtime state this service does not manage."""
    agent = _require(conn, agent_id, None)
    hook = agent.current_hook_bead_id
    if hook is not None:
        conn.execute(
            "UPDATE agent_metadata SET current_hook_bead_id = NULL, checkpoint = NULL"
            " WHERE bead_id = ?",
            (agent_id,),
        )
        record_bead_event(
            conn, bead_id=hook, event_type="unhooked", agent_id=agent_id, old_value=agent_id
        )
    conn.execute(
        "UPDATE agent_metadata SET status = 'idle', stalled_at = NULL WHERE bead_id = ?",
        (agent_id,),
    )


def raw_metadata_rows(conn: apsw.Connection) -> list[dict[str, Any]]:
    """debugAgentMetadata's dump: the dispatcher's view of every agent_metadata row, as upstream
    selects it (no output schema upstream, so plain column-named objects)."""
    # Columns named here: a cursor with no rows has no description to read them from.
    columns = ("bead_id", "role", "status", "current_hook_bead_id", "dispatch_attempts", "last_activity_at")
    cursor = conn.execute(f"SELECT {', '.join(columns)} FROM agent_metadata ORDER BY rowid")
    return [dict(zip(columns, row, strict=True)) for row in cursor]
