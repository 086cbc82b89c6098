from __future__ import annotations

import apsw
import msgspec

from town.beads import BeadUpdate, add_dependency, create_bead, update_bead
from town.convoys import get_convoy, list_convoys


def _convoy(town: apsw.Connection, title: str, **meta: object) -> str:
    convoy = create_bead(town, type="convoy", title=title, created_by="u1")
    if meta:
        cols = ", ".join(meta)
        town.execute(
            f"INSERT INTO convoy_metadata (bead_id, {cols}) VALUES (?{', ?' * len(meta)})",
            (convoy.bead_id, *meta.values()),
        )
    return convoy.bead_id


def test_convoy_detail_lists_members_edges_and_assignee_names(town: apsw.Connection) -> None:
    convoy_id = _convoy(
        town,
        "Ship it",
        total_beads=3,
        closed_beads=1,
        feature_branch="convoy/x/1/head",
        merge_mode="review-and-merge",
        staged=1,
    )
    agent = create_bead(town, type="agent", title="Toast")
    a = create_bead(town, type="issue", title="a", rig_id="r1")
    b = create_bead(town, type="issue", title="b", rig_id="r1")
    c = create_bead(town, type="issue", title="c", rig_id="r2")
    outsider = create_bead(town, type="issue", title="not tracked")
    town.execute(
        "UPDATE beads SET assignee_agent_bead_id = ? WHERE bead_id = ?", (agent.bead_id, b.bead_id)
    )
    for member in (a, b, c):
        add_dependency(town, member.bead_id, convoy_id, "tracks")
    add_dependency(town, b.bead_id, a.bead_id)  # blocks, inside the convoy
    add_dependency(town, c.bead_id, outsider.bead_id)  # blocks, leaves the convoy: not shown
    mr = create_bead(town, type="merge_request", title="mr")
    add_dependency(town, mr.bead_id, a.bead_id, "tracks")  # MR → source is not membership
    update_bead(town, a.bead_id, BeadUpdate(status="closed"), actor=None)

    detail = get_convoy(town, convoy_id)
    assert detail is not None
    wire = msgspec.to_builtins(detail)
    assert {
        k: wire[k]
        for k in (
            "id",
            "title",
            "status",
            "staged",
            "total_beads",
            "closed_beads",
            "created_by",
            "landed_at",
            "feature_branch",
            "merge_mode",
        )
    } == {
        "id": convoy_id,
        "title": "Ship it",
        "status": "active",
        "staged": True,
        "total_beads": 3,
        "closed_beads": 1,
        "created_by": "u1",
        "landed_at": None,
        "feature_branch": "convoy/x/1/head",
        "merge_mode": "review-and-merge",
    }
    assert {(m.bead_id, m.status, m.rig_id, m.assignee_agent_name) for m in detail.beads} == {
        (a.bead_id, "closed", "r1", None),
        (b.bead_id, "open", "r1", "Toast"),
        (c.bead_id, "open", "r2", None),
    }
    assert [(e.bead_id, e.depends_on_bead_id) for e in detail.dependency_edges] == [
        (b.bead_id, a.bead_id)
    ]
    assert list(wire)[-2:] == ["beads", "dependency_edges"]


def test_list_convoys_skips_closed_and_defaults_merge_mode(town: apsw.Connection) -> None:
    active = _convoy(town, "active")
    bare = create_bead(town, type="convoy", title="no metadata row").bead_id
    landed = _convoy(town, "landed", landed_at="2026-01-01T00:00:00.000Z")
    failed = _convoy(town, "failed")
    update_bead(town, landed, BeadUpdate(status="closed"), actor=None)
    update_bead(town, failed, BeadUpdate(status="failed"), actor=None)
    create_bead(town, type="issue", title="not a convoy")
    town.execute("UPDATE beads SET created_at = bead_id")  # deterministic order for the test
    listed = list_convoys(town)
    assert [c.id for c in listed] == sorted([active, bare, failed], reverse=True)
    assert {c.status for c in listed} == {"active"}
    assert all(c.merge_mode == "review-then-land" for c in listed)
    no_row = next(c for c in listed if c.id == bare)
    assert (no_row.staged, no_row.total_beads, no_row.closed_beads, no_row.beads) == (
        False,
        0,
        0,
        [],
    )
    landed_detail = get_convoy(town, landed)
    assert landed_detail is not None and landed_detail.status == "landed"
    assert landed_detail.landed_at == "2026-01-01T00:00:00.000Z"
    assert get_convoy(town, "missing") is None
    assert get_convoy(town, create_bead(town, type="issue", title="x").bead_id) is None
