"""Row writer behind the demo town (town/demo.py): one bead with a plausible history of
events, edges, reconciler events, all buffered and flushed in chunks with `executemany`."""

from __future__ import annotations

import random
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

import apsw
import msgspec

from town import demo_text as text
from town.beads import BEAD_STATUSES, BEAD_TYPES

CHUNK_BEADS = 1000
SPAN_MS = 6 * 7 * 24 * 3600 * 1000  # history spread over the past six weeks
MINUTE = 60_000

INSERTS = {
    "beads": "INSERT INTO beads (bead_id, type, status, title, body, rig_id, parent_bead_id,"
    " assignee_agent_bead_id, priority, labels, metadata, dispatch_attempts,"
    " last_dispatch_attempt_at, created_by, created_at, updated_at, closed_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "bead_events": "INSERT INTO bead_events (bead_event_id, bead_id, agent_id, event_type,"
    " old_value, new_value, metadata, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    "bead_dependencies": "INSERT OR IGNORE INTO bead_dependencies (bead_id, depends_on_bead_id,"
    " dependency_type) VALUES (?, ?, ?)",
    "agent_metadata": "INSERT INTO agent_metadata (bead_id, role, identity, container_process_id,"
    " status, current_hook_bead_id, dispatch_attempts, checkpoint, last_activity_at,"
    " agent_status_message, agent_status_updated_at, last_event_type, last_event_at,"
    " active_tools, stalled_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "review_metadata": "INSERT INTO review_metadata (bead_id, branch, target_branch, merge_commit,"
    " pr_url, retry_count, auto_merge_ready_since, last_feedback_check_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    "escalation_metadata": "INSERT INTO escalation_metadata (bead_id, severity, category,"
    " acknowledged, re_escalation_count, acknowledged_at) VALUES (?, ?, ?, ?, ?, ?)",
    "convoy_metadata": "INSERT INTO convoy_metadata (bead_id, total_beads, closed_beads,"
    " landed_at, feature_branch, merge_mode, staged) VALUES (?, ?, ?, ?, ?, ?, ?)",
    "agent_nudges": "INSERT INTO agent_nudges (nudge_id, agent_bead_id, message, mode, priority,"
    " source, created_at, delivered_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "town_events": "INSERT INTO town_events (event_id, event_type, agent_id, bead_id, payload,"
    " created_at, processed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
}

# Status changes leading from `open` to each final status.
PATHS: dict[str, tuple[str, ...]] = {
    "open": (),
    "in_progress": ("in_progress",),
    "in_review": ("in_progress", "in_review"),
    "closed": ("in_progress", "in_review", "closed"),
    "failed": ("in_progress", "failed"),
}
PRIORITY_WEIGHTS = {"low": 20, "medium": 50, "high": 22, "critical": 8}
# Filler event types per bead type; `pr_merged`/`escalation_created` are outside the enum on
# purpose (upstream's formatter knows them), so readers meet unknown types.
FILLERS: dict[str, tuple[str, ...]] = {
    "issue": (
        "hooked",
        "assigned",
        "unhooked",
        "agent_status",
        "fields_updated",
        "rework_requested",
        "pr_created",
        "pr_creation_failed",
        "notification_failed",
        "triage_resolved",
        "escalated",
        "pr_merged",
    ),
    "message": ("mail_sent", "notification_failed"),
    "escalation": (
        "escalated",
        "notification_failed",
        "triage_resolved",
        "escalation_rate_spike",
        "escalation_created",
    ),
    "merge_request": (
        "review_submitted",
        "review_completed",
        "pr_created",
        "babysit_started",
        "rework_requested",
        "review_queue_depth_alert",
    ),
    "convoy": ("fields_updated", "review_queue_depth_alert", "hooked"),
    "molecule": ("fields_updated", "hooked", "agent_status"),
    "agent": (
        "agent_spawned",
        "agent_exited",
        "agent_status",
        "agent_restart_loop",
        "hooked",
        "unhooked",
    ),
}
TOWN_EVENT_TYPES = (
    "agent_done",
    "agent_completed",
    "container_status",
    "pr_status_changed",
    "bead_created",
    "bead_cancelled",
    "convoy_started",
    "nudge_timeout",
    "pr_feedback_detected",
    "pr_auto_merge",
    "auto_merge_cleared",
)


class DemoStats(msgspec.Struct, kw_only=True):
    """Rows written per table."""

    beads: int = 0
    bead_events: int = 0
    bead_dependencies: int = 0
    agent_metadata: int = 0
    review_metadata: int = 0
    escalation_metadata: int = 0
    convoy_metadata: int = 0
    agent_nudges: int = 0
    town_events: int = 0


class Agent(NamedTuple):
    bead_id: str
    name: str
    role: str
    rig_id: str | None
    identity: str
    status: str


def iso_ms(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


_json = msgspec.json.Encoder().encode


def json_text(value: Any) -> str:
    return _json(value).decode()


class HistoryWriter:
    """Shared state and primitives; the groups of related beads live in demo._Builder."""

    def __init__(
        self,
        conn: apsw.Connection,
        rng: random.Random,
        *,
        rig_ids: list[str],
        town_id: str,
        total: int,
        events_per_bead: int,
        actor: str,
        end_ms: int,
        progress: Callable[[int], None] | None,
    ) -> None:
        self.conn, self.rng, self.total, self.actor = conn, rng, total, actor
        self.events_per_bead, self.progress = events_per_bead, progress
        self.town8 = town_id[:8]
        self.live_rigs = list(rig_ids)
        self.ghost_rig = self.uid()  # a rig that has since been deleted
        self.end_ms = end_ms
        self.start_ms = end_ms - SPAN_MS
        self.step = SPAN_MS / max(total, 1)
        self.made = 0
        self.rows: dict[str, list[tuple[Any, ...]]] = {table: [] for table in INSERTS}
        self.stats = DemoStats()
        self.agents: list[Agent] = []
        self.polecats: dict[str | None, list[Agent]] = {}
        self.extra_agents: list[tuple[Agent, int]] = []
        self.hooks: dict[str, str] = {}
        self.recent_issues: deque[tuple[str, str | None]] = deque(maxlen=200)
        self.coverage = [(t, s) for s in BEAD_STATUSES for t in BEAD_TYPES]

    # -- primitives ---------------------------------------------------------------------
    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def pick(self, weights: dict[str, int]) -> str:
        return self.rng.choices(list(weights), weights=list(weights.values()))[0]

    def next_ms(self) -> int:
        """Creation time of the next bead: strictly increasing with the bead counter."""
        return int(self.start_ms + self.made * self.step + self.rng.random() * self.step * 0.9)

    def rig(self) -> str:
        if self.live_rigs and self.rng.random() < 0.94:
            return self.rng.choice(self.live_rigs)
        return self.ghost_rig

    def agent_for(self, rig_id: str | None) -> Agent:
        pool = self.polecats.get(rig_id) or [a for a in self.agents if a.role == "polecat"]
        return self.rng.choice(pool or self.agents)

    def later(self, ms: int, low: int = 1, high: int = 240) -> int:
        return min(ms + self.rng.randint(low * MINUTE, high * MINUTE), self.end_ms)

    # -- one bead with its history ------------------------------------------------------
    def bead(
        self,
        *,
        type: str,
        status: str,
        title: str,
        rig_id: str | None,
        created_by: str | None,
        body: str | None = None,
        parent: str | None = None,
        assignee: str | None = None,
        labels: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        priority: str | None = None,
        bead_id: str | None = None,
        created_ms: int | None = None,
        done_after: int = 0,
    ) -> tuple[str, int]:
        """Write one bead and its events; returns (bead_id, time it reached its status)."""
        rng = self.rng
        bead_id = bead_id or self.uid()
        created = created_ms if created_ms is not None else self.next_ms()
        self.made += 1
        path = ("closed",) if type == "message" and status == "closed" else PATHS[status]
        transitions = list(zip(("open", *path), path, strict=False))
        n = self.events_per_bead
        if n >= 2:
            n += rng.choice((-1, 0, 1))
        events: list[tuple[str, str | None, str | None, str | None, dict[str, Any]]] = []
        if n > 0:
            events.append(("created", "open", None, created_by, {"type": type, "title": title}))
            kept = transitions[max(0, len(transitions) - (n - 1)) :]
            for _ in range(n - 1 - len(kept)):
                events.append(self.filler(type, bead_id, rig_id))
            for old, new in kept:
                meta: dict[str, Any] = {}
                if new == "failed":
                    meta = {
                        "failure_reason": {
                            "code": "agent_exited",
                            "source": "reconciler",
                            "message": "Agent exited without completing",
                        }
                    }
                agent = assignee or (self.agent_for(rig_id).bead_id if self.agents else None)
                events.append(("status_changed", new, old, agent, meta))
        t = created
        done_ms = created
        for i, (etype, new_value, old_value, agent_id, meta) in enumerate(events):
            if i:
                t = self.later(t)
            if etype == "status_changed" and new_value == status:
                t = max(t, min(done_after + MINUTE, self.end_ms))
                done_ms = t
            self.rows["bead_events"].append(
                (
                    self.uid(),
                    bead_id,
                    agent_id,
                    etype,
                    old_value,
                    new_value,
                    json_text(meta),
                    iso_ms(t),
                )
            )
        if status != "open" and done_ms == created:
            done_ms = max(self.later(created), min(done_after + MINUTE, self.end_ms))
        attempts = (
            rng.randint(1, 3) if status != "open" and type in ("issue", "merge_request") else 0
        )
        self.rows["beads"].append(
            (
                bead_id,
                type,
                status,
                title,
                body,
                rig_id,
                parent,
                assignee,
                priority or self.pick(PRIORITY_WEIGHTS),
                json_text(labels or []),
                json_text(metadata or {}),
                attempts,
                iso_ms(self.later(created, 0, 30)) if attempts else None,
                created_by,
                iso_ms(created),
                iso_ms(max(t, done_ms)),
                iso_ms(done_ms) if status == "closed" else None,
            )
        )
        if rng.random() < 0.04:
            self.town_event(bead_id, type, assignee, done_ms, status)
        return bead_id, done_ms

    def filler(
        self, type: str, bead_id: str, rig_id: str | None
    ) -> tuple[str, str | None, str | None, str | None, dict[str, Any]]:
        """(event_type, new_value, old_value, agent_id, metadata) of one mid-life event."""
        rng = self.rng
        etype = rng.choice(FILLERS[type])
        agent = self.agent_for(rig_id)
        meta: dict[str, Any] = {}
        new: str | None = None
        old: str | None = None
        if etype in ("hooked", "assigned", "agent_spawned"):
            new = agent.bead_id
        elif etype in ("unhooked", "agent_exited"):
            old = agent.bead_id
        elif etype == "agent_status":
            new = rng.choice(text.STATUS_MESSAGES)
            meta = {"agent_name": agent.name, "rig_id": rig_id}
        elif etype == "fields_updated":
            new = rng.choice(("title", "body", "priority,labels", "title,body", "metadata"))
        elif etype in ("rework_requested", "review_completed"):
            new = self.uid() if etype == "rework_requested" else rng.choice(("merged", "rework"))
            meta = {"feedback": rng.choice(text.FEEDBACK)[:500]}
        elif etype in ("pr_created", "pr_merged"):
            new = f"https://github.com/acme/app/pull/{rng.randint(1, 9999)}"
            meta = {"rigId": rig_id} if rig_id and rng.random() < 0.5 else {}
        elif etype == "mail_sent":
            meta = {"to": agent.bead_id}
        else:
            meta = {"detail": etype.replace("_", " "), "rig_id": rig_id} if rig_id else {}
        return etype, new, old, agent.bead_id, meta

    def edge(self, bead_id: str, depends_on: str, kind: str) -> None:
        self.rows["bead_dependencies"].append((bead_id, depends_on, kind))

    def town_event(self, bead_id: str, type: str, agent: str | None, ms: int, status: str) -> None:
        pending = status not in ("closed", "failed") and self.rng.random() < 0.5
        self.rows["town_events"].append(
            (
                self.uid(),
                self.rng.choice(TOWN_EVENT_TYPES),
                agent,
                bead_id,
                json_text({"bead_type": type, "status": status}),
                iso_ms(ms),
                None if pending else iso_ms(self.later(ms, 0, 5)),
            )
        )

    def flush(self) -> None:
        for table, rows in self.rows.items():
            if rows:
                self.conn.executemany(INSERTS[table], rows)
                setattr(self.stats, table, getattr(self.stats, table) + len(rows))
                rows.clear()
        if self.progress is not None:
            self.progress(self.stats.beads)
