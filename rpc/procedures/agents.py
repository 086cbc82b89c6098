"""Agent procedures: agents are `agent` beads with their `agent_metadata` (listAgents,
deleteAgent, resetAgentDispatchAttempts), reached through a rig like upstream."""

from __future__ import annotations

from dos.town_do import TownDO
from rpc.access import TownRule
from rpc.inputs import RigAgentInput, RigInput
from rpc.procedures.common import town_stub
from rpc.router import CallContext, Procedure
from town.agents import Agent

G = "gastown."


async def list_agents(ctx: CallContext, p: RigInput) -> list[Agent]:
    """The rig's agents (polecats, refinery) with their operational status."""
    return await town_stub(ctx).call(TownDO.list_agents, str(p.rigId))


async def delete_agent(ctx: CallContext, p: RigAgentInput) -> None:
    """Remove an agent; its unfinished beads go back to `open`, unassigned."""
    await town_stub(ctx).call(TownDO.delete_agent, str(p.agentId), str(p.rigId))


async def reset_agent_dispatch_attempts(ctx: CallContext, p: RigAgentInput) -> None:
    """Clear an agent's dispatch-attempt counter."""
    await town_stub(ctx).call(TownDO.reset_agent_dispatch_attempts, str(p.agentId), str(p.rigId))


PROCEDURES = [
    Procedure(G + "listAgents", "query", RigInput, TownRule("read", via="rig"), list_agents),
    Procedure(G + "deleteAgent", "mutation", RigAgentInput, TownRule("write", via="rig"), delete_agent),
    Procedure(
        G + "resetAgentDispatchAttempts", "mutation", RigAgentInput, TownRule("write", via="rig"), reset_agent_dispatch_attempts
    ),
]
