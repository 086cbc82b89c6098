"""Agents of the demo town (town/demo.py): agent beads, their `agent_metadata` rows with
upstream-style identities, and their nudges."""

from __future__ import annotations

from town import demo_text as text
from town.demo_rows import MINUTE, Agent, HistoryWriter, iso_ms, json_text


class AgentWriter(HistoryWriter):
    def add_agent(
        self,
        role: str,
        name: str,
        rig_id: str | None,
        status: str = "open",
        agent_status: str = "idle",
    ) -> Agent:
        identity = (
            f"mayor-{self.town8}"
            if role == "mayor"
            else f"{name}-{role}-{(rig_id or '')[:8]}@{self.town8}"
        )
        agent = Agent(self.uid(), name, role, rig_id, identity, agent_status)
        # Registered before its bead is written: the bead's own events name an agent.
        if status == "open":
            self.agents.append(agent)
            if role == "polecat":
                self.polecats.setdefault(rig_id, []).append(agent)
        _, done = self.bead(
            type="agent",
            status=status,
            title=name,
            rig_id=rig_id,
            created_by="system",
            labels=[f"gt:{role}"],
            metadata={"role": role},
            bead_id=agent.bead_id,
        )
        if status != "open":
            self.extra_agents.append((agent, done))
        return agent

    def seed_agents(self) -> None:
        budget = max(1, self.total // 3)
        self.add_agent("mayor", "mayor", None, agent_status="working")
        for rig_id in self.live_rigs or [self.ghost_rig]:
            for role, name in (
                ("refinery", "refinery"),
                *(("polecat", n) for n in text.POLECAT_NAMES[:3]),
            ):
                if self.made >= budget:
                    return
                self.add_agent(
                    role,
                    name,
                    rig_id,
                    agent_status=self.rng.choice(
                        ("idle", "working", "working", "waiting", "stalled")
                    ),
                )

    def extra_agent(self, status: str) -> None:
        self.add_agent(
            "polecat",
            f"Polecat-{self.made}",
            self.rig(),
            status=status,
            agent_status={"in_progress": "working", "in_review": "waiting"}.get(
                status, "dead" if status in ("closed", "failed") else "idle"
            ),
        )

    def write_agent_rows(self) -> None:
        """Satellite rows and nudges of every agent, once the hooks are known."""
        rng = self.rng
        everyone = [(a, self.start_ms) for a in self.agents] + self.extra_agents
        for agent, seen in everyone:
            last = self.later(max(seen, self.end_ms - 3 * 24 * 60 * MINUTE))
            working = agent.status in ("working", "stalled", "waiting")
            self.rows["agent_metadata"].append(
                (
                    agent.bead_id,
                    agent.role,
                    agent.identity,
                    f"proc-{rng.getrandbits(32):08x}" if working else None,
                    agent.status,
                    self.hooks.get(agent.bead_id) if working else None,
                    rng.randint(0, 4),
                    json_text({"step": rng.randint(1, 9)}) if working else None,
                    iso_ms(last),
                    rng.choice(text.STATUS_MESSAGES) if working else None,
                    iso_ms(last) if working else None,
                    "tool_use" if working else None,
                    iso_ms(last) if working else None,
                    json_text(rng.sample(text.TOOLS, 2)) if working else "[]",
                    iso_ms(last) if agent.status == "stalled" else None,
                )
            )
        if self.agents:
            for _ in range(max(2 * len(self.agents), self.total // 50)):
                agent = rng.choice(self.agents)
                created = rng.randint(self.start_ms, self.end_ms)
                mode = rng.choice(("wait-idle", "wait-idle", "immediate", "queue"))
                delivered = None if rng.random() < 0.2 else iso_ms(self.later(created, 0, 30))
                self.rows["agent_nudges"].append(
                    (
                        self.uid(),
                        agent.bead_id,
                        rng.choice(text.STATUS_MESSAGES) + "?",
                        mode,
                        rng.choice(("normal", "normal", "urgent")),
                        rng.choice(("reconciler", "triage", "mayor", "system")),
                        iso_ms(created),
                        delivered,
                        iso_ms(created + 60 * MINUTE) if mode == "queue" else None,
                    )
                )
