"""Rig procedures: create (personal/org), list, get, delete, per-rig override config."""

from __future__ import annotations

import msgspec

from dos import lifecycle
from dos.owner_do import OwnerDO
from dos.town_do import TownDO
from rpc.access import TownRule
from rpc.errors import RpcError
from rpc.inputs import (
    CreateOrgRigInput,
    CreateRigInput,
    OrgTownInput,
    RigInput,
    TownIdInput,
    UpdateRigConfigInput,
)
from rpc.procedures.common import minter, owner_stub, target, town_stub
from rpc.router import CallContext, Procedure
from town.agents import Agent
from town.beads import Bead
from town.owners import Rig
from town.rigs import RigOverrideConfig, rig_override_config

G = "gastown."
RIG_BEADS_LIMIT = 500  # the rig page lists what is in progress; bounded like every list


class RigDetail(Rig, kw_only=True, frozen=True):
    """A rig plus its override config, its agents and its beads in progress (getRig /
    updateRigConfig)."""

    config: RigOverrideConfig
    agents: list[Agent]
    beads: list[Bead]


async def create_rig(ctx: CallContext, p: CreateRigInput) -> Rig:
    t = target(ctx)
    # The town's credentials act for its owner user; mint a fresh token only when the caller
    # is that user (upstream createRig does the same).
    config = await town_stub(ctx).call(TownDO.get_config)
    owner_user = config.owner_user_id if isinstance(config.owner_user_id, str) else ctx.caller.user_id
    token = minter(ctx)(owner_user) if owner_user == ctx.caller.user_id else None
    return await lifecycle.create_rig(
        ctx.services.runtime,
        owner_kind=t.owner_kind,
        owner_id=t.owner_id,
        town_id=t.town_id,
        user_id=owner_user,
        name=p.name,
        git_url=p.gitUrl,
        default_branch=p.defaultBranch,
        platform_integration_id=None if p.platformIntegrationId is None else str(p.platformIntegrationId),
        kilocode_token=token,
    )


async def list_rigs(ctx: CallContext, p: TownIdInput | OrgTownInput) -> list[Rig]:
    return await owner_stub(ctx).call(OwnerDO.list_rigs, target(ctx).town_id)


async def _detail(ctx: CallContext, rig_id: str) -> RigDetail:
    rig = await owner_stub(ctx).call(OwnerDO.get_rig, rig_id)
    town_rig, rig_agents, working = await town_stub(ctx).call(TownDO.rig_page, rig_id, RIG_BEADS_LIMIT)
    if rig is None or town_rig is None:
        raise RpcError("NOT_FOUND", f"Rig {rig_id} not found")
    return RigDetail(
        **msgspec.structs.asdict(rig), config=rig_override_config(town_rig), agents=rig_agents, beads=working
    )


async def get_rig(ctx: CallContext, p: RigInput) -> RigDetail:
    return await _detail(ctx, str(p.rigId))


async def delete_rig(ctx: CallContext, p: RigInput) -> None:
    t = target(ctx)
    await lifecycle.delete_rig(
        ctx.services.runtime, owner_kind=t.owner_kind, owner_id=t.owner_id, town_id=t.town_id, rig_id=str(p.rigId)
    )


async def update_rig_config(ctx: CallContext, p: UpdateRigConfigInput) -> RigDetail:
    await town_stub(ctx).call(TownDO.set_rig_config, str(p.rigId), p.config)
    return await _detail(ctx, str(p.rigId))


PROCEDURES = [
    Procedure(G + "createRig", "mutation", CreateRigInput, TownRule("write"), create_rig),
    Procedure(G + "createOrgRig", "mutation", CreateOrgRigInput, TownRule("write"), create_rig),
    Procedure(G + "listRigs", "query", TownIdInput, TownRule("read"), list_rigs),
    Procedure(G + "listOrgRigs", "query", OrgTownInput, TownRule("read"), list_rigs),
    Procedure(G + "getRig", "query", RigInput, TownRule("read", via="rig"), get_rig),
    Procedure(G + "deleteRig", "mutation", RigInput, TownRule("delete", via="rig"), delete_rig),
    Procedure(G + "updateRigConfig", "mutation", UpdateRigConfigInput, TownRule("configure", via="rig"), update_rig_config),
]
