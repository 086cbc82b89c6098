"""Upstream's admin tools (`admin*`): platform admins only, on any visible town. They are the
one place an admin may change a town (force a bead's status, reset an agent, bulk deletes)."""

from __future__ import annotations

from typing import Any

from dos.town_do import TownDO
from rpc.access import AdminRule
from rpc.inputs import (
    AdminBulkDeleteInput,
    AdminDeleteByStatusInput,
    AdminListBeadsInput,
    AdminTownEventsInput,
    TownAgentInput,
    TownBeadInput,
    TownIdInput,
)
from rpc.procedures.beads import Deleted
from rpc.procedures.common import town_stub
from rpc.router import CallContext, Procedure
from town.agents import Agent
from town.alarm_status import AlarmStatus
from town.bead_events import BeadEvent
from town.beads import Bead

G = "gastown."


async def list_beads(ctx: CallContext, p: AdminListBeadsInput) -> list[Bead]:
    return await town_stub(ctx).call(TownDO.list_beads, status=p.status, type=p.type, limit=p.limit)


async def list_agents(ctx: CallContext, p: TownIdInput) -> list[Agent]:
    return await town_stub(ctx).call(TownDO.list_agents, None)


async def force_reset_agent(ctx: CallContext, p: TownAgentInput) -> None:
    """Unhook the agent and set it idle."""
    await town_stub(ctx).call(TownDO.force_reset_agent, str(p.agentId))


async def force_close_bead(ctx: CallContext, p: TownBeadInput) -> Bead:
    return await town_stub(ctx).call(TownDO.force_close_bead, str(p.beadId))


async def force_fail_bead(ctx: CallContext, p: TownBeadInput) -> Bead:
    """Fail a bead with failure code `admin_force_fail`."""
    return await town_stub(ctx).call(TownDO.force_fail_bead, str(p.beadId))


async def get_alarm_status(ctx: CallContext, p: TownIdInput) -> AlarmStatus:
    return await town_stub(ctx).call(TownDO.get_alarm_status, with_billing=False)


async def get_town_events(ctx: CallContext, p: AdminTownEventsInput) -> list[BeadEvent]:
    return await town_stub(ctx).call(
        TownDO.list_bead_events, bead_id=None if p.beadId is None else str(p.beadId), since=p.since, limit=p.limit
    )


async def get_bead(ctx: CallContext, p: TownBeadInput) -> Bead | None:
    return await town_stub(ctx).call(TownDO.get_bead, str(p.beadId))


async def bulk_delete_beads(ctx: CallContext, p: AdminBulkDeleteInput) -> Deleted:
    return Deleted(await town_stub(ctx).call(TownDO.delete_beads, [str(b) for b in p.beadIds]))


async def delete_beads_by_status(ctx: CallContext, p: AdminDeleteByStatusInput) -> Deleted:
    return Deleted(await town_stub(ctx).call(TownDO.delete_beads_by_status, p.status, p.type, None))


async def debug_agent_metadata(ctx: CallContext, p: TownIdInput) -> list[dict[str, Any]]:
    """The raw `agent_metadata` rows (upstream declares no output schema for it)."""
    return await town_stub(ctx).call(TownDO.agent_metadata_rows)


PROCEDURES = [
    Procedure(G + "adminListBeads", "query", AdminListBeadsInput, AdminRule(), list_beads),
    Procedure(G + "adminListAgents", "query", TownIdInput, AdminRule(), list_agents),
    Procedure(G + "adminForceResetAgent", "mutation", TownAgentInput, AdminRule(), force_reset_agent),
    Procedure(G + "adminForceCloseBead", "mutation", TownBeadInput, AdminRule(), force_close_bead),
    Procedure(G + "adminForceFailBead", "mutation", TownBeadInput, AdminRule(), force_fail_bead),
    Procedure(G + "adminGetAlarmStatus", "query", TownIdInput, AdminRule(), get_alarm_status),
    Procedure(G + "adminGetTownEvents", "query", AdminTownEventsInput, AdminRule(), get_town_events),
    Procedure(G + "adminGetBead", "query", TownBeadInput, AdminRule(), get_bead),
    Procedure(G + "adminBulkDeleteBeads", "mutation", AdminBulkDeleteInput, AdminRule(), bulk_delete_beads),
    Procedure(G + "adminDeleteBeadsByStatus", "mutation", AdminDeleteByStatusInput, AdminRule(), delete_beads_by_status),
    Procedure(G + "debugAgentMetadata", "query", TownIdInput, AdminRule(), debug_agent_metadata),
]
