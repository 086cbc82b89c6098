from __future__ import annotations

import logging

import apsw
import pytest

from tests.town.conftest import count
from town.beads import (
    BeadUpdate,
    add_dependency,
    create_bead,
    delete_bead,
    get_bead,
    list_bead_events,
    list_beads,
    update_bead,
    update_bead_status,
)
from town.errors import BadRequest, NotFound


def events_of(town: apsw.Connection, bead_id: str) -> list[tuple[str, str | None, str | None]]:
    rows = town.execute(
        "SELECT event_type, old_value, new_value FROM bead_events WHERE bead_id = ? ORDER BY rowid",
        (bead_id,),
    )
    return [(str(r[0]), r[1], r[2]) for r in rows]


def test_create_bead_stores_row_and_created_event(town: apsw.Connection) -> None:
    bead = create_bead(
        town,
        type="issue",
        title="Fix login",
        body="details",
        rig_id="r1",
        labels=["gt:held"],
        metadata={"k": 1},
        priority="high",
        created_by="user-1",
    )
    assert get_bead(town, bead.bead_id) == bead
    assert bead.status == "open" and bead.closed_at is None
    assert bead.created_at.endswith("Z") and bead.created_at == bead.updated_at
    event = list_bead_events(town, bead_id=bead.bead_id)[0]
    assert (event.event_type, event.new_value, event.agent_id) == ("created", "open", "user-1")
    assert event.metadata == {"type": "issue", "title": "Fix login"}
    assert town.execute("SELECT labels, metadata FROM beads").fetchone() == (
        '["gt:held"]',
        '{"k":1}',
    )


def test_create_bead_rejects_unknown_type_and_missing_parent(town: apsw.Connection) -> None:
    with pytest.raises(BadRequest):
        create_bead(town, type="bogus", title="x")  # type: ignore[arg-type]
    with pytest.raises(NotFound, match="missing-parent"):
        create_bead(town, type="issue", title="x", parent_bead_id="missing-parent")


def test_terminal_bead_status_change_is_ignored(
    town: apsw.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    bead = create_bead(town, type="issue", title="t")
    closed = update_bead(town, bead.bead_id, BeadUpdate(status="closed"), actor="u")
    before = events_of(town, bead.bead_id)
    with caplog.at_level(logging.WARNING):
        again = update_bead(town, bead.bead_id, BeadUpdate(status="open"), actor="u")
    assert again == closed and get_bead(town, bead.bead_id) == closed
    assert events_of(town, bead.bead_id) == before
    assert bead.bead_id in caplog.text


def test_failed_bead_cannot_be_closed(town: apsw.Connection) -> None:
    bead = create_bead(town, type="merge_request", title="t")
    failed = update_bead_status(town, bead.bead_id, "failed", actor="refinery")
    assert failed.status == "failed" and failed.closed_at is None
    result = update_bead_status(town, bead.bead_id, "closed", actor="refinery")
    assert result == failed
    assert get_bead(town, bead.bead_id) == failed
    assert [e[0] for e in events_of(town, bead.bead_id)] == ["created", "status_changed"]


def test_same_status_is_a_no_op(town: apsw.Connection) -> None:
    bead = create_bead(town, type="issue", title="t")
    assert update_bead(town, bead.bead_id, BeadUpdate(status="open"), actor="u") == bead
    assert events_of(town, bead.bead_id) == [("created", None, "open")]


def test_closing_sets_closed_at_and_writes_status_changed(town: apsw.Connection) -> None:
    bead = create_bead(town, type="issue", title="t")
    closed = update_bead(town, bead.bead_id, BeadUpdate(status="closed"), actor="agent-7")
    assert closed.status == "closed" and closed.closed_at is not None
    assert closed.updated_at == closed.closed_at
    assert get_bead(town, bead.bead_id) == closed
    event = list_bead_events(town, bead_id=bead.bead_id)
    assert ("status_changed", "open", "closed", "agent-7") in [
        (e.event_type, e.old_value, e.new_value, e.agent_id) for e in event
    ]


def test_non_status_fields_of_a_closed_bead_stay_editable(town: apsw.Connection) -> None:
    bead = create_bead(town, type="issue", title="old", body="b")
    update_bead(town, bead.bead_id, BeadUpdate(status="closed"), actor="u")
    edited = update_bead(
        town,
        bead.bead_id,
        BeadUpdate(title="new", body=None, labels=["x"], metadata={"a": 1}, priority="low"),
        actor="u",
    )
    assert (edited.title, edited.body, edited.labels, edited.metadata, edited.priority) == (
        "new",
        None,
        ["x"],
        {"a": 1},
        "low",
    )
    assert edited.status == "closed"
    assert events_of(town, bead.bead_id)[-1] == (
        "fields_updated",
        None,
        "title,body,priority,labels,metadata",
    )


def test_status_and_fields_in_one_update_write_both_events(town: apsw.Connection) -> None:
    bead = create_bead(town, type="issue", title="t")
    updated = update_bead(
        town, bead.bead_id, BeadUpdate(title="u", status="in_progress"), actor="a"
    )
    assert (updated.title, updated.status) == ("u", "in_progress")
    assert [e[0] for e in events_of(town, bead.bead_id)] == [
        "created",
        "fields_updated",
        "status_changed",
    ]


def test_update_missing_bead_is_not_found(town: apsw.Connection) -> None:
    with pytest.raises(NotFound, match="nope"):
        update_bead(town, "nope", BeadUpdate(title="x"), actor=None)


def test_parent_must_exist_and_must_not_create_a_cycle(town: apsw.Connection) -> None:
    a = create_bead(town, type="molecule", title="a")
    b = create_bead(town, type="issue", title="b", parent_bead_id=a.bead_id)
    c = create_bead(town, type="issue", title="c", parent_bead_id=b.bead_id)
    with pytest.raises(NotFound):
        update_bead(town, a.bead_id, BeadUpdate(parent_bead_id="ghost"), actor=None)
    with pytest.raises(BadRequest, match="cycle"):
        update_bead(town, a.bead_id, BeadUpdate(parent_bead_id=c.bead_id), actor=None)
    with pytest.raises(BadRequest):
        update_bead(town, a.bead_id, BeadUpdate(parent_bead_id=a.bead_id), actor=None)
    moved = update_bead(town, c.bead_id, BeadUpdate(parent_bead_id=a.bead_id), actor=None)
    assert moved.parent_bead_id == a.bead_id
    detached = update_bead(town, c.bead_id, BeadUpdate(parent_bead_id=None), actor=None)
    assert detached.parent_bead_id is None


def test_depends_on_replaces_blocks_edges_only(town: apsw.Connection) -> None:
    bead, x, y, convoy = (create_bead(town, type="issue", title=t) for t in "bxyc")
    add_dependency(town, bead.bead_id, x.bead_id)
    add_dependency(town, bead.bead_id, convoy.bead_id, "tracks")
    update_bead(
        town, bead.bead_id, BeadUpdate(depends_on=[y.bead_id, bead.bead_id, y.bead_id]), actor=None
    )
    edges = set(town.execute("SELECT depends_on_bead_id, dependency_type FROM bead_dependencies"))
    assert edges == {(y.bead_id, "blocks"), (convoy.bead_id, "tracks")}
    with pytest.raises(NotFound, match="ghost"):
        update_bead(town, bead.bead_id, BeadUpdate(depends_on=["ghost"]), actor=None)


def test_add_dependency_keeps_one_edge_per_ordered_pair(town: apsw.Connection) -> None:
    a, b = create_bead(town, type="issue", title="a"), create_bead(town, type="issue", title="b")
    assert add_dependency(town, a.bead_id, b.bead_id) is True
    assert add_dependency(town, a.bead_id, b.bead_id, "tracks") is False
    assert add_dependency(town, b.bead_id, a.bead_id) is True
    assert count(town, "SELECT count(*) FROM bead_dependencies") == 2
    with pytest.raises(BadRequest):
        add_dependency(town, a.bead_id, a.bead_id)
    with pytest.raises(NotFound):
        add_dependency(town, a.bead_id, "ghost")


def test_delete_bead_cascades(town: apsw.Connection) -> None:
    root = create_bead(town, type="molecule", title="root")
    child = create_bead(town, type="issue", title="child", parent_bead_id=root.bead_id)
    grandchild = create_bead(town, type="issue", title="gc", parent_bead_id=child.bead_id)
    mr = create_bead(town, type="merge_request", title="mr", parent_bead_id=child.bead_id)
    agent = create_bead(town, type="agent", title="Toast")
    other = create_bead(town, type="issue", title="survivor")
    doomed = [root.bead_id, child.bead_id, grandchild.bead_id, mr.bead_id]
    town.execute("INSERT INTO review_metadata (bead_id, branch) VALUES (?, 'b')", (mr.bead_id,))
    town.execute(
        "INSERT INTO escalation_metadata (bead_id, severity) VALUES (?, 'low')", (child.bead_id,)
    )
    town.execute("INSERT INTO convoy_metadata (bead_id) VALUES (?)", (root.bead_id,))
    town.execute(
        "INSERT INTO agent_metadata (bead_id, role, identity, current_hook_bead_id)"
        " VALUES (?, 'polecat', 'id1', ?)",
        (agent.bead_id, grandchild.bead_id),
    )
    town.execute(
        "UPDATE beads SET assignee_agent_bead_id = ? WHERE bead_id = ?",
        (agent.bead_id, other.bead_id),
    )
    add_dependency(town, other.bead_id, child.bead_id)  # edge into the subtree
    add_dependency(town, grandchild.bead_id, other.bead_id)  # edge out of the subtree
    add_dependency(town, mr.bead_id, other.bead_id, "tracks")
    for i, (bead_id, agent_id) in enumerate(
        [
            (root.bead_id, None),
            (grandchild.bead_id, None),
            (other.bead_id, None),
            (None, agent.bead_id),
        ]
    ):
        town.execute(
            "INSERT INTO town_events (event_id, event_type, agent_id, bead_id, created_at)"
            " VALUES (?, 'bead_created', ?, ?, 'now')",
            (f"te{i}", agent_id, bead_id),
        )

    assert delete_bead(town, root.bead_id) == 4

    ids = ",".join("?" * len(doomed))
    assert count(town, f"SELECT count(*) FROM beads WHERE bead_id IN ({ids})", *doomed) == 0
    assert count(town, f"SELECT count(*) FROM bead_events WHERE bead_id IN ({ids})", *doomed) == 0
    assert count(town, "SELECT count(*) FROM bead_dependencies") == 0
    for table in ("review_metadata", "escalation_metadata", "convoy_metadata"):
        assert count(town, f"SELECT count(*) FROM {table}") == 0
    assert {r[0] for r in town.execute("SELECT event_id FROM town_events")} == {"te2", "te3"}
    assert town.execute("SELECT current_hook_bead_id FROM agent_metadata").fetchone()[0] is None
    assert get_bead(town, other.bead_id) is not None
    assert list_bead_events(town, bead_id=other.bead_id)

    # Deleting an agent bead takes its satellite row, nudges and reconciler events, and
    # unassigns the beads it held.
    town.execute(
        "INSERT INTO agent_nudges (nudge_id, agent_bead_id, message, created_at)"
        " VALUES ('n1', ?, 'hi', 'now')",
        (agent.bead_id,),
    )
    assert delete_bead(town, agent.bead_id) == 1
    assert count(town, "SELECT count(*) FROM agent_metadata") == 0
    assert count(town, "SELECT count(*) FROM agent_nudges") == 0
    assert {r[0] for r in town.execute("SELECT event_id FROM town_events")} == {"te2"}
    assert get_bead(town, other.bead_id).assignee_agent_bead_id is None  # type: ignore[union-attr]
    with pytest.raises(NotFound):
        delete_bead(town, agent.bead_id)


def test_delete_bead_with_foreign_keys_enforced(town: apsw.Connection) -> None:
    town.execute("PRAGMA foreign_keys = ON")
    root = create_bead(town, type="molecule", title="root")
    child = create_bead(town, type="issue", title="c", parent_bead_id=root.bead_id)
    add_dependency(town, child.bead_id, root.bead_id)
    with town:
        assert delete_bead(town, root.bead_id) == 2
    assert count(town, "SELECT count(*) FROM beads") == 0


def _with_times(town: apsw.Connection) -> list[str]:
    ids = []
    for i, (rig, status, type_) in enumerate(
        [
            ("r1", "open", "issue"),
            ("r2", "open", "issue"),
            ("r1", "closed", "message"),
            ("r1", "open", "issue"),
            ("r1", "open", "issue"),
        ]
    ):
        bead = create_bead(town, type=type_, title=f"b{i}", rig_id=rig)  # type: ignore[arg-type]
        town.execute(
            "UPDATE beads SET created_at = ?, status = ? WHERE bead_id = ?",
            (f"2026-01-0{i + 1}T00:00:00.000Z", status, bead.bead_id),
        )
        ids.append(bead.bead_id)
    return ids


def test_list_beads_filters_pages_and_orders_newest_first(town: apsw.Connection) -> None:
    ids = _with_times(town)
    assert [b.bead_id for b in list_beads(town)] == ids[::-1]
    assert [b.bead_id for b in list_beads(town, rig_id="r1")] == [ids[4], ids[3], ids[2], ids[0]]
    assert [b.bead_id for b in list_beads(town, rig_id="r1", status="open")] == [
        ids[4],
        ids[3],
        ids[0],
    ]
    assert [b.bead_id for b in list_beads(town, type="message")] == [ids[2]]
    assert [b.bead_id for b in list_beads(town, limit=2, offset=1)] == [ids[3], ids[2]]
    assert list_beads(town, limit=2, offset=10) == []
    with pytest.raises(BadRequest):
        list_beads(town, limit=0)


def test_list_beads_breaks_timestamp_ties_by_id(town: apsw.Connection) -> None:
    for i in range(3):
        create_bead(town, type="issue", title=str(i))
    town.execute("UPDATE beads SET created_at = '2026-01-01T00:00:00.000Z'")
    ids = [b.bead_id for b in list_beads(town)]
    assert ids == sorted(ids, reverse=True)


def test_list_bead_events_filters(town: apsw.Connection) -> None:
    ids = _with_times(town)
    town.execute(
        "UPDATE bead_events SET created_at ="
        " (SELECT created_at FROM beads WHERE beads.bead_id = bead_events.bead_id)"
    )
    update_bead(town, ids[1], BeadUpdate(status="in_progress"), actor="a")
    town.execute(
        "INSERT INTO bead_events (bead_event_id, bead_id, event_type, metadata, created_at)"
        " VALUES ('e-unknown', ?, 'some_future_type', 'not json', '2026-01-09T00:00:00.000Z')",
        (ids[0],),
    )
    all_events = list_bead_events(town)
    assert [e.created_at for e in all_events] == sorted(
        (e.created_at for e in all_events), reverse=True
    )
    assert len(all_events) == 7
    unknown = next(e for e in all_events if e.bead_event_id == "e-unknown")
    assert (unknown.event_type, unknown.metadata) == ("some_future_type", {})
    assert {e.bead_id for e in list_bead_events(town, rig_id="r2")} == {ids[1]}
    assert len(list_bead_events(town, rig_id="r2")) == 2
    assert [
        e.bead_id for e in list_bead_events(town, rig_id="r1", since="2026-01-03T00:00:00.000Z")
    ] == [
        ids[0],
        ids[4],
        ids[3],
    ]
    assert len(list_bead_events(town, limit=3)) == 3
    assert list_bead_events(town, bead_id=ids[1], rig_id="r1") == []
    assert list_bead_events(town, rig_id="no-such-rig") == []
