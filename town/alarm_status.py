"""The town status snapshot of `getAlarmStatus` / `adminGetAlarmStatus` and the container
billing status of `getBillingStatus` / `setContainerRunPolicy`.

Every counter is derived from the town's tables the way upstream's TownDO.getAlarmStatus derives
it (upstream keeps none of them in memory). This service runs no alarm loop and no billing, so:
`nextFireAt` is always null, the interval is the one the alarm *would* use, and billing reads
as disabled. Reads never write: the config is read raw, never through get_config's seeding.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args, overload

import apsw
import msgspec
from msgspec import UNSET, UnsetType

from dos.kv import kv_get, kv_put
from town.clock import iso
from town.config import CONFIG_KEY, AlarmActive, AlarmIdle
from town.errors import BadRequest

RUN_POLICY_KEY = "container:runPolicy"

# Upstream's fixed cadence, used when the town config sets no interval.
DEFAULT_ACTIVE_INTERVAL_S = 5
DEFAULT_IDLE_INTERVAL_S = 5 * 60
RECENT_EVENTS_LIMIT = 20
# An idle agent holding a hook is only "orphaned" once the dispatcher had time to pick it up.
ORPHANED_HOOK_GRACE = timedelta(minutes=5)
# A stall older than this no longer keeps the alarm on the fast cadence.
ACTIVE_STALL_WINDOW = timedelta(minutes=30)
TRIAGE_REQUEST_LIKE = '%"gt:triage-request"%'

RunPolicy = Literal["automatic", "paused_by_user"]
BillingState = Literal[
    "blocked", "degraded", "idle", "paused", "running", "starting", "stopping", "warning"
]
RUN_POLICIES: tuple[str, ...] = get_args(RunPolicy)


class AlarmTiming(msgspec.Struct, kw_only=True):
    nextFireAt: str | None
    intervalMs: int
    intervalLabel: str


class AgentCounts(msgspec.Struct, kw_only=True):
    working: int
    idle: int
    stalled: int
    dead: int
    # Every agent, including statuses without a counter of their own (`waiting`).
    total: int


class BeadCounts(msgspec.Struct, kw_only=True):
    open: int
    inProgress: int
    inReview: int
    failed: int
    triageRequests: int


class PatrolCounts(msgspec.Struct, kw_only=True):
    guppWarnings: int
    guppEscalations: int
    stalledAgents: int
    orphanedHooks: int


class StatusEvent(msgspec.Struct, kw_only=True):
    time: str
    type: str
    message: str


class AlarmStatus(msgspec.Struct, kw_only=True):
    """adminGetAlarmStatus's output."""

    alarm: AlarmTiming
    agents: AgentCounts
    beads: BeadCounts
    patrol: PatrolCounts
    recentEvents: list[StatusEvent]


class BillingPayer(msgspec.Struct, kw_only=True):
    type: Literal["org", "user"]
    id: str


class BillingStatus(msgspec.Struct, kw_only=True):
    """Optional keys are UNSET, so they are absent from the JSON as upstream's are."""

    enabled: bool
    state: BillingState
    runPolicy: RunPolicy
    # Newer upstream front ends read this (whether billing holds the container back); never here.
    enforcing: bool = False
    payer: BillingPayer | UnsetType = UNSET
    remaining: float | UnsetType = UNSET
    minimumRequired: float | UnsetType = UNSET
    estimatedHourlyCharge: float | UnsetType = UNSET
    estimatedRunCharge: float | UnsetType = UNSET
    runUsageSeconds: float | UnsetType = UNSET
    intervalStartedAt: float | UnsetType = UNSET
    lastReportedAt: float | UnsetType = UNSET


class TownAlarmStatus(AlarmStatus, kw_only=True):
    """getAlarmStatus's output: the admin snapshot plus billing."""

    billing: BillingStatus


# -- billing ---------------------------------------------------------------------------------


def _run_policy(conn: apsw.Connection) -> RunPolicy:
    stored = kv_get(conn, RUN_POLICY_KEY)
    return "paused_by_user" if stored == "paused_by_user" else "automatic"


def billing_status(conn: apsw.Connection) -> BillingStatus:
    """No meter runs here: disabled, no optional keys, and the state says what the run policy
    makes of an idle container (`paused` by the user, else `idle`). Upstream's disabled branch
    answers `idle` even when paused; the pause is shown here because it is the one thing a
    caller can change."""
    policy = _run_policy(conn)
    state: BillingState = "paused" if policy == "paused_by_user" else "idle"
    return BillingStatus(enabled=False, state=state, runPolicy=policy)


def set_run_policy(conn: apsw.Connection, policy: str) -> BillingStatus:
    if policy not in RUN_POLICIES:
        raise BadRequest(f"Invalid run policy {policy!r}; expected one of {', '.join(RUN_POLICIES)}")
    kv_put(conn, RUN_POLICY_KEY, policy)
    return billing_status(conn)


# -- alarm cadence ---------------------------------------------------------------------------


class _AlarmIntervals(msgspec.Struct):
    """The two config fields the cadence needs; other config keys are ignored."""

    alarm_interval_active: AlarmActive | None = None
    alarm_interval_idle: AlarmIdle | None = None


def _configured_intervals(conn: apsw.Connection) -> _AlarmIntervals:
    stored = kv_get(conn, CONFIG_KEY)
    if not isinstance(stored, dict):
        return _AlarmIntervals()
    try:
        return msgspec.convert(stored, _AlarmIntervals)
    except msgspec.ValidationError:
        # Out-of-range values cannot be stored through update_config; a damaged row must
        # not break the status page, so it reads as unset.
        return _AlarmIntervals()


def _count(conn: apsw.Connection, sql: str, *params: Any) -> int:
    row = conn.execute(sql, params).fetchone()
    return 0 if row is None or row[0] is None else int(row[0])


def has_active_work(conn: apsw.Connection, now: datetime) -> bool:
    """Upstream's test for the fast cadence: a working agent (or one stalled within the last
    30 minutes), an idle agent holding a hook, an open/in-progress merge request, an open
    triage request, or an open unassigned issue that has a rig."""
    stall_cutoff = iso(now - ACTIVE_STALL_WINDOW)
    return bool(
        _count(
            conn,
            "SELECT EXISTS (SELECT 1 FROM agent_metadata WHERE status = 'working'"
            " OR (status = 'stalled' AND last_activity_at > ?))",
            stall_cutoff,
        )
        or _count(
            conn,
            "SELECT EXISTS (SELECT 1 FROM agent_metadata"
            " WHERE status = 'idle' AND current_hook_bead_id IS NOT NULL)",
        )
        or _count(
            conn,
            "SELECT EXISTS (SELECT 1 FROM beads"
            " WHERE type = 'merge_request' AND status IN ('open', 'in_progress'))",
        )
        or _count(
            conn,
            "SELECT EXISTS (SELECT 1 FROM beads"
            " WHERE type = 'issue' AND status = 'open' AND labels LIKE ?)",
            TRIAGE_REQUEST_LIKE,
        )
        or _count(
            conn,
            "SELECT EXISTS (SELECT 1 FROM beads WHERE type = 'issue' AND status = 'open'"
            " AND rig_id IS NOT NULL AND assignee_agent_bead_id IS NULL)",
        )
    )


def _interval_label(mode: str, seconds: int) -> str:
    """`active (5s)` / `idle (5m)` as upstream's; whole minutes in minutes, else seconds."""
    span = f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"
    return f"{mode} ({span})"


def _alarm_timing(conn: apsw.Connection, now: datetime) -> AlarmTiming:
    intervals = _configured_intervals(conn)
    if has_active_work(conn, now):
        mode, seconds = "active", intervals.alarm_interval_active or DEFAULT_ACTIVE_INTERVAL_S
    else:
        mode, seconds = "idle", intervals.alarm_interval_idle or DEFAULT_IDLE_INTERVAL_S
    # No alarm loop runs here, so there is never a scheduled next fire.
    return AlarmTiming(
        nextFireAt=None, intervalMs=seconds * 1000, intervalLabel=_interval_label(mode, seconds)
    )


# -- counters --------------------------------------------------------------------------------


def _agent_counts(conn: apsw.Connection) -> AgentCounts:
    by_status = dict(conn.execute("SELECT status, count(*) FROM agent_metadata GROUP BY status"))
    return AgentCounts(
        working=int(by_status.get("working", 0)),
        idle=int(by_status.get("idle", 0)),
        stalled=int(by_status.get("stalled", 0)),
        dead=int(by_status.get("dead", 0)),
        total=sum(int(c) for c in by_status.values()),
    )


def _bead_counts(conn: apsw.Connection) -> BeadCounts:
    # Agent and mail beads are bookkeeping, not work: upstream leaves them out.
    by_status = dict(
        conn.execute(
            "SELECT status, count(*) FROM beads"
            " WHERE type NOT IN ('agent', 'message') GROUP BY status"
        )
    )
    return BeadCounts(
        open=int(by_status.get("open", 0)),
        inProgress=int(by_status.get("in_progress", 0)),
        inReview=int(by_status.get("in_review", 0)),
        failed=int(by_status.get("failed", 0)),
        triageRequests=_count(
            conn,
            "SELECT count(*) FROM beads WHERE type = 'issue' AND status = 'open' AND labels LIKE ?",
            TRIAGE_REQUEST_LIKE,
        ),
    )


def _patrol_counts(conn: apsw.Connection, agents: AgentCounts, now: datetime) -> PatrolCounts:
    # GUPP warnings/escalations are the patrol's open mail beads with those subjects.
    gupp: tuple[Any, ...] = conn.execute(
        "SELECT coalesce(sum(title = 'GUPP_CHECK'), 0), coalesce(sum(title = 'GUPP_ESCALATION'), 0)"
        " FROM beads WHERE type = 'message' AND status = 'open'"
        " AND title IN ('GUPP_CHECK', 'GUPP_ESCALATION')"
    ).fetchone() or (0, 0)
    orphaned = _count(
        conn,
        "SELECT count(*) FROM agent_metadata"
        " WHERE status = 'idle' AND current_hook_bead_id IS NOT NULL"
        " AND (last_activity_at IS NULL OR last_activity_at < ?)",
        iso(now - ORPHANED_HOOK_GRACE),
    )
    return PatrolCounts(
        guppWarnings=int(gupp[0]),
        guppEscalations=int(gupp[1]),
        stalledAgents=agents.stalled,
        orphanedHooks=orphaned,
    )


# -- activity feed ---------------------------------------------------------------------------


def _short(value: str) -> str:
    return f"{value[:8]}…"


def format_event_message(
    event_type: str,
    *,
    bead_title: str | None,
    bead_id: str | None,
    agent_id: str | None,
    new_value: str | None,
) -> str:
    """One feed line, worded as upstream's status feed (empty strings count as missing)."""
    target = f'"{bead_title}"' if bead_title else f"bead {_short(bead_id)}" if bead_id else "unknown"
    actor = f"agent {_short(agent_id)}" if agent_id else "system"
    if event_type == "status_changed":
        return f"{target} → {new_value or '?'} (by {actor})"
    if event_type == "assigned":
        return f"{target} assigned to {actor}"
    if event_type == "agent_status":
        return f"{actor}: {new_value or 'status update'}"
    fixed = {
        "pr_created": "PR created for {}",
        "pr_merged": "PR merged for {}",
        "pr_creation_failed": "PR creation failed for {}",
        "escalation_created": "Escalation created: {}",
    }
    return fixed.get(event_type, event_type + ": {}").format(target)


def recent_events(conn: apsw.Connection, limit: int = RECENT_EVENTS_LIMIT) -> list[StatusEvent]:
    """The newest bead events town-wide, with their bead's current title when it still exists."""
    rows: list[tuple[Any, ...]] = conn.execute(
        "SELECT e.created_at, e.event_type, e.new_value, e.agent_id, e.bead_id, b.title"
        " FROM bead_events e LEFT JOIN beads b ON b.bead_id = e.bead_id"
        " ORDER BY e.created_at DESC, e.rowid DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [
        StatusEvent(
            time=created_at,
            type=event_type,
            message=format_event_message(
                event_type, bead_title=title, bead_id=bead_id, agent_id=agent_id, new_value=new_value
            ),
        )
        for created_at, event_type, new_value, agent_id, bead_id, title in rows
    ]


# -- snapshot --------------------------------------------------------------------------------


@overload
def alarm_status(conn: apsw.Connection, *, with_billing: Literal[False] = ...) -> AlarmStatus: ...
@overload
def alarm_status(conn: apsw.Connection, *, with_billing: Literal[True]) -> TownAlarmStatus: ...
@overload
def alarm_status(conn: apsw.Connection, *, with_billing: bool) -> AlarmStatus: ...
def alarm_status(conn: apsw.Connection, *, with_billing: bool = False) -> AlarmStatus:
    """The status snapshot; `with_billing` adds getAlarmStatus's billing object."""
    now = datetime.now(UTC)
    agents = _agent_counts(conn)
    fields: dict[str, Any] = {
        "alarm": _alarm_timing(conn, now),
        "agents": agents,
        "beads": _bead_counts(conn),
        "patrol": _patrol_counts(conn, agents, now),
        "recentEvents": recent_events(conn),
    }
    if with_billing:
        return TownAlarmStatus(**fields, billing=billing_status(conn))
    return AlarmStatus(**fields)
