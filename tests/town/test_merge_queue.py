from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import apsw
import msgspec
import pytest

from town.bead_events import record_bead_event
from town.beads import BeadStatus, add_dependency, create_bead, update_bead_status
from town.clock import iso, new_id
from town.errors import BadRequest
from town.merge_queue import MergeQueueData, MergeQueueNeedsAttention, merge_queue_data

RIG = "11111111-1111-4111-8111-111111111111"
OTHER_RIG = "22222222-2222-4222-8222-222222222222"


def _rig(town: apsw.Connection, rig_id: str, name: str) -> None:
    town.execute(
        "INSERT INTO rigs (id, name, created_at) VALUES (?, ?, '2026-01-01T00:00:00.000Z')",
        (rig_id, name),
    )


def _agent(town: apsw.Connection, name: str, role: str = "polecat") -> str:
    bead = create_bead(town, type="agent", title=name)
    town.execute(
        "INSERT INTO agent_metadata (bead_id, role, identity) VALUES (?, ?, ?)",
        (bead.bead_id, role, f"{name}-{bead.bead_id}"),
    )
    return bead.bead_id


def _convoy(town: apsw.Connection, title: str, *, with_row: bool = True) -> str:
    convoy = create_bead(town, type="convoy", title=title)
    if with_row:
        town.execute(
            "INSERT INTO convoy_metadata (bead_id, total_beads, closed_beads, feature_branch)"
            " VALUES (?, 4, 1, 'convoy/ship/head')",
            (convoy.bead_id,),
        )
    return convoy.bead_id


def _mr(
    town: apsw.Connection,
    status: BeadStatus,
    *,
    pr_url: str | None = "https://github.com/acme/app/pull/1",
    rig_id: str | None = RIG,
    source: str | None = None,
    metadata: dict[str, Any] | None = None,
    updated_at: str | None = None,
) -> str:
    mr = create_bead(town, type="merge_request", title="Review: gt/toast/1", rig_id=rig_id, metadata=metadata)
    town.execute(
        "INSERT INTO review_metadata (bead_id, branch, target_branch, pr_url, retry_count)"
        " VALUES (?, 'gt/toast/1', 'main', ?, 2)",
        (mr.bead_id, pr_url),
    )
    if source is not None:
        add_dependency(town, mr.bead_id, source, "tracks")
    if status in ("in_progress", "failed", "closed"):
        update_bead_status(town, mr.bead_id, "in_progress", actor="system")
    update_bead_status(town, mr.bead_id, status, actor="system")
    if updated_at is not None:
        town.execute("UPDATE beads SET updated_at = ? WHERE bead_id = ?", (updated_at, mr.bead_id))
    return mr.bead_id


def _ids(items: list[Any]) -> list[str]:
    return [item.mrBead.bead_id for item in items]


def _ago(**delta: float) -> str:
    return iso(datetime.now(UTC) - timedelta(**delta))


def test_merge_requests_are_sorted_into_upstreams_buckets(town: apsw.Connection) -> None:
    fresh = _mr(town, "in_progress")
    stale_at = _ago(hours=25)
    stale = _mr(town, "in_progress", updated_at=stale_at)
    nearly_stale = _mr(town, "in_progress", updated_at=_ago(hours=23))
    failed_old = _mr(town, "failed", pr_url=None)
    failed_new = _mr(town, "failed")
    for bead_id, created in ((failed_old, "01"), (fresh, "02"), (nearly_stale, "03")):
        town.execute(
            "UPDATE beads SET created_at = ? WHERE bead_id = ?",
            (f"2026-01-{created}T00:00:00.000Z", bead_id),
        )
    # Still queued for the refinery, merged, or without a PR: none of them needs a human.
    _mr(town, "in_progress", pr_url=None)
    _mr(town, "in_progress", pr_url="")
    _mr(town, "open")
    _mr(town, "in_review")
    _mr(town, "closed")
    no_review_row = create_bead(town, type="merge_request", title="no review_metadata")
    update_bead_status(town, no_review_row.bead_id, "failed", actor=None)

    attention = merge_queue_data(town).needsAttention

    assert _ids(attention.failedReviews) == [failed_new, failed_old]
    assert _ids(attention.openPRs) == [nearly_stale, fresh]  # newest first
    assert _ids(attention.stalePRs) == [stale]
    assert attention.stalePRs[0].staleSince == stale_at
    assert all(i.staleSince is None for i in attention.openPRs + attention.failedReviews)


def test_item_carries_source_convoy_agent_and_rig(town: apsw.Connection) -> None:
    _rig(town, RIG, "frontend")
    agent = _agent(town, "Toast")
    convoy = _convoy(town, "Ship it")
    source = create_bead(town, type="issue", title="Fix login", body="steps", rig_id=RIG)
    metadata = {"source_bead_id": source.bead_id, "source_agent_id": agent, "convoy_id": convoy}
    mr = _mr(town, "in_progress", source=source.bead_id, metadata=metadata)

    (item,) = merge_queue_data(town).needsAttention.openPRs
    wire = msgspec.to_builtins(item)
    assert wire["mrBead"]["bead_id"] == mr
    assert wire["mrBead"]["metadata"] == metadata
    assert (wire["mrBead"]["status"], wire["mrBead"]["rig_id"]) == ("in_progress", RIG)
    assert wire["reviewMetadata"] == {
        "branch": "gt/toast/1",
        "target_branch": "main",
        "merge_commit": None,
        "pr_url": "https://github.com/acme/app/pull/1",
        "retry_count": 2,
    }
    assert wire["sourceBead"] == {
        "bead_id": source.bead_id,
        "title": "Fix login",
        "status": "open",
        "body": "steps",
    }
    assert wire["convoy"] == {
        "convoy_id": convoy,
        "title": "Ship it",
        "total_beads": 4,
        "closed_beads": 1,
        "feature_branch": "convoy/ship/head",
        "merge_mode": None,
    }
    assert wire["agent"] == {"agent_id": agent, "name": "Toast", "role": "polecat"}
    assert (wire["rigName"], wire["staleSince"], wire["failureReason"]) == ("frontend", None, None)


def test_missing_or_damaged_links_read_as_null(town: apsw.Connection) -> None:
    not_an_agent = create_bead(town, type="issue", title="plain bead").bead_id
    bare_convoy = _convoy(town, "no metadata row", with_row=False)
    gone = create_bead(town, type="issue", title="deleted later").bead_id
    mr = _mr(
        town,
        "failed",
        rig_id=OTHER_RIG,  # no rigs row
        source=gone,
        metadata={"source_bead_id": gone, "source_agent_id": not_an_agent, "convoy_id": bare_convoy},
    )
    town.execute("DELETE FROM beads WHERE bead_id = ?", (gone,))
    damaged = _mr(town, "failed")
    town.execute("UPDATE beads SET metadata = '{not json' WHERE bead_id = ?", (damaged,))

    items = {i.mrBead.bead_id: i for i in merge_queue_data(town).needsAttention.failedReviews}
    for item in items.values():
        assert (item.sourceBead, item.convoy, item.agent, item.rigName) == (None, None, None, None)
    assert items[damaged].mrBead.metadata == {}
    assert items[mr].mrBead.metadata["convoy_id"] == bare_convoy


def test_failure_reason_comes_from_latest_review_or_pr_failure_event(town: apsw.Connection) -> None:
    failed = _mr(town, "failed")
    record_bead_event(
        town,
        bead_id=failed,
        event_type="pr_creation_failed",
        metadata={"message": "push rejected"},
        created_at="2026-01-01T00:00:00.000Z",
    )
    structured = _mr(town, "failed")
    record_bead_event(
        town,
        bead_id=structured,
        event_type="pr_creation_failed",
        metadata={"message": "older"},
        created_at="2026-01-01T00:00:00.000Z",
    )
    record_bead_event(
        town,
        bead_id=structured,
        event_type="review_completed",
        metadata={"failure_reason": {"code": "x", "message": "tests failed"}, "message": "no"},
        created_at="2026-01-02T00:00:00.000Z",
    )
    # Upstream reads neither status_changed events nor events of MRs that are not failed.
    only_status = create_bead(town, type="merge_request", title="status only")
    town.execute("INSERT INTO review_metadata (bead_id, branch) VALUES (?, 'b')", (only_status.bead_id,))
    update_bead_status(
        town, only_status.bead_id, "failed", actor=None, metadata={"failure_reason": {"message": "m"}}
    )
    open_pr = _mr(town, "in_progress")
    record_bead_event(town, bead_id=open_pr, event_type="pr_creation_failed", metadata={"message": "ignored"})

    data = merge_queue_data(town)
    reasons = {i.mrBead.bead_id: i.failureReason for i in data.needsAttention.failedReviews}
    assert reasons == {failed: "push rejected", structured: "tests failed", only_status.bead_id: None}
    assert data.needsAttention.openPRs[0].failureReason is None


def test_activity_log_enriches_review_events(town: apsw.Connection) -> None:
    _rig(town, RIG, "frontend")
    agent = _agent(town, "Toast", role="refinery")
    convoy = _convoy(town, "Ship it")
    source = create_bead(town, type="issue", title="Fix login", rig_id=RIG, metadata={"convoy_id": convoy})
    mr = _mr(town, "in_progress", source=source.bead_id, metadata={"convoy_id": convoy})
    town.execute("DELETE FROM bead_events")

    def event(bead_id: str, event_type: str, at: str, agent_id: str | None = None) -> str:
        return record_bead_event(
            town,
            bead_id=bead_id,
            event_type=event_type,
            agent_id=agent_id,
            new_value="v",
            metadata={"k": 1},
            created_at=at,
        ).bead_event_id

    submitted = event(source.bead_id, "review_submitted", "2026-03-01T00:00:01.000Z", agent)
    pr_created = event(mr, "pr_created", "2026-03-01T00:00:02.000Z", "system")
    status = event(source.bead_id, "status_changed", "2026-03-01T00:00:03.000Z")
    for other in ("created", "fields_updated", "hooked", "pr_merged"):
        event(mr, other, "2026-03-01T00:00:04.000Z", agent)

    log = merge_queue_data(town).activityLog
    assert [e.event.bead_event_id for e in log] == [status, pr_created, submitted]
    on_mr = msgspec.to_builtins(log[1])
    assert on_mr["event"] == {
        "bead_event_id": pr_created,
        "bead_id": mr,
        "agent_id": "system",
        "event_type": "pr_created",
        "old_value": None,
        "new_value": "v",
        "metadata": {"k": 1},
        "created_at": "2026-03-01T00:00:02.000Z",
    }
    assert on_mr["mrBead"] == {
        "bead_id": mr,
        "title": "Review: gt/toast/1",
        "type": "merge_request",
        "status": "in_progress",
        "rig_id": RIG,
        "metadata": {"convoy_id": convoy},
    }
    assert on_mr["sourceBead"] == {"bead_id": source.bead_id, "title": "Fix login", "status": "open"}
    assert on_mr["convoy"]["convoy_id"] == convoy
    # An agent id that is no agent bead still shows, with empty name and role (as upstream).
    assert on_mr["agent"] == {"agent_id": "system", "name": "", "role": ""}
    assert on_mr["rigName"] == "frontend"
    assert on_mr["reviewMetadata"] == {
        "pr_url": "https://github.com/acme/app/pull/1",
        "branch": "gt/toast/1",
        "target_branch": "main",
        "merge_commit": None,
    }
    # Events on the source bead name the bead itself as the source.
    on_source = log[2]
    assert on_source.sourceBead is not None and on_source.sourceBead.bead_id == source.bead_id
    assert on_source.mrBead is not None and on_source.mrBead.type == "issue"
    assert on_source.agent is not None and (on_source.agent.name, on_source.agent.role) == (
        "Toast",
        "refinery",
    )
    assert on_source.reviewMetadata is None
    assert log[0].agent is None


def test_activity_log_limit_and_exclusive_since(town: apsw.Connection) -> None:
    bead = create_bead(town, type="issue", title="x").bead_id
    town.execute("DELETE FROM bead_events")
    stamps = [f"2026-03-01T00:00:{s:02d}.000Z" for s in range(10)]
    ids = [
        record_bead_event(town, bead_id=bead, event_type="status_changed", created_at=at).bead_event_id
        for at in stamps
    ]
    newest_first = ids[::-1]
    assert [e.event.bead_event_id for e in merge_queue_data(town).activityLog] == newest_first
    assert [e.event.bead_event_id for e in merge_queue_data(town, limit=3).activityLog] == (newest_first[:3])
    after = merge_queue_data(town, since=stamps[6]).activityLog
    assert [e.event.bead_event_id for e in after] == newest_first[:3]
    assert merge_queue_data(town, since=stamps[-1]).activityLog == []
    for bad in (0, 501):
        with pytest.raises(BadRequest):
            merge_queue_data(town, limit=bad)


@pytest.mark.parametrize("filler", [0, 60], ids=["large-rig", "small-rig"])
def test_rig_filter_applies_to_both_sections(town: apsw.Connection, filler: int) -> None:
    # 60 beads elsewhere make RIG a small share of the town, which takes the other query plan.
    for n in range(filler):
        create_bead(town, type="issue", title=f"filler {n}", rig_id=OTHER_RIG)
    mine = _mr(town, "failed", rig_id=RIG)
    theirs = _mr(town, "failed", rig_id=OTHER_RIG)

    data = merge_queue_data(town, rig_id=RIG)
    assert _ids(data.needsAttention.failedReviews) == [mine]
    assert data.activityLog and {e.event.bead_id for e in data.activityLog} == {mine}
    everything = merge_queue_data(town)
    assert set(_ids(everything.needsAttention.failedReviews)) == {mine, theirs}
    assert {e.event.bead_id for e in everything.activityLog} >= {mine, theirs}
    assert merge_queue_data(town, rig_id=new_id()) == MergeQueueData(
        needsAttention=MergeQueueNeedsAttention(openPRs=[], failedReviews=[], stalePRs=[]),
        activityLog=[],
    )


ITEM_KEYS = {
    "mrBead": ["bead_id", "status", "title", "body", "rig_id", "created_at", "updated_at", "metadata"],
    "reviewMetadata": ["branch", "target_branch", "merge_commit", "pr_url", "retry_count"],
    "sourceBead": ["bead_id", "title", "status", "body"],
    "convoy": ["convoy_id", "title", "total_beads", "closed_beads", "feature_branch", "merge_mode"],
    "agent": ["agent_id", "name", "role"],
}
LOG_KEYS = {
    "event": [
        "bead_event_id",
        "bead_id",
        "agent_id",
        "event_type",
        "old_value",
        "new_value",
        "metadata",
        "created_at",
    ],
    "mrBead": ["bead_id", "title", "type", "status", "rig_id", "metadata"],
    "sourceBead": ["bead_id", "title", "status"],
    "convoy": ITEM_KEYS["convoy"],
    "agent": ITEM_KEYS["agent"],
    "reviewMetadata": ["pr_url", "branch", "target_branch", "merge_commit"],
}


def test_encoded_json_has_exactly_upstreams_keys(town: apsw.Connection) -> None:
    _rig(town, RIG, "frontend")
    agent = _agent(town, "Toast")
    convoy = _convoy(town, "Ship it")
    source = create_bead(town, type="issue", title="Fix login", rig_id=RIG)
    meta = {"source_agent_id": agent, "convoy_id": convoy}
    for status in ("in_progress", "failed"):
        _mr(town, status, source=source.bead_id, metadata=meta)
    _mr(town, "in_progress", updated_at="2026-01-01T00:00:00.000Z")
    _mr(town, "failed", rig_id=None)  # every link null

    wire = msgspec.json.decode(msgspec.json.encode(merge_queue_data(town)))
    assert list(wire) == ["needsAttention", "activityLog"]
    assert list(wire["needsAttention"]) == ["openPRs", "failedReviews", "stalePRs"]
    items = [i for bucket in wire["needsAttention"].values() for i in bucket]
    assert len(items) == 4 and wire["activityLog"]
    for item in items:
        assert list(item) == [*ITEM_KEYS, "rigName", "staleSince", "failureReason"]
        for key, keys in ITEM_KEYS.items():
            assert item[key] is None or list(item[key]) == keys
    assert any(all(item[k] is not None for k in ITEM_KEYS) for item in items)
    assert any(item["sourceBead"] is None and item["agent"] is None for item in items)
    for entry in wire["activityLog"]:
        assert list(entry) == [
            "event",
            "mrBead",
            "sourceBead",
            "convoy",
            "agent",
            "rigName",
            "reviewMetadata",
        ]
        for key, keys in LOG_KEYS.items():
            assert entry[key] is None or list(entry[key]) == keys
        assert isinstance(entry["event"]["metadata"], dict)
