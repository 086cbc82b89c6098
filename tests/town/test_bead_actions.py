from __future__ import annotations

import apsw
import msgspec
import pytest

from tests.town.conftest import count
from town import bead_actions
from town.bead_actions import (
    delete_beads_by_status,
    force_close_bead,
    force_fail_bead,
    start_held_bead,
)
from town.beads import add_dependency, create_bead, get_bead, update_bead_status
from town.errors import BadRequest, NotFound


def _events(town: apsw.Connection, bead_id: str) -> list[tuple[str, str | None, str | None, str | None, str]]:
    rows = town.execute(
        "SELECT event_type, agent_id, old_value, new_value, metadata FROM bead_events"
        " WHERE bead_id = ? AND event_type != 'created' ORDER BY rowid",
        (bead_id,),
    )
    return [(str(r[0]), r[1], r[2], r[3], str(r[4])) for r in rows]


def _town_events(town: apsw.Connection) -> list[tuple[str, str | None, str]]:
    rows = town.execute("SELECT event_type, bead_id, payload FROM town_events ORDER BY rowid")
    return [(str(r[0]), r[1], str(r[2])) for r in rows]


# ── start_held_bead ──────────────────────────────────────────────────────────


def test_start_held_bead_drops_only_the_held_label(town: apsw.Connection) -> None:
    bead = create_bead(town, type="issue", title="t", rig_id="r1", labels=["gt:held", "ui", "gt:held"])
    started = start_held_bead(town, bead.bead_id, "r1")
    assert started.labels == ["ui"] and started.status == "open"
    assert started == get_bead(town, bead.bead_id)
    assert started.updated_at >= bead.updated_at
    assert _events(town, bead.bead_id) == [("fields_updated", "system", None, "labels", "{}")]
    assert _town_events(town) == []


def test_start_held_bead_on_unheld_bead_still_rewrites_labels(town: apsw.Connection) -> None:
    bead = create_bead(town, type="issue", title="t", rig_id="r1", labels=["ui"])
    assert start_held_bead(town, bead.bead_id, "r1").labels == ["ui"]
    assert [e[0] for e in _events(town, bead.bead_id)] == ["fields_updated"]


def test_start_held_bead_rejects_missing_and_other_rig(town: apsw.Connection) -> None:
    bead = create_bead(town, type="issue", title="t", rig_id="r1", labels=["gt:held"])
    with pytest.raises(NotFound, match="missing"):
        start_held_bead(town, "missing", "r1")
    with pytest.raises(NotFound, match="r2"):
        start_held_bead(town, bead.bead_id, "r2")
    assert get_bead(town, bead.bead_id) == bead
    assert _events(town, bead.bead_id) == []


# ── delete_beads_by_status ───────────────────────────────────────────────────


def test_delete_beads_by_status_filters_and_counts_descendants(town: apsw.Connection) -> None:
    closed_r1 = create_bead(town, type="issue", title="a", rig_id="r1")
    child = create_bead(town, type="issue", title="child", rig_id="r1", parent_bead_id=closed_r1.bead_id)
    closed_mr = create_bead(town, type="merge_request", title="mr", rig_id="r1")
    closed_r2 = create_bead(town, type="issue", title="b", rig_id="r2")
    open_r1 = create_bead(town, type="issue", title="open", rig_id="r1")
    for bead in (closed_r1, closed_mr, closed_r2):
        update_bead_status(town, bead.bead_id, "closed", actor=None)
    add_dependency(town, open_r1.bead_id, closed_r1.bead_id)

    # The open child goes with its closed parent and counts, as upstream's cascade counts.
    assert delete_beads_by_status(town, "closed", "issue", "r1") == 2
    assert get_bead(town, child.bead_id) is None
    assert get_bead(town, closed_mr.bead_id) is not None
    assert get_bead(town, closed_r2.bead_id) is not None
    assert count(town, "SELECT count(*) FROM bead_dependencies") == 0
    assert delete_beads_by_status(town, "closed") == 2
    assert [b[0] for b in town.execute("SELECT bead_id FROM beads")] == [open_r1.bead_id]
    assert delete_beads_by_status(town, "failed") == 0


def test_delete_beads_by_status_works_in_batches(
    town: apsw.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bead_actions, "DELETE_BATCH", 3)
    parents = [create_bead(town, type="issue", title=f"p{i}") for i in range(5)]
    for parent in parents:
        update_bead_status(town, parent.bead_id, "failed", actor=None)
    # A failed child of a failed parent: deleted with the parent, counted once.
    child = create_bead(town, type="issue", title="c", parent_bead_id=parents[0].bead_id)
    update_bead_status(town, child.bead_id, "failed", actor=None)
    keep = create_bead(town, type="issue", title="keep")
    assert delete_beads_by_status(town, "failed") == 6
    assert [b[0] for b in town.execute("SELECT bead_id FROM beads")] == [keep.bead_id]
    assert count(town, "SELECT count(*) FROM bead_events WHERE bead_id != ?", keep.bead_id) == 0


def test_delete_beads_by_status_rejects_unknown_status_or_type(town: apsw.Connection) -> None:
    with pytest.raises(BadRequest):
        delete_beads_by_status(town, "done")
    with pytest.raises(BadRequest):
        delete_beads_by_status(town, "open", "task")


# ── force_close_bead / force_fail_bead ───────────────────────────────────────


def test_force_close_bead_closes_and_queues_bead_cancelled(town: apsw.Connection) -> None:
    bead = create_bead(town, type="issue", title="t")
    closed = force_close_bead(town, bead.bead_id)
    assert closed.status == "closed" and closed.closed_at is not None
    assert closed == get_bead(town, bead.bead_id)
    assert _events(town, bead.bead_id) == [("status_changed", "admin", "open", "closed", "{}")]
    assert _town_events(town) == [("bead_cancelled", bead.bead_id, '{"cancel_status":"closed"}')]


def test_force_fail_bead_records_admin_failure_reason(town: apsw.Connection) -> None:
    bead = create_bead(town, type="merge_request", title="t")
    failed = force_fail_bead(town, bead.bead_id, actor="admin-7")
    assert (failed.status, failed.closed_at) == ("failed", None)
    [event] = _events(town, bead.bead_id)
    assert event[:4] == ("status_changed", "admin-7", "open", "failed")
    assert msgspec.json.decode(event[4]) == {
        "failure_reason": {
            "code": "admin_force_fail",
            "message": "Manually failed by admin",
            "source": "admin",
        }
    }
    assert _town_events(town) == [("bead_cancelled", bead.bead_id, '{"cancel_status":"failed"}')]


def test_force_actions_respect_the_terminal_state_guard(town: apsw.Connection) -> None:
    bead = create_bead(town, type="issue", title="t")
    failed = force_fail_bead(town, bead.bead_id)
    before = _events(town, bead.bead_id)
    assert force_close_bead(town, bead.bead_id) == failed
    assert force_fail_bead(town, bead.bead_id) == failed
    assert _events(town, bead.bead_id) == before
    # Upstream queues the cancellation for every request, refused or not.
    assert [e[2] for e in _town_events(town)] == [
        '{"cancel_status":"failed"}',
        '{"cancel_status":"closed"}',
        '{"cancel_status":"failed"}',
    ]


def test_force_actions_on_missing_bead_raise_and_write_nothing(town: apsw.Connection) -> None:
    with pytest.raises(NotFound, match="missing"):
        force_close_bead(town, "missing")
    with pytest.raises(NotFound, match="missing"):
        force_fail_bead(town, "missing")
    assert _town_events(town) == []
