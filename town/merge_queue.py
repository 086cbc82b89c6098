"""The Merge Queue page's read (`getMergeQueueData`): merge requests that need a human, and the
recent review activity of the town.

Selection follows upstream (services/gastown/src/dos/town/review-queue.ts):

- Needs attention looks at `merge_request` beads that have a `review_metadata` row. `failed`
  ones are failed reviews; `in_progress` ones with a PR url are open PRs, or stale PRs once
  their `updated_at` is more than 24 h old (`staleSince` = `updated_at`). Open or in-review MRs
  without a PR are still queued for the refinery and are not shown. Newest first, no limit.
- The activity log is the newest `limit` review-related events of existing beads (exclusive
  `since`); `status_changed` counts for every bead type, as upstream.
- Links: source bead = the MR's `tracks` edge; convoy = the bead's `metadata.convoy_id` (shown
  only when that convoy has a `convoy_metadata` row); MR agent = `metadata.source_agent_id`
  (shown only when it is an agent with `agent_metadata`), log agent = the event's `agent_id`
  (always shown when set, with empty name/role when it is not an agent bead, e.g. `system`);
  rig name from `rigs`.
- `failureReason` (failed MRs only) comes from the MR's latest `review_completed` or
  `pr_creation_failed` event: `metadata.failure_reason.message`, else `metadata.message`.
  Upstream does not consult `status_changed` events here, so neither do we.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import apsw
import msgspec

from town.bead_events import BeadEvent, decode_object, row_to_event
from town.beads import BeadStatus, BeadType
from town.clock import iso
from town.convoys import ConvoyMergeMode
from town.errors import BadRequest

STALE_PR_AFTER = timedelta(hours=24)

# Event types the activity log shows (upstream's list, including babysat external PRs).
ACTIVITY_EVENT_TYPES: tuple[str, ...] = (
    "review_submitted",
    "review_completed",
    "pr_created",
    "pr_creation_failed",
    "rework_requested",
    "status_changed",
    "babysit_started",
)


class MergeQueueMrBead(msgspec.Struct, kw_only=True):
    bead_id: str
    status: BeadStatus
    title: str
    body: str | None
    rig_id: str | None
    created_at: str
    updated_at: str
    metadata: dict[str, Any]


class MergeQueueReviewMetadata(msgspec.Struct, kw_only=True):
    branch: str
    target_branch: str
    merge_commit: str | None
    pr_url: str | None
    retry_count: int


class MergeQueueSourceBead(msgspec.Struct, kw_only=True):
    bead_id: str
    title: str
    status: BeadStatus
    body: str | None


class MergeQueueConvoyRef(msgspec.Struct, kw_only=True):
    convoy_id: str
    title: str
    total_beads: int
    closed_beads: int
    feature_branch: str | None
    # Raw column: NULL stays null here (upstream does not apply the review-then-land default).
    merge_mode: ConvoyMergeMode | None


class MergeQueueAgentRef(msgspec.Struct, kw_only=True):
    agent_id: str
    name: str
    role: str


class MergeQueueItem(msgspec.Struct, kw_only=True):
    mrBead: MergeQueueMrBead
    reviewMetadata: MergeQueueReviewMetadata
    sourceBead: MergeQueueSourceBead | None
    convoy: MergeQueueConvoyRef | None
    agent: MergeQueueAgentRef | None
    rigName: str | None
    staleSince: str | None
    failureReason: str | None


class MergeQueueNeedsAttention(msgspec.Struct, kw_only=True):
    openPRs: list[MergeQueueItem]
    failedReviews: list[MergeQueueItem]
    stalePRs: list[MergeQueueItem]


class MergeQueueLogBead(msgspec.Struct, kw_only=True):
    """The event's bead (named `mrBead` on the wire, though it may be of any type)."""

    bead_id: str
    title: str
    type: BeadType
    status: BeadStatus
    rig_id: str | None
    metadata: dict[str, Any]


class MergeQueueLogSourceBead(msgspec.Struct, kw_only=True):
    bead_id: str
    title: str
    status: BeadStatus


class MergeQueueLogReviewMetadata(msgspec.Struct, kw_only=True):
    pr_url: str | None
    branch: str | None
    target_branch: str | None
    merge_commit: str | None


class MergeQueueLogEntry(msgspec.Struct, kw_only=True):
    event: BeadEvent  # its rig keys stay unset here, as upstream's log event has none
    mrBead: MergeQueueLogBead | None
    sourceBead: MergeQueueLogSourceBead | None
    convoy: MergeQueueConvoyRef | None
    agent: MergeQueueAgentRef | None
    rigName: str | None
    reviewMetadata: MergeQueueLogReviewMetadata | None


class MergeQueueData(msgspec.Struct, kw_only=True):
    needsAttention: MergeQueueNeedsAttention
    activityLog: list[MergeQueueLogEntry]


def _json_field(column: str, path: str) -> str:
    """json_extract that reads damaged metadata as "no value" instead of failing the query."""
    return f"CASE WHEN json_valid({column}) THEN json_extract({column}, '{path}') END"


def _tracked_source(mr_column: str) -> str:
    """The bead an MR `tracks` (its source). One per MR even if the data holds several edges,
    so an item or event is never listed twice; edges to deleted beads are skipped."""
    return (
        "(SELECT d.depends_on_bead_id FROM bead_dependencies d"
        " JOIN beads s ON s.bead_id = d.depends_on_bead_id"
        f" WHERE d.bead_id = {mr_column} AND d.dependency_type = 'tracks'"
        " ORDER BY d.depends_on_bead_id LIMIT 1)"
    )


# Only failed MRs need their failure event; the probe uses idx_bead_events_bead.
_FAILURE_METADATA = (
    "CASE WHEN b.status = 'failed' THEN"
    " (SELECT e.metadata FROM bead_events e"
    "  WHERE e.bead_id = b.bead_id AND e.event_type IN ('review_completed', 'pr_creation_failed')"
    "  ORDER BY e.created_at DESC, e.rowid DESC LIMIT 1) END"
)

_CONVOY_COLUMNS = "cm.bead_id, cb.title, cm.total_beads, cm.closed_beads, cm.feature_branch, cm.merge_mode"

_ITEMS_SELECT = (
    "SELECT b.bead_id, b.status, b.title, b.body, b.rig_id, b.created_at, b.updated_at,"
    " b.metadata, rm.branch, rm.target_branch, rm.merge_commit, rm.pr_url, rm.retry_count,"
    " src.bead_id, src.title, src.status, src.body,"
    f" {_CONVOY_COLUMNS}, am.bead_id, ab.title, am.role, r.name, {_FAILURE_METADATA}"
    " FROM beads b"
    " JOIN review_metadata rm ON rm.bead_id = b.bead_id"
    f" LEFT JOIN beads src ON src.bead_id = {_tracked_source('b.bead_id')}"
    " LEFT JOIN convoy_metadata cm"
    f"   ON cm.bead_id = {_json_field('b.metadata', '$.convoy_id')}"
    " LEFT JOIN beads cb ON cb.bead_id = cm.bead_id"
    " LEFT JOIN agent_metadata am"
    f"   ON am.bead_id = {_json_field('b.metadata', '$.source_agent_id')}"
    " LEFT JOIN beads ab ON ab.bead_id = am.bead_id"
    " LEFT JOIN rigs r ON r.id = b.rig_id"
    # Upstream also fetches open/in_review MRs and then drops them; they never show.
    " WHERE b.type = 'merge_request' AND b.status IN ('in_progress', 'failed')"
)

_EVENT_TYPES_SQL = ", ".join(f"'{t}'" for t in ACTIVITY_EVENT_TYPES)


def _log_sql(filters: str) -> str:
    """The activity-log query; `filters` are extra `AND …` conditions on the event page.

    The page of events is chosen first (a subquery with LIMIT is not flattened), so the
    enrichment joins run for `limit` rows only. `+e.event_type` keeps the planner off the
    type index: the listed types are a large share of history, and collecting all of them to
    sort costs far more than walking idx_bead_events_created newest-first until the page is full.
    """
    page = (
        "SELECT e.bead_event_id, e.bead_id, e.agent_id, e.event_type, e.old_value, e.new_value,"
        " e.metadata, e.created_at"
        " FROM bead_events e JOIN beads pb ON pb.bead_id = e.bead_id"
        f" WHERE +e.event_type IN ({_EVENT_TYPES_SQL}) {filters}"
        " ORDER BY e.created_at DESC, e.bead_event_id DESC LIMIT ?"
    )
    return (
        "SELECT e.bead_event_id, e.bead_id, e.agent_id, e.event_type, e.old_value, e.new_value,"
        " e.metadata, e.created_at, b.title, b.type, b.status, b.rig_id, b.metadata,"
        " ab.title, am.role, r.name, src.bead_id, src.title, src.status,"
        f" rm.branch, rm.target_branch, rm.merge_commit, rm.pr_url, {_CONVOY_COLUMNS}"
        f" FROM ({page}) e"
        " JOIN beads b ON b.bead_id = e.bead_id"
        " LEFT JOIN agent_metadata am ON am.bead_id = e.agent_id"
        " LEFT JOIN beads ab ON ab.bead_id = e.agent_id"
        # Events on an MR name its source; events on any other bead name that bead.
        " LEFT JOIN beads src"
        f"   ON b.type = 'merge_request' AND src.bead_id = {_tracked_source('b.bead_id')}"
        " LEFT JOIN review_metadata rm ON rm.bead_id = e.bead_id"
        " LEFT JOIN convoy_metadata cm"
        f"   ON cm.bead_id = {_json_field('b.metadata', '$.convoy_id')}"
        " LEFT JOIN beads cb ON cb.bead_id = cm.bead_id"
        " LEFT JOIN rigs r ON r.id = b.rig_id"
        " ORDER BY e.created_at DESC, e.bead_event_id DESC"
    )


def _convoy(row: tuple[Any, ...], at: int) -> MergeQueueConvoyRef | None:
    convoy_id, title, total, closed, feature_branch, merge_mode = row[at : at + 6]
    if not convoy_id:
        return None
    return MergeQueueConvoyRef(
        convoy_id=convoy_id,
        title=title or "",
        total_beads=int(total or 0),
        closed_beads=int(closed or 0),
        feature_branch=feature_branch,
        merge_mode=merge_mode,
    )


def _failure_reason(status: str, metadata_text: str | None) -> str | None:
    if status != "failed" or not metadata_text:
        return None
    metadata = decode_object(metadata_text)
    structured = metadata.get("failure_reason")
    if isinstance(structured, dict) and isinstance(structured.get("message"), str):
        return str(structured["message"])
    message = metadata.get("message")
    return message if isinstance(message, str) else None


def _row_to_item(row: tuple[Any, ...]) -> MergeQueueItem:
    return MergeQueueItem(
        mrBead=MergeQueueMrBead(
            bead_id=row[0],
            status=row[1],
            title=row[2],
            body=row[3],
            rig_id=row[4],
            created_at=row[5],
            updated_at=row[6],
            metadata=decode_object(row[7]),
        ),
        reviewMetadata=MergeQueueReviewMetadata(
            branch=row[8],
            target_branch=row[9],
            merge_commit=row[10],
            pr_url=row[11],
            retry_count=int(row[12] or 0),
        ),
        sourceBead=(
            MergeQueueSourceBead(bead_id=row[13], title=row[14] or "", status=row[15], body=row[16])
            if row[13]
            else None
        ),
        convoy=_convoy(row, 17),
        agent=(
            MergeQueueAgentRef(agent_id=row[23], name=row[24] or "", role=row[25] or "") if row[23] else None
        ),
        rigName=row[26],
        staleSince=None,
        failureReason=_failure_reason(row[1], row[27]),
    )


def _row_to_entry(row: tuple[Any, ...]) -> MergeQueueLogEntry:
    bead_id, agent_id, title, bead_type, status = row[1], row[2], row[8], row[9], row[10]
    source: MergeQueueLogSourceBead | None
    if bead_type == "merge_request":
        source = (
            MergeQueueLogSourceBead(bead_id=row[16], title=row[17] or "", status=row[18])
            if row[16]
            else None
        )
    else:
        # review_submitted / review_completed are written on the source bead itself.
        source = MergeQueueLogSourceBead(bead_id=bead_id, title=title, status=status) if title else None
    return MergeQueueLogEntry(
        event=row_to_event(row[:8]),
        # As upstream, a bead with an empty title reads as no bead.
        mrBead=(
            MergeQueueLogBead(
                bead_id=bead_id,
                title=title,
                type=bead_type or "merge_request",
                status=status,
                rig_id=row[11],
                metadata=decode_object(row[12]),
            )
            if title
            else None
        ),
        sourceBead=source,
        convoy=_convoy(row, 23),
        agent=(
            MergeQueueAgentRef(agent_id=agent_id, name=row[13] or "", role=row[14] or "")
            if agent_id
            else None
        ),
        rigName=row[15],
        reviewMetadata=(
            MergeQueueLogReviewMetadata(
                pr_url=row[22], branch=row[19], target_branch=row[20], merge_commit=row[21]
            )
            if row[19] is not None
            else None
        ),
    )


def _needs_attention(conn: apsw.Connection, rig_id: str | None) -> MergeQueueNeedsAttention:
    sql = _ITEMS_SELECT
    params: list[Any] = []
    if rig_id is not None:
        sql += " AND b.rig_id = ?"
        params.append(rig_id)
    sql += " ORDER BY b.created_at DESC, b.bead_id DESC"
    # ISO strings in one format compare in time order.
    stale_before = iso(datetime.now(UTC) - STALE_PR_AFTER)
    attention = MergeQueueNeedsAttention(openPRs=[], failedReviews=[], stalePRs=[])
    for row in conn.execute(sql, params):
        item = _row_to_item(row)
        if item.mrBead.status == "failed":
            attention.failedReviews.append(item)
        elif item.reviewMetadata.pr_url:
            # PR created, waiting for a human to merge it.
            if item.mrBead.updated_at < stale_before:
                item.staleSince = item.mrBead.updated_at
                attention.stalePRs.append(item)
            else:
                attention.openPRs.append(item)
    return attention


def _rig_condition(conn: apsw.Connection, rig_id: str) -> str:
    """Rig filter of the event page, shaped for the cheaper plan (as town.bead_events does).

    For a rig holding a fair share of the town, walking the events newest-first and probing
    each bead stops after `limit` hits; `+` keeps the planner off the rig index. A small rig
    is cheaper to serve by collecting its beads' events and sorting them.
    """
    ((rig_beads,),) = conn.execute("SELECT count(*) FROM beads WHERE rig_id = ?", (rig_id,))
    ((all_beads,),) = conn.execute("SELECT count(*) FROM beads")
    if int(rig_beads) * 20 < int(all_beads):
        return "AND pb.rig_id = ?"
    return "AND +pb.rig_id = ?"


def _activity_log(
    conn: apsw.Connection, rig_id: str | None, since: str | None, limit: int
) -> list[MergeQueueLogEntry]:
    filters: list[str] = []
    params: list[Any] = []
    if rig_id is not None:
        filters.append(_rig_condition(conn, rig_id))
        params.append(rig_id)
    if since is not None:
        filters.append("AND e.created_at > ?")
        params.append(since)
    rows = conn.execute(_log_sql(" ".join(filters)), (*params, limit)).fetchall()
    return [_row_to_entry(r) for r in rows]


def merge_queue_data(
    conn: apsw.Connection,
    *,
    rig_id: str | None = None,
    limit: int = 50,
    since: str | None = None,
) -> MergeQueueData:
    """Needs-attention buckets and the activity log (newest first, at most `limit` entries,
    only events after `since`); `rig_id` narrows both to that rig's beads."""
    if not 1 <= limit <= 500:
        raise BadRequest(f"limit must be between 1 and 500, got {limit}")
    return MergeQueueData(
        needsAttention=_needs_attention(conn, rig_id),
        activityLog=_activity_log(conn, rig_id, since, limit),
    )
