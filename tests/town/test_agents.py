from __future__ import annotations

import apsw
import msgspec
import pytest

from tests.town.conftest import count
from town.agents import (
    delete_agent,
    force_reset_agent,
    get_agent,
    list_agents,
    raw_metadata_rows,
    reset_dispatch_attempts,
)
from town.bead_events import record_bead_event
from town.beads import create_bead, get_bead, update_bead_status
from town.clock import new_id
from town.errors import NotFound

AGENT_KEYS = {
    "id",
    "rig_id",
    "role",
    "name",
    "identity",
    "status",
    "current_hook_bead_id",
    "dispatch_attempts",
    "last_activity_at",
    "checkpoint",
    "created_at",
    "agent_status_message",
    "agent_status_updated_at",
}


def add_agent(
    town: apsw.Connection,
    name: str = "Toast",
    *,
    role: str = "polecat",
    rig_id: str | None = "rig-1",
    status: str = "idle",
    hook: str | None = None,
    checkpoint: str | None = None,
    dispatch_attempts: int = 0,
    created_at: str = "2026-04-01T10:00:00.000Z",
    last_activity_at: str | None = None,
    stalled_at: str | None = None,
) -> str:
    """An agent bead and its agent_metadata row, written directly."""
    agent_id = new_id()
    town.execute(
        "INSERT INTO beads (bead_id, type, status, title, rig_id, created_by, created_at, updated_at)"
        " VALUES (?, 'agent', 'open', ?, ?, 'system', ?, ?)",
        (agent_id, name, rig_id, created_at, created_at),
    )
    town.execute(
        "INSERT INTO agent_metadata (bead_id, role, identity, status, current_hook_bead_id,"
        " dispatch_attempts, checkpoint, last_activity_at, agent_status_message,"
        " agent_status_updated_at, stalled_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            agent_id,
            role,
            f"{name}-{role}-{agent_id[:8]}",
            status,
            hook,
            dispatch_attempts,
            checkpoint,
            last_activity_at,
            "reading files" if status == "working" else None,
            "2026-04-01T10:05:00.000Z" if status == "working" else None,
            stalled_at,
        ),
    )
    return agent_id


def assign(town: apsw.Connection, bead_id: str, agent_id: str) -> None:
    town.execute(
        "UPDATE beads SET assignee_agent_bead_id = ? WHERE bead_id = ?", (agent_id, bead_id)
    )


def wire(value: object) -> dict[str, object]:
    decoded = msgspec.json.decode(msgspec.json.encode(value))
    assert isinstance(decoded, dict)
    return decoded


def test_list_agents_maps_bead_and_metadata_columns(town: apsw.Connection) -> None:
    hooked = create_bead(town, type="issue", title="Fix login", rig_id="rig-1")
    agent_id = add_agent(
        town,
        "Maple",
        status="working",
        hook=hooked.bead_id,
        checkpoint='{"step":3,"files":["a.py"]}',
        dispatch_attempts=2,
        last_activity_at="2026-04-01T10:06:00.000Z",
    )
    [agent] = list_agents(town, rig_id="rig-1")
    assert wire(agent) == {
        "id": agent_id,
        "rig_id": "rig-1",
        "role": "polecat",
        "name": "Maple",
        "identity": f"Maple-polecat-{agent_id[:8]}",
        "status": "working",
        "current_hook_bead_id": hooked.bead_id,
        "dispatch_attempts": 2,
        "last_activity_at": "2026-04-01T10:06:00.000Z",
        "checkpoint": {"step": 3, "files": ["a.py"]},
        "created_at": "2026-04-01T10:00:00.000Z",
        "agent_status_message": "reading files",
        "agent_status_updated_at": "2026-04-01T10:05:00.000Z",
    }
    assert list(wire(agent)) == [
        "id", "rig_id", "role", "name", "identity", "status", "current_hook_bead_id",
        "dispatch_attempts", "last_activity_at", "checkpoint", "created_at",
        "agent_status_message", "agent_status_updated_at",
    ]  # fmt: skip


def test_checkpoint_key_is_absent_when_null_or_unreadable(town: apsw.Connection) -> None:
    plain = add_agent(town, "Toast")
    damaged = add_agent(town, "Birch", checkpoint="{not json")
    json_null = add_agent(town, "Sage", checkpoint="null")
    assert set(wire(get_agent(town, plain))) == AGENT_KEYS - {"checkpoint"}
    assert set(wire(get_agent(town, damaged))) == AGENT_KEYS - {"checkpoint"}
    # A stored JSON null is a value, not a missing checkpoint.
    assert wire(get_agent(town, json_null))["checkpoint"] is None


def test_list_agents_filters_by_rig_and_orders_oldest_first(town: apsw.Connection) -> None:
    late = add_agent(town, "Late", created_at="2026-04-03T00:00:00.000Z")
    early = add_agent(town, "Early", created_at="2026-04-02T00:00:00.000Z")
    other = add_agent(town, "Other", rig_id="rig-2")
    mayor = add_agent(town, "mayor", role="mayor", rig_id=None)
    assert [a.id for a in list_agents(town, rig_id="rig-1")] == [early, late]
    assert [a.id for a in list_agents(town, rig_id="rig-2")] == [other]
    assert {a.id for a in list_agents(town, rig_id=None)} == {early, late, other, mayor}
    assert list_agents(town, rig_id="rig-none") == []


def test_non_agent_bead_is_not_an_agent(town: apsw.Connection) -> None:
    issue = create_bead(town, type="issue", title="Not an agent", rig_id="rig-1")
    assert get_agent(town, issue.bead_id) is None
    assert get_agent(town, "missing") is None
    with pytest.raises(NotFound, match=issue.bead_id):
        delete_agent(town, issue.bead_id)
    assert get_bead(town, issue.bead_id) == issue


def test_delete_agent_reopens_live_beads_and_keeps_terminal_ones(town: apsw.Connection) -> None:
    agent_id = add_agent(town, "Toast")
    other_agent = add_agent(town, "Maple")
    working = create_bead(town, type="issue", title="working", rig_id="rig-1")
    reviewing = create_bead(town, type="merge_request", title="review", rig_id="rig-1")
    done = create_bead(town, type="issue", title="done", rig_id="rig-1")
    theirs = create_bead(town, type="issue", title="theirs", rig_id="rig-1")
    for bead, status in ((working, "in_progress"), (reviewing, "in_review"), (done, "closed")):
        assign(town, bead.bead_id, agent_id)
        update_bead_status(town, bead.bead_id, status, actor=agent_id)  # type: ignore[arg-type]
    assign(town, theirs.bead_id, other_agent)
    update_bead_status(town, theirs.bead_id, "in_progress", actor=other_agent)
    town.execute("UPDATE agent_metadata SET current_hook_bead_id = ? WHERE bead_id = ?",
                 (working.bead_id, agent_id))  # fmt: skip
    record_bead_event(town, bead_id=agent_id, event_type="agent_spawned", agent_id=agent_id)
    events_before = count(town, "SELECT count(*) FROM bead_events WHERE bead_id != ?", agent_id)

    assert delete_agent(town, agent_id, rig_id="rig-1") is True

    for bead in (working, reviewing):
        after = get_bead(town, bead.bead_id)
        assert after is not None
        assert (after.status, after.assignee_agent_bead_id) == ("open", None)
    closed = get_bead(town, done.bead_id)
    assert closed is not None and (closed.status, closed.assignee_agent_bead_id) == ("closed", None)
    untouched = get_bead(town, theirs.bead_id)
    assert untouched is not None
    assert (untouched.status, untouched.assignee_agent_bead_id) == ("in_progress", other_agent)
    assert get_agent(town, agent_id) is None
    assert count(town, "SELECT count(*) FROM beads WHERE bead_id = ?", agent_id) == 0
    assert count(town, "SELECT count(*) FROM agent_metadata WHERE bead_id = ?", agent_id) == 0
    assert count(town, "SELECT count(*) FROM bead_events WHERE bead_id = ?", agent_id) == 0
    # The reopening is a direct write, as upstream's: no status_changed events are added.
    assert count(town, "SELECT count(*) FROM bead_events") == events_before
    assert [a.id for a in list_agents(town)] == [other_agent]


def test_delete_unknown_or_foreign_agent(town: apsw.Connection) -> None:
    agent_id = add_agent(town, "Toast", rig_id="rig-2")
    with pytest.raises(NotFound, match="missing-agent"):
        delete_agent(town, "missing-agent")
    assert delete_agent(town, "missing-agent", missing_ok=True) is False
    with pytest.raises(NotFound, match="rig-1"):
        delete_agent(town, agent_id, rig_id="rig-1")
    assert get_agent(town, agent_id) is not None


def test_reset_dispatch_attempts_clears_agent_and_hooked_bead(town: apsw.Connection) -> None:
    hooked = create_bead(town, type="issue", title="hooked", rig_id="rig-1")
    elsewhere = create_bead(town, type="issue", title="elsewhere", rig_id="rig-1")
    town.execute(
        "UPDATE beads SET dispatch_attempts = 4, last_dispatch_attempt_at = '2026-04-01T00:00:00.000Z'"
    )
    agent_id = add_agent(town, "Toast", hook=hooked.bead_id, dispatch_attempts=3)

    reset_dispatch_attempts(town, agent_id, rig_id="rig-1")

    agent = get_agent(town, agent_id)
    assert agent is not None
    assert (agent.dispatch_attempts, agent.current_hook_bead_id) == (0, hooked.bead_id)
    dispatch = "SELECT dispatch_attempts, last_dispatch_attempt_at FROM beads WHERE bead_id = ?"
    assert town.execute(dispatch, (hooked.bead_id,)).fetchone() == (0, None)
    assert town.execute(dispatch, (elsewhere.bead_id,)).fetchone() == (4, "2026-04-01T00:00:00.000Z")


def test_reset_dispatch_attempts_refuses_unknown_or_foreign_agent(town: apsw.Connection) -> None:
    agent_id = add_agent(town, "Toast", rig_id="rig-2", dispatch_attempts=3)
    with pytest.raises(NotFound):
        reset_dispatch_attempts(town, "missing-agent")
    with pytest.raises(NotFound):
        reset_dispatch_attempts(town, agent_id, rig_id="rig-1")
    agent = get_agent(town, agent_id)
    assert agent is not None and agent.dispatch_attempts == 3


def test_force_reset_unhooks_and_idles_a_stalled_agent(town: apsw.Connection) -> None:
    hooked = create_bead(town, type="issue", title="stuck", rig_id="rig-1")
    update_bead_status(town, hooked.bead_id, "in_progress", actor="system")
    agent_id = add_agent(
        town,
        "Toast",
        status="stalled",
        hook=hooked.bead_id,
        checkpoint='{"step":2}',
        stalled_at="2026-04-01T11:00:00.000Z",
    )

    force_reset_agent(town, agent_id)

    row = town.execute(
        "SELECT status, current_hook_bead_id, checkpoint, stalled_at FROM agent_metadata"
        " WHERE bead_id = ?",
        (agent_id,),
    ).fetchone()
    assert row == ("idle", None, None, None)
    last = town.execute(
        "SELECT event_type, agent_id, old_value FROM bead_events WHERE bead_id = ?"
        " ORDER BY rowid DESC LIMIT 1",
        (hooked.bead_id,),
    ).fetchone()
    assert last == ("unhooked", agent_id, agent_id)
    # The bead is left to the reconciler, as upstream's admin reset does.
    bead = get_bead(town, hooked.bead_id)
    assert bead is not None and bead.status == "in_progress"


def test_force_reset_of_unhooked_agent_only_sets_idle(town: apsw.Connection) -> None:
    agent_id = add_agent(town, "Toast", status="dead", checkpoint='{"step":1}')
    events_before = count(town, "SELECT count(*) FROM bead_events")
    force_reset_agent(town, agent_id)
    agent = get_agent(town, agent_id)
    assert agent is not None and agent.status == "idle" and agent.checkpoint == {"step": 1}
    assert count(town, "SELECT count(*) FROM bead_events") == events_before
    with pytest.raises(NotFound, match="missing-agent"):
        force_reset_agent(town, "missing-agent")


def test_raw_metadata_rows_dump_dispatch_columns(town: apsw.Connection) -> None:
    agent_id = add_agent(town, "Toast", status="working", dispatch_attempts=2, last_activity_at="t1")
    assert raw_metadata_rows(town) == [
        {
            "bead_id": agent_id,
            "role": "polecat",
            "status": "working",
            "current_hook_bead_id": None,
            "dispatch_attempts": 2,
            "last_activity_at": "t1",
        }
    ]
