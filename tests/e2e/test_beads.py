"""Beads, events and convoys through the real server (model.md §3), checked in SQLite."""

from __future__ import annotations

import uuid

import apsw
import pytest

from tests.server import RunningServer
from tests.trpc import error_of, mutate, query


@pytest.fixture
def town(server: RunningServer):  # type: ignore[no-untyped-def]
    client = server.client(server.token(f"bob-{uuid.uuid4().hex[:6]}"))
    town_id = mutate(client, "createTown", {"name": "Beads"})["id"]
    rig = mutate(client, "createRig", {"townId": town_id, "name": "core", "gitUrl": "https://github.com/acme/core.git"})
    return client, town_id, rig["id"], server.data_dir / "TownDO" / f"{town_id}.sqlite3"


def db(path):  # type: ignore[no-untyped-def]
    return apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)


def test_create_bead_is_held_unless_started(town) -> None:  # type: ignore[no-untyped-def]
    client, _, rig, _ = town
    held = mutate(client, "createBead", {"rigId": rig, "title": "Fix login", "body": "details", "labels": ["ui"]})
    assert (held["type"], held["status"], held["labels"], held["metadata"]) == ("issue", "open", ["ui", "gt:held"], {})
    assert "dispatch_attempts" not in held and "last_dispatch_attempt_at" not in held
    started = mutate(client, "createBead", {"rigId": rig, "title": "Go", "startImmediately": True})
    assert started["labels"] == []
    events = query(client, "getBeadEvents", {"rigId": rig, "beadId": held["bead_id"]})
    assert [(e["event_type"], e["new_value"]) for e in events] == [("created", "open")]


def test_terminal_bead_status_change_is_ignored(town) -> None:  # type: ignore[no-untyped-def]
    client, _, rig, path = town
    bead = mutate(client, "createBead", {"rigId": rig, "title": "t"})["bead_id"]
    closed = mutate(client, "updateBead", {"rigId": rig, "beadId": bead, "status": "closed"})
    assert closed["status"] == "closed" and closed["closed_at"] is not None
    reopened = mutate(client, "updateBead", {"rigId": rig, "beadId": bead, "status": "open"})
    assert reopened == closed
    retitled = mutate(client, "updateBead", {"rigId": rig, "beadId": bead, "title": "renamed"})
    assert (retitled["title"], retitled["status"]) == ("renamed", "closed")
    with db(path) as conn:
        kinds = [r[0] for r in conn.execute("SELECT event_type FROM bead_events WHERE bead_id = ? ORDER BY created_at, rowid", (bead,))]
    assert kinds == ["created", "status_changed", "fields_updated"]


def test_update_needs_a_field_and_the_bead_must_be_in_the_rig(town, server: RunningServer) -> None:  # type: ignore[no-untyped-def]
    client, town_id, rig, _ = town
    bead = mutate(client, "createBead", {"rigId": rig, "title": "t"})["bead_id"]
    assert error_of(mutate, client, "updateBead", {"rigId": rig, "beadId": bead}).code == "BAD_REQUEST"
    other = mutate(client, "createRig", {"townId": town_id, "name": "other", "gitUrl": "https://github.com/acme/o.git"})["id"]
    assert error_of(mutate, client, "updateBead", {"rigId": other, "beadId": bead, "title": "x"}).code == "NOT_FOUND"
    err = error_of(mutate, client, "updateBead", {"rigId": rig, "beadId": bead, "status": "done"})
    assert err.code == "BAD_REQUEST" and "$.status" in err.message


def test_delete_cascades_to_children_edges_and_events(town) -> None:  # type: ignore[no-untyped-def]
    client, _, rig, path = town
    make = lambda title: mutate(client, "createBead", {"rigId": rig, "title": title})["bead_id"]
    parent, child, grandchild, blocker, keeper = (make(t) for t in ("parent", "child", "grandchild", "blocker", "keeper"))
    mutate(client, "updateBead", {"rigId": rig, "beadId": child, "parent_bead_id": parent})
    mutate(client, "updateBead", {"rigId": rig, "beadId": grandchild, "parent_bead_id": child})
    mutate(client, "updateBead", {"rigId": rig, "beadId": parent, "depends_on": [blocker]})
    mutate(client, "updateBead", {"rigId": rig, "beadId": keeper, "depends_on": [parent]})
    result = mutate(client, "deleteBead", {"rigId": rig, "beadId": parent})
    assert result == {"deleted": 3}
    with db(path) as conn:
        left = {r[0] for r in conn.execute("SELECT bead_id FROM beads")}
        assert left == {blocker, keeper}
        assert conn.execute("SELECT count(*) FROM bead_dependencies").fetchone()[0] == 0
        gone = (parent, child, grandchild)
        assert conn.execute(f"SELECT count(*) FROM bead_events WHERE bead_id IN ({','.join('?' * 3)})", gone).fetchone()[0] == 0
    assert mutate(client, "deleteBead", {"rigId": rig, "beadId": [blocker, keeper]}) == {"deleted": 2}


def test_list_beads_filters_pages_and_town_wide(town) -> None:  # type: ignore[no-untyped-def]
    client, town_id, rig, _ = town
    ids = [mutate(client, "createBead", {"rigId": rig, "title": f"b{i}"})["bead_id"] for i in range(5)]
    mutate(client, "updateBead", {"rigId": rig, "beadId": ids[0], "status": "in_progress"})
    newest_first = [b["bead_id"] for b in query(client, "listBeads", {"rigId": rig})]
    assert newest_first == ids[::-1]
    assert [b["bead_id"] for b in query(client, "listBeads", {"rigId": rig, "limit": 2, "offset": 1})] == ids[::-1][1:3]
    assert [b["bead_id"] for b in query(client, "listBeads", {"rigId": rig, "status": "in_progress"})] == [ids[0]]
    assert len(query(client, "listBeads", {"townId": town_id, "type": "issue"})) == 5
    assert error_of(query, client, "listBeads", {"rigId": rig, "limit": 501}).code == "BAD_REQUEST"
    assert error_of(query, client, "listBeads", {}).code == "BAD_REQUEST"
    town_events = query(client, "getTownEvents", {"townId": town_id, "limit": 3})
    assert len(town_events) == 3
    assert town_events[0]["event_type"] == "status_changed"


def test_convoys_of_a_town(demo_server: RunningServer) -> None:
    """The demo history has landed and active convoys; listConvoys shows the active ones only."""
    client = demo_server.client(demo_server.dev_token())
    town_id = next(t["id"] for t in query(client, "listTowns") if t["name"] == "Demo Town")
    convoys = query(client, "listConvoys", {"townId": town_id})
    assert convoys and all(c["status"] == "active" for c in convoys)
    detail = query(client, "getConvoy", {"townId": town_id, "convoyId": convoys[0]["id"]})
    assert detail["id"] == convoys[0]["id"] and isinstance(detail["beads"], list)
    assert query(client, "getConvoy", {"townId": town_id, "convoyId": str(uuid.uuid4())}) is None
