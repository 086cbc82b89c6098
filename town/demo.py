"""Demo town: fills a TownDO database with a realistic, deterministic history.

Used by the dev-mode seed and by benchmarks (100,000 beads / 1,000,000 events). Rows are
generated and written in chunks with `executemany`, so memory stays bounded whatever the size;
the caller's transaction wraps the whole run. Everything random comes from one
`random.Random(seed)`, timestamps from `end_at` backwards, so a seed and an `end_at` give the
same database every time.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import apsw

from dos.kv import kv_get
from town import demo_text as text
from town.demo_agents import AgentWriter
from town.demo_rows import (
    CHUNK_BEADS,
    PRIORITY_WEIGHTS,
    DemoStats,
    iso_ms,
)

__all__ = ["DemoStats", "populate_town"]

_TYPE_WEIGHTS = {
    "issue": 40,
    "message": 17,
    "merge_request": 16,
    "escalation": 7,
    "convoy": 5,
    "molecule": 5,
    "agent": 1,
}
# More finished work than active work, as in a town that has been running for weeks.
_STATUS_WEIGHTS = {"closed": 52, "failed": 12, "open": 14, "in_progress": 12, "in_review": 10}


class _Builder(AgentWriter):
    """Groups of related beads: an issue, a message, a convoy with its members, …"""

    def issue(
        self,
        status: str,
        *,
        rig_id: str | None = None,
        parent: str | None = None,
        labels: list[str] | None = None,
        title: str | None = None,
        created_ms: int | None = None,
        done_after: int = 0,
    ) -> tuple[str, int]:
        rng = self.rng
        rig_id = rig_id or self.rig()
        title = title or text.issue_title(rng)
        agent = self.agent_for(rig_id)
        assignee = agent.bead_id if status != "open" or rng.random() < 0.3 else None
        labels = list(labels or [])
        if status == "open" and rng.random() < 0.5:
            labels.append("gt:held")
        if rng.random() < 0.08:
            labels.append(rng.choice(("gt:rework", "gt:triage-request", "gt:triage")))
        roll = rng.random()
        metadata = (
            {"rig_id": rig_id}
            if roll < 0.12
            else {"rigId": rig_id}
            if roll < 0.2
            else {"source": "mayor"}
            if roll < 0.4
            else {}
        )
        creator = rng.choice((self.actor, self.actor, self.agents[0].bead_id, agent.bead_id))
        blocker = (
            self.recent_issues[-rng.randint(1, len(self.recent_issues))][0]
            if self.recent_issues and rng.random() < 0.2
            else None
        )
        bead_id, done = self.bead(
            type="issue",
            status=status,
            title=title,
            body=text.issue_body(rng, title),
            rig_id=rig_id,
            parent=parent,
            assignee=assignee,
            labels=labels,
            metadata=metadata,
            created_by=creator,
            created_ms=created_ms,
            done_after=done_after,
        )
        if blocker:
            self.edge(bead_id, blocker, "blocks")
        if status == "in_progress" and assignee:
            self.hooks[assignee] = bead_id
        self.recent_issues.append((bead_id, rig_id))
        return bead_id, done

    def message(self, status: str) -> None:
        sender, recipient = self.rng.choice(self.agents), self.rng.choice(self.agents)
        subject = text.fill(
            self.rng,
            self.rng.choice(text.MAIL_SUBJECTS),
            branch=f"gt/{sender.name.lower()}/{self.uid()[:8]}",
        )
        self.bead(
            type="message",
            status=status,
            title=subject,
            body=f"{subject}\n\n— {sender.name}",
            rig_id=None,
            assignee=recipient.bead_id,
            created_by=sender.bead_id,
            labels=["gt:message", f"from:{sender.bead_id}"],
            metadata={"from": sender.bead_id, "to": recipient.bead_id},
            priority="medium",
        )

    def escalation(self, status: str) -> None:
        rng, rig_id = self.rng, self.rig()
        agent = self.agent_for(rig_id)
        severity = self.pick(PRIORITY_WEIGHTS)
        reason = text.fill(
            rng,
            rng.choice(text.ESCALATION_REASONS),
            agent=agent.name,
            branch=f"gt/{agent.name.lower()}/{self.uid()[:8]}",
        )
        bead_id, done = self.bead(
            type="escalation",
            status=status,
            title=f"Escalation: {reason}"[:100],
            body=reason,
            rig_id=rig_id,
            created_by=agent.bead_id,
            labels=["gt:escalation", f"severity:{severity}"],
            priority=severity if severity in ("critical", "high") else "medium",
        )
        if rng.random() < 0.8:  # merge-conflict escalations have no satellite row, as upstream
            acked = status == "closed" or rng.random() < 0.2
            self.rows["escalation_metadata"].append(
                (
                    bead_id,
                    severity,
                    rng.choice(("merge_conflict", "ci", "blocked", None)),
                    int(acked),
                    rng.randint(0, 3),
                    iso_ms(done) if acked else None,
                )
            )

    def merge_request(self, status: str) -> None:
        rng = self.rng
        source, rig_id = (
            self.recent_issues[-rng.randint(1, len(self.recent_issues))]
            if self.recent_issues
            else (None, self.rig())
        )
        agent = self.agent_for(rig_id)
        branch = f"gt/{agent.name.lower()}/{(source or self.uid())[:8]}"
        pr_url = (
            f"https://github.com/acme/app/pull/{rng.randint(1, 9999)}"
            if rng.random() < 0.7
            else None
        )
        metadata: dict[str, Any] = {"source_bead_id": source, "source_agent_id": agent.bead_id}
        if pr_url:
            metadata["pr_url"] = pr_url
        if rng.random() < 0.2:
            metadata["rigId"] = rig_id
        labels = ["gt:merge-request"] + (["gt:babysit"] if rng.random() < 0.1 else [])
        bead_id, done = self.bead(
            type="merge_request",
            status=status,
            title=f"Review: {branch}",
            rig_id=rig_id,
            created_by=agent.bead_id,
            assignee=agent.bead_id,
            labels=labels,
            metadata=metadata,
        )
        waiting = status in ("open", "in_review") and pr_url is not None
        self.rows["review_metadata"].append(
            (
                bead_id,
                branch,
                rng.choice(("main", "main", "develop")),
                f"{rng.getrandbits(160):040x}" if status == "closed" else None,
                pr_url,
                rng.randint(0, 2),
                iso_ms(done) if waiting and rng.random() < 0.5 else None,
                iso_ms(self.later(done)) if waiting and rng.random() < 0.6 else None,
            )
        )
        if source:
            self.edge(bead_id, source, "tracks")

    def convoy(self, status: str) -> None:
        rng = self.rng
        convoy_id, created = self.uid(), self.next_ms()
        self.made += 1  # reserve the convoy's slot so members are created after it
        landed = status == "closed" and rng.random() < 0.7
        if landed:
            member_states = ["closed"]
        elif status in ("closed", "failed"):
            member_states = ["closed", "failed"]
        else:
            member_states = ["closed", "open", "in_progress", "in_review"]
        count = min(rng.randint(2, 5), self.total - self.made)
        rig_id, last_done, finished = self.rig(), created, 0
        members: list[str] = []
        subject = text.issue_title(rng)
        for _ in range(count):
            state = rng.choice(member_states)
            member, done = self.issue(state, rig_id=rig_id)
            self.edge(member, convoy_id, "tracks")
            if members and rng.random() < 0.5:
                self.edge(member, members[-1], "blocks")
            members.append(member)
            last_done = max(last_done, done)
            finished += state in ("closed", "failed")
        self.made -= 1
        feature = (
            f"convoy/{text.slug(subject)}/{convoy_id[:8]}/head" if rng.random() < 0.7 else None
        )
        _, done = self.bead(
            type="convoy",
            status=status,
            title=f"Convoy: {subject}",
            rig_id=None,
            created_by=self.actor,
            labels=["gt:convoy"],
            metadata={"feature_branch": feature} if feature else {},
            bead_id=convoy_id,
            created_ms=created,
            done_after=last_done,
        )
        self.rows["convoy_metadata"].append(
            (
                convoy_id,
                count,
                finished,
                iso_ms(done) if landed else None,
                feature,
                rng.choice((None, "review-then-land", "review-and-merge")),
                int(status in ("open", "in_progress") and rng.random() < 0.3),
            )
        )

    def molecule(self, status: str) -> None:
        rng, rig_id = self.rng, self.rig()
        source = self.recent_issues[-1][0] if self.recent_issues else None
        subject = text.issue_title(rng)
        mol_id, _ = self.bead(
            type="molecule",
            status=status,
            title=f"Molecule: {subject}",
            rig_id=rig_id,
            created_by=self.agents[0].bead_id,
            labels=["gt:molecule"],
            metadata={"source_bead_id": source, "formula": rng.choice(text.FORMULAS)},
        )
        steps = min(rng.randint(2, 4), self.total - self.made)
        active = rng.randrange(steps) if steps else 0
        previous: str | None = None
        for i in range(steps):
            if status == "closed" or i < active:
                state = "closed"
            elif i == active:
                state = "failed" if status == "failed" else "in_progress"
            else:
                state = "open"
            step_id, _ = self.issue(
                state,
                rig_id=rig_id,
                parent=mol_id,
                labels=["gt:molecule-step", f"step:{i}"],
                title=f"{text.STEP_NAMES[i]}: {subject}",
            )
            if previous:
                self.edge(step_id, previous, "blocks")
            previous = step_id

    # -- driving ------------------------------------------------------------------------
    def run(self) -> DemoStats:
        groups: dict[str, Callable[[str], Any]] = {
            "issue": self.issue,
            "message": self.message,
            "escalation": self.escalation,
            "merge_request": self.merge_request,
            "convoy": self.convoy,
            "molecule": self.molecule,
            "agent": self.extra_agent,
        }
        if self.total > 0:
            self.seed_agents()
        while self.made < self.total:
            if self.coverage:
                kind, status = self.coverage.pop(0)
            else:
                kind = self.pick(_TYPE_WEIGHTS)
                status = (
                    ("closed" if self.rng.random() < 0.85 else "open")
                    if kind == "message"
                    else self.pick(_STATUS_WEIGHTS)
                )
            groups[kind](status)
            if len(self.rows["beads"]) >= CHUNK_BEADS:
                self.flush()
        self.write_agent_rows()
        self.flush()
        return self.stats


def populate_town(
    conn: apsw.Connection,
    *,
    rig_ids: list[str],
    beads: int = 200,
    events_per_bead: int = 5,
    seed: int = 0,
    actor_user_id: str,
    progress: Callable[[int], None] | None = None,
    town_id: str | None = None,
    end_at: datetime | None = None,
) -> DemoStats:
    """Fill the town tables with `beads` beads (about beads * events_per_bead events) of history.

    `town_id` (else KV `town:id`) names agent identities; `end_at` (default now) is the time
    the history ends. Runs inside the caller's transaction.
    """
    rng = random.Random(seed)
    town = town_id or kv_get(conn, "town:id") or str(uuid.UUID(int=rng.getrandbits(128), version=4))
    end = end_at or datetime.now(UTC)
    builder = _Builder(
        conn,
        rng,
        rig_ids=rig_ids,
        town_id=str(town),
        total=beads,
        events_per_bead=events_per_bead,
        actor=actor_user_id,
        end_ms=int(end.timestamp() * 1000),
        progress=progress,
    )
    return builder.run()
