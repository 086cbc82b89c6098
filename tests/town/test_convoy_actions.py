from __future__ import annotations

import apsw
import pytest

from tests.town.conftest import count
from town.beads import add_dependency, create_bead, get_bead, update_bead_status
from town.convoys import (
    close_convoy,
    convoy_add_bead,
    convoy_remove_bead,
    get_convoy,
    start_convoy,
)
from town.dependencies import list_dependencies
from town.errors import BadRequest, NotFound


def _convoy(town: apsw.Connection, *, total: int = 0, staged: int = 0, **meta: object) -> str:
    convoy = create_bead(town, type="convoy", title="Ship it", created_by="u1")
    town.execute(
        "INSERT INTO convoy_metadata (bead_id, total_beads, closed_beads, staged, feature_branch)"
        " VALUES (?, ?, 0, ?, ?)",
        (convoy.bead_id, total, staged, meta.get("feature_branch")),
    )
    return convoy.bead_id


def _member(town: apsw.Connection, convoy_id: str, title: str) -> str:
    bead = create_bead(town, type="issue", title=title, rig_id="r1")
    convoy_add_bead(town, convoy_id, bead.bead_id, None)
    return bead.bead_id


def _agent(town: apsw.Connection, name: str, hook: str | None) -> str:
    agent = create_bead(town, type="agent", title=name, rig_id="r1")
    town.execute(
        "INSERT INTO agent_metadata (bead_id, role, identity, status, current_hook_bead_id,"
        " checkpoint) VALUES (?, 'polecat', ?, 'working', ?, '{\"step\":1}')",
        (agent.bead_id, f"{name}-id", hook),
    )
    if hook is not None:
        town.execute(
            "UPDATE beads SET assignee_agent_bead_id = ?, status = 'in_progress' WHERE bead_id = ?",
            (agent.bead_id, hook),
        )
    return agent.bead_id


def _events(town: apsw.Connection, bead_id: str) -> list[tuple[str, str | None, str | None, str | None]]:
    rows = town.execute(
        "SELECT event_type, agent_id, old_value, new_value FROM bead_events"
        " WHERE bead_id = ? AND event_type != 'created' ORDER BY rowid",
        (bead_id,),
    )
    return [(str(r[0]), r[1], r[2], r[3]) for r in rows]


def _meta(town: apsw.Connection, convoy_id: str) -> tuple[int, int, str | None, int]:
    row = town.execute(
        "SELECT total_beads, closed_beads, landed_at, staged FROM convoy_metadata WHERE bead_id = ?",
        (convoy_id,),
    ).fetchone()
    assert row is not None
    return (int(row[0]), int(row[1]), row[2], int(row[3]))


# ── close_convoy ─────────────────────────────────────────────────────────────


def test_close_convoy_force_closes_open_members_and_lands_the_convoy(town: apsw.Connection) -> None:
    convoy_id = _convoy(town)
    done = _member(town, convoy_id, "done")
    failed = _member(town, convoy_id, "failed")
    working = _member(town, convoy_id, "working")
    waiting = _member(town, convoy_id, "waiting")
    update_bead_status(town, done, "closed", actor="p1")
    update_bead_status(town, failed, "failed", actor="p1")
    agent = _agent(town, "Toast", working)
    outsider = create_bead(town, type="issue", title="not tracked").bead_id
    before_done, before_failed = _events(town, done), _events(town, failed)

    detail = close_convoy(town, convoy_id)

    assert detail is not None
    assert (detail.status, detail.total_beads, detail.closed_beads) == ("landed", 4, 4)
    assert detail.landed_at is not None
    assert {m.bead_id: m.status for m in detail.beads} == {
        done: "closed",
        failed: "failed",
        working: "closed",
        waiting: "closed",
    }
    convoy_bead = get_bead(town, convoy_id)
    assert convoy_bead is not None and convoy_bead.status == "closed"
    assert convoy_bead.closed_at == detail.landed_at
    # Members: guarded close by `system`; terminal ones untouched.
    assert _events(town, waiting) == [("status_changed", "system", "open", "closed")]
    assert _events(town, working) == [
        ("unhooked", agent, agent, None),
        ("status_changed", "system", "in_progress", "closed"),
    ]
    assert _events(town, done) == before_done and _events(town, failed) == before_failed
    # The convoy bead's own close is a direct write, as upstream: no bead event.
    assert _events(town, convoy_id) == []
    assert town.execute(
        "SELECT current_hook_bead_id, status, checkpoint FROM agent_metadata WHERE bead_id = ?",
        (agent,),
    ).fetchone() == (None, "idle", None)
    assert get_bead(town, outsider).status == "open"  # type: ignore[union-attr]
    assert count(town, "SELECT count(*) FROM town_events") == 0


def test_close_convoy_keeps_an_agent_that_moved_on(town: apsw.Connection) -> None:
    convoy_id = _convoy(town)
    member = _member(town, convoy_id, "m")
    other = create_bead(town, type="issue", title="other work").bead_id
    agent = _agent(town, "Toast", other)
    town.execute("UPDATE beads SET assignee_agent_bead_id = ? WHERE bead_id = ?", (agent, member))
    close_convoy(town, convoy_id)
    assert town.execute(
        "SELECT current_hook_bead_id, status FROM agent_metadata WHERE bead_id = ?", (agent,)
    ).fetchone() == (other, "working")
    assert _events(town, member) == [("status_changed", "system", "open", "closed")]


def test_close_convoy_on_landed_convoy_changes_nothing(town: apsw.Connection) -> None:
    convoy_id = _convoy(town)
    _member(town, convoy_id, "m")
    first = close_convoy(town, convoy_id)
    again = close_convoy(town, convoy_id)
    assert first == again


def test_close_convoy_leaves_a_failed_convoy_failed(town: apsw.Connection) -> None:
    convoy_id = _convoy(town)
    member = _member(town, convoy_id, "m")
    update_bead_status(town, convoy_id, "failed", actor="system")
    detail = close_convoy(town, convoy_id)
    assert detail is not None and detail.landed_at is None
    assert get_bead(town, convoy_id).status == "failed"  # type: ignore[union-attr]
    assert get_bead(town, member).status == "closed"  # type: ignore[union-attr]


def test_close_convoy_is_none_for_missing_or_non_convoy(town: apsw.Connection) -> None:
    issue = create_bead(town, type="issue", title="x").bead_id
    bare = create_bead(town, type="convoy", title="no metadata row").bead_id
    assert close_convoy(town, "missing") is None
    assert close_convoy(town, issue) is None
    assert close_convoy(town, bare) is None
    assert get_bead(town, bare).status == "open"  # type: ignore[union-attr]


# ── start_convoy ─────────────────────────────────────────────────────────────


def test_start_convoy_clears_staged_and_queues_reconciler_event(town: apsw.Connection) -> None:
    convoy_id = _convoy(town, staged=1)
    member = _member(town, convoy_id, "m")
    detail = start_convoy(town, convoy_id)
    assert detail.staged is False and [m.bead_id for m in detail.beads] == [member]
    assert _meta(town, convoy_id)[3] == 0
    assert town.execute(
        "SELECT event_type, agent_id, bead_id, payload, processed_at FROM town_events"
    ).fetchall() == [("convoy_started", None, None, f'{{"convoy_id":"{convoy_id}"}}', None)]
    assert get_bead(town, member).status == "open"  # type: ignore[union-attr]


def test_start_convoy_rejects_unstaged_missing_and_non_convoy(town: apsw.Connection) -> None:
    convoy_id = _convoy(town, staged=0)
    with pytest.raises(BadRequest, match="not staged"):
        start_convoy(town, convoy_id)
    with pytest.raises(NotFound):
        start_convoy(town, "missing")
    with pytest.raises(BadRequest, match="not a convoy"):
        start_convoy(town, create_bead(town, type="issue", title="x").bead_id)
    assert count(town, "SELECT count(*) FROM town_events") == 0


# ── convoy_add_bead / convoy_remove_bead ────────────────────────────────────


def test_convoy_add_bead_tracks_once_and_counts_new_edges_only(town: apsw.Connection) -> None:
    convoy_id = _convoy(town, total=2)
    bead = create_bead(town, type="issue", title="b").bead_id
    assert convoy_add_bead(town, convoy_id, bead, None) == 3
    assert convoy_add_bead(town, convoy_id, bead, None) == 3
    assert list_dependencies(town, bead) == [(convoy_id, "tracks")]
    assert count(town, "SELECT count(*) FROM bead_dependencies") == 1


def test_convoy_add_bead_leaves_closed_count_and_replaces_blockers(town: apsw.Connection) -> None:
    convoy_id = _convoy(town)
    a = _member(town, convoy_id, "a")
    b = _member(town, convoy_id, "b")
    old = create_bead(town, type="issue", title="old blocker").bead_id
    closed = create_bead(town, type="issue", title="closed").bead_id
    update_bead_status(town, closed, "closed", actor=None)
    add_dependency(town, closed, old)
    assert convoy_add_bead(town, convoy_id, closed, [a, b, closed]) == 3
    # depends_on replaces the bead's blocks edges (self-loop skipped); closed_beads not recounted.
    assert sorted(list_dependencies(town, closed)) == sorted(
        [(a, "blocks"), (b, "blocks"), (convoy_id, "tracks")]
    )
    assert _meta(town, convoy_id)[:2] == (3, 0)
    assert convoy_add_bead(town, convoy_id, closed, []) == 3
    assert list_dependencies(town, closed) == [(convoy_id, "tracks")]


def test_convoy_add_bead_errors_write_nothing(town: apsw.Connection) -> None:
    convoy_id = _convoy(town)
    bead = create_bead(town, type="issue", title="b").bead_id
    issue = create_bead(town, type="issue", title="not a convoy").bead_id
    bare = create_bead(town, type="convoy", title="no metadata row").bead_id
    with pytest.raises(NotFound, match="missing-convoy"):
        convoy_add_bead(town, "missing-convoy", bead, None)
    with pytest.raises(NotFound, match="missing-bead"):
        convoy_add_bead(town, convoy_id, "missing-bead", None)
    with pytest.raises(BadRequest, match="not a convoy"):
        convoy_add_bead(town, issue, bead, None)
    with pytest.raises(BadRequest, match="not a convoy"):
        convoy_add_bead(town, bare, bead, None)
    with pytest.raises(BadRequest):
        convoy_add_bead(town, convoy_id, convoy_id, None)
    with pytest.raises(NotFound, match="missing-dep"):
        convoy_add_bead(town, convoy_id, bead, ["missing-dep"])
    assert count(town, "SELECT count(*) FROM bead_dependencies") == 0
    assert _meta(town, convoy_id)[0] == 0


def test_convoy_remove_bead_drops_edges_inside_the_convoy_only(town: apsw.Connection) -> None:
    convoy_id = _convoy(town)
    a = _member(town, convoy_id, "a")
    b = _member(town, convoy_id, "b")
    c = _member(town, convoy_id, "c")
    outside = create_bead(town, type="issue", title="outside").bead_id
    add_dependency(town, b, a)  # b waits for a
    add_dependency(town, a, c)  # a waits for c
    add_dependency(town, a, outside)
    add_dependency(town, c, b)  # not touching a: stays
    assert convoy_remove_bead(town, convoy_id, a) == 2
    assert list_dependencies(town, a) == [(outside, "blocks")]
    assert list_dependencies(town, b) == [(convoy_id, "tracks")]
    assert sorted(list_dependencies(town, c)) == sorted([(b, "blocks"), (convoy_id, "tracks")])
    detail = get_convoy(town, convoy_id)
    assert detail is not None and {m.bead_id for m in detail.beads} == {b, c}


def test_convoy_remove_bead_untracked_is_noop_and_total_never_negative(
    town: apsw.Connection,
) -> None:
    convoy_id = _convoy(town)
    a = _member(town, convoy_id, "a")
    stranger = create_bead(town, type="issue", title="s").bead_id
    assert convoy_remove_bead(town, convoy_id, stranger) == 1
    assert convoy_remove_bead(town, convoy_id, "missing") == 1
    town.execute("UPDATE convoy_metadata SET total_beads = 0 WHERE bead_id = ?", (convoy_id,))
    assert convoy_remove_bead(town, convoy_id, a) == 0
    with pytest.raises(NotFound):
        convoy_remove_bead(town, "missing-convoy", a)
    with pytest.raises(BadRequest, match="not a convoy"):
        convoy_remove_bead(town, stranger, a)
