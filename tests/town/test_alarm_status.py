from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import apsw
import msgspec
import pytest

from dos.kv import kv_get, kv_put
from tests.town.conftest import count
from tests.town.test_agents import add_agent, assign
from town.alarm_status import (
    RUN_POLICY_KEY,
    AlarmStatus,
    BillingPayer,
    BillingStatus,
    TownAlarmStatus,
    alarm_status,
    billing_status,
    recent_events,
    set_run_policy,
)
from town.bead_events import record_bead_event
from town.beads import create_bead, update_bead_status
from town.clock import iso
from town.config import CONFIG_KEY, TownConfigUpdate, update_config
from town.errors import BadRequest

ADMIN_KEYS = {"alarm", "agents", "beads", "patrol", "recentEvents"}


def ago(**delta: float) -> str:
    return iso(datetime.now(UTC) - timedelta(**delta))


def wire(value: object) -> dict[str, object]:
    decoded = msgspec.json.decode(msgspec.json.encode(value))
    assert isinstance(decoded, dict)
    return decoded


def bead_with_status(town: apsw.Connection, type: str, status: str, **kwargs: object) -> str:
    bead = create_bead(town, type=type, title=str(kwargs.pop("title", f"{type} {status}")), **kwargs)  # type: ignore[arg-type]
    if status != "open":
        update_bead_status(town, bead.bead_id, status, actor="system")  # type: ignore[arg-type]
    return bead.bead_id


def test_empty_town_snapshot_has_exactly_upstreams_keys(town: apsw.Connection) -> None:
    admin = alarm_status(town)
    full = alarm_status(town, with_billing=True)
    assert type(admin) is AlarmStatus and isinstance(full, TownAlarmStatus)
    assert wire(admin) == {
        "alarm": {"nextFireAt": None, "intervalMs": 300_000, "intervalLabel": "idle (5m)"},
        "agents": {"working": 0, "idle": 0, "stalled": 0, "dead": 0, "total": 0},
        "beads": {"open": 0, "inProgress": 0, "inReview": 0, "failed": 0, "triageRequests": 0},
        "patrol": {"guppWarnings": 0, "guppEscalations": 0, "stalledAgents": 0, "orphanedHooks": 0},
        "recentEvents": [],
    }
    assert list(wire(full)) == ["alarm", "agents", "beads", "patrol", "recentEvents", "billing"]
    assert wire(full)["billing"] == {"enabled": False, "state": "idle", "runPolicy": "automatic", "enforcing": False}


def test_status_read_never_writes(town: apsw.Connection) -> None:
    before = town.totalchanges()
    alarm_status(town, with_billing=True)
    assert town.totalchanges() == before
    assert kv_get(town, CONFIG_KEY) is None


def test_agent_counts_by_status(town: apsw.Connection) -> None:
    for status in ("working", "working", "idle", "stalled", "dead", "waiting"):
        add_agent(town, f"agent-{status}", status=status)
    agents = alarm_status(town).agents
    assert (agents.working, agents.idle, agents.stalled, agents.dead) == (2, 1, 1, 1)
    # `waiting` has no counter of its own but is part of the total, as upstream.
    assert agents.total == 6


def test_bead_counts_skip_agent_and_mail_beads(town: apsw.Connection) -> None:
    bead_with_status(town, "issue", "open")
    bead_with_status(town, "convoy", "open")
    bead_with_status(town, "issue", "in_progress")
    bead_with_status(town, "merge_request", "in_review")
    bead_with_status(town, "merge_request", "in_review")
    bead_with_status(town, "escalation", "failed")
    bead_with_status(town, "issue", "closed")
    bead_with_status(town, "message", "open")
    bead_with_status(town, "message", "failed")
    add_agent(town, "Toast")
    town.execute("UPDATE beads SET status = 'in_progress' WHERE type = 'agent'")
    beads = alarm_status(town).beads
    assert (beads.open, beads.inProgress, beads.inReview, beads.failed) == (2, 1, 2, 1)


def test_triage_requests_are_open_issues_with_the_label(town: apsw.Connection) -> None:
    label = ["gt:triage-request"]
    bead_with_status(town, "issue", "open", labels=label)
    bead_with_status(town, "issue", "open", labels=["x", "gt:triage-request"])
    bead_with_status(town, "issue", "closed", labels=label)
    bead_with_status(town, "message", "open", labels=label)
    bead_with_status(town, "issue", "open", labels=["gt:triage"])
    assert alarm_status(town).beads.triageRequests == 2


def test_gupp_counters_are_open_patrol_mail(town: apsw.Connection) -> None:
    bead_with_status(town, "message", "open", title="GUPP_CHECK")
    bead_with_status(town, "message", "open", title="GUPP_CHECK")
    bead_with_status(town, "message", "closed", title="GUPP_CHECK")
    bead_with_status(town, "message", "open", title="GUPP_ESCALATION")
    bead_with_status(town, "issue", "open", title="GUPP_ESCALATION")
    patrol = alarm_status(town).patrol
    assert (patrol.guppWarnings, patrol.guppEscalations) == (2, 1)


def test_stalled_agents_and_orphaned_hooks(town: apsw.Connection) -> None:
    hook = create_bead(town, type="issue", title="hooked", rig_id="rig-1").bead_id
    add_agent(town, "old-idle", hook=hook, last_activity_at=ago(minutes=6))
    add_agent(town, "never-active", hook=hook)
    add_agent(town, "just-hooked", hook=hook, last_activity_at=ago(minutes=1))
    add_agent(town, "busy", status="working", hook=hook, last_activity_at=ago(hours=2))
    add_agent(town, "unhooked", last_activity_at=ago(hours=2))
    add_agent(town, "stuck", status="stalled", hook=hook, last_activity_at=ago(hours=2))
    patrol = alarm_status(town).patrol
    assert (patrol.stalledAgents, patrol.orphanedHooks) == (1, 2)


def _working_agent(town: apsw.Connection) -> None:
    add_agent(town, "w", status="working")


def _recently_stalled_agent(town: apsw.Connection) -> None:
    add_agent(town, "s", status="stalled", last_activity_at=ago(minutes=10))


def _hooked_idle_agent(town: apsw.Connection) -> None:
    add_agent(town, "h", hook=create_bead(town, type="molecule", title="m").bead_id)


def _open_merge_request(town: apsw.Connection) -> None:
    bead_with_status(town, "merge_request", "in_progress")


def _open_triage_request(town: apsw.Connection) -> None:
    bead_with_status(town, "issue", "open", labels=["gt:triage-request"])


def _unassigned_rig_issue(town: apsw.Connection) -> None:
    bead_with_status(town, "issue", "open", rig_id="rig-1")


@pytest.mark.parametrize(
    "make_work",
    [
        _working_agent,
        _recently_stalled_agent,
        _hooked_idle_agent,
        _open_merge_request,
        _open_triage_request,
        _unassigned_rig_issue,
    ],
)
def test_active_work_selects_the_fast_cadence(
    town: apsw.Connection, make_work: Callable[[apsw.Connection], None]
) -> None:
    make_work(town)
    alarm = alarm_status(town).alarm
    assert (alarm.intervalMs, alarm.intervalLabel, alarm.nextFireAt) == (5_000, "active (5s)", None)


def test_no_active_work_keeps_the_idle_cadence(town: apsw.Connection) -> None:
    add_agent(town, "old-stall", status="stalled", last_activity_at=ago(minutes=31))
    add_agent(town, "idle")
    agent = add_agent(town, "assignee")
    assign(town, bead_with_status(town, "issue", "open", rig_id="rig-1"), agent)
    bead_with_status(town, "issue", "open")  # no rig: not dispatchable
    bead_with_status(town, "merge_request", "in_review")
    bead_with_status(town, "issue", "closed", labels=["gt:triage-request"], rig_id="rig-1")
    assert alarm_status(town).alarm.intervalLabel == "idle (5m)"


def test_interval_comes_from_town_config(town: apsw.Connection) -> None:
    update_config(town, TownConfigUpdate(alarm_interval_active=30, alarm_interval_idle=600))
    idle = alarm_status(town).alarm
    assert (idle.intervalMs, idle.intervalLabel) == (600_000, "idle (10m)")
    _working_agent(town)
    active = alarm_status(town).alarm
    assert (active.intervalMs, active.intervalLabel) == (30_000, "active (30s)")
    update_config(town, TownConfigUpdate(alarm_interval_active=90))
    assert alarm_status(town).alarm.intervalLabel == "active (90s)"


def test_damaged_interval_config_reads_as_defaults(town: apsw.Connection) -> None:
    kv_put(town, CONFIG_KEY, {"alarm_interval_active": 1, "alarm_interval_idle": "soon"})
    assert alarm_status(town).alarm.intervalLabel == "idle (5m)"
    _working_agent(town)
    assert alarm_status(town).alarm.intervalLabel == "active (5s)"


def test_recent_events_are_the_newest_twenty_formatted_like_upstream(
    town: apsw.Connection,
) -> None:
    bead = create_bead(town, type="issue", title="Fix login").bead_id
    town.execute("DELETE FROM bead_events")
    agent = "abcdef12-3456-7890-abcd-ef1234567890"
    gone = "deadbeef-0000-0000-0000-000000000000"
    events = [
        (bead, "status_changed", agent, "closed"),
        (bead, "status_changed", None, None),
        (bead, "assigned", agent, None),
        (bead, "pr_created", None, None),
        (bead, "pr_creation_failed", None, None),
        (bead, "agent_status", agent, "Running tests"),
        (bead, "agent_status", None, None),
        (gone, "created", None, "open"),
        (bead, "babysit_started", None, None),
    ]
    for i, (bead_id, event_type, agent_id, new_value) in enumerate(events):
        record_bead_event(
            town,
            bead_id=bead_id,
            event_type=event_type,
            agent_id=agent_id,
            new_value=new_value,
            created_at=f"2026-04-01T10:00:{i:02d}.000Z",
        )
    assert [wire(e) for e in alarm_status(town).recentEvents] == [
        {"time": "2026-04-01T10:00:08.000Z", "type": "babysit_started",
         "message": 'babysit_started: "Fix login"'},
        {"time": "2026-04-01T10:00:07.000Z", "type": "created", "message": "created: bead deadbeef…"},
        {"time": "2026-04-01T10:00:06.000Z", "type": "agent_status", "message": "system: status update"},
        {"time": "2026-04-01T10:00:05.000Z", "type": "agent_status",
         "message": "agent abcdef12…: Running tests"},
        {"time": "2026-04-01T10:00:04.000Z", "type": "pr_creation_failed",
         "message": 'PR creation failed for "Fix login"'},
        {"time": "2026-04-01T10:00:03.000Z", "type": "pr_created", "message": 'PR created for "Fix login"'},
        {"time": "2026-04-01T10:00:02.000Z", "type": "assigned",
         "message": '"Fix login" assigned to agent abcdef12…'},
        {"time": "2026-04-01T10:00:01.000Z", "type": "status_changed",
         "message": '"Fix login" → ? (by system)'},
        {"time": "2026-04-01T10:00:00.000Z", "type": "status_changed",
         "message": '"Fix login" → closed (by agent abcdef12…)'},
    ]  # fmt: skip


def test_recent_events_stop_at_twenty(town: apsw.Connection) -> None:
    bead = create_bead(town, type="issue", title="t").bead_id
    town.execute("DELETE FROM bead_events")
    for i in range(30):
        record_bead_event(
            town, bead_id=bead, event_type="fields_updated", created_at=f"2026-04-02T00:00:{i:02d}.000Z"
        )
    feed = recent_events(town)
    assert len(feed) == 20
    assert feed[0].time == "2026-04-02T00:00:29.000Z" and feed[-1].time == "2026-04-02T00:00:10.000Z"
    assert count(town, "SELECT count(*) FROM bead_events") == 30


def test_billing_reads_disabled_with_the_stored_run_policy(town: apsw.Connection) -> None:
    assert billing_status(town) == BillingStatus(enabled=False, state="idle", runPolicy="automatic")
    paused = set_run_policy(town, "paused_by_user")
    assert wire(paused) == {"enabled": False, "state": "paused", "runPolicy": "paused_by_user", "enforcing": False}
    assert kv_get(town, RUN_POLICY_KEY) == "paused_by_user"
    assert wire(alarm_status(town, with_billing=True))["billing"] == wire(paused)
    resumed = set_run_policy(town, "automatic")
    assert wire(resumed) == {"enabled": False, "state": "idle", "runPolicy": "automatic", "enforcing": False}


def test_run_policy_rejects_unknown_values(town: apsw.Connection) -> None:
    with pytest.raises(BadRequest, match="sometimes"):
        set_run_policy(town, "sometimes")
    assert kv_get(town, RUN_POLICY_KEY) is None
    kv_put(town, RUN_POLICY_KEY, "garbage")
    assert billing_status(town).runPolicy == "automatic"


def test_billing_optional_keys_appear_only_when_set() -> None:
    status = BillingStatus(
        enabled=True,
        state="running",
        runPolicy="automatic",
        payer=BillingPayer(type="org", id="org-1"),
        remaining=4.5,
        runUsageSeconds=900,
    )
    assert wire(status) == {
        "enabled": True,
        "state": "running",
        "runPolicy": "automatic",
        "enforcing": False,
        "payer": {"type": "org", "id": "org-1"},
        "remaining": 4.5,
        "runUsageSeconds": 900,
    }
