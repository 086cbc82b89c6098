"""Town procedures: create, list, get, delete (personal and org) and town config."""

from __future__ import annotations

from dos import lifecycle
from dos.owner_do import GastownOrgDO, GastownUserDO
from dos.town_do import TownDO
from rpc.access import Authenticated, OrgRule, TownRule
from rpc.inputs import (
    CreateOrgTownInput,
    CreateTownInput,
    NoInput,
    OrgInput,
    OrgTownInput,
    TownIdInput,
    UpdateTownConfigInput,
)
from rpc.procedures.common import minter, owner_stub, target, town_stub
from rpc.router import CallContext, Procedure
from town.config import TownConfig, mask_config
from town.owners import OrgTown, Town

G = "gastown."


async def create_town(ctx: CallContext, p: CreateTownInput) -> Town:
    owner = lifecycle.Owner("user", ctx.caller.user_id, ctx.caller.user_id)
    town = await lifecycle.create_town(ctx.services.runtime, minter(ctx), owner=owner, name=p.name)
    assert isinstance(town, Town)
    return town


async def list_towns(ctx: CallContext, p: NoInput) -> list[Town]:
    users = ctx.services.runtime.namespace(GastownUserDO)
    return await users.get(ctx.caller.user_id).call(GastownUserDO.list_towns)


async def get_town(ctx: CallContext, p: TownIdInput) -> Town | OrgTown:
    town = await owner_stub(ctx).call(GastownUserDO.get_town if target(ctx).owner_kind == "user" else GastownOrgDO.get_town, str(p.townId))
    assert town is not None  # the access rule just found it
    return town


async def delete_town(ctx: CallContext, p: TownIdInput) -> None:
    t = target(ctx)
    await lifecycle.delete_town(ctx.services.runtime, owner_kind=t.owner_kind, owner_id=t.owner_id, town_id=t.town_id)


async def create_org_town(ctx: CallContext, p: CreateOrgTownInput) -> OrgTown:
    owner = lifecycle.Owner("org", str(p.organizationId), ctx.caller.user_id)
    town = await lifecycle.create_town(ctx.services.runtime, minter(ctx), owner=owner, name=p.name)
    assert isinstance(town, OrgTown)
    return town


async def list_org_towns(ctx: CallContext, p: OrgInput) -> list[OrgTown]:
    orgs = ctx.services.runtime.namespace(GastownOrgDO)
    org_id = str(p.organizationId)
    if not orgs.exists(org_id):
        return []
    return await orgs.get(org_id).call(GastownOrgDO.list_towns)


async def get_town_config(ctx: CallContext, p: TownIdInput) -> TownConfig:
    config = await town_stub(ctx).call(TownDO.get_config)
    return config if target(ctx).may_see_secrets else mask_config(config)


async def update_town_config(ctx: CallContext, p: UpdateTownConfigInput) -> TownConfig:
    config = await town_stub(ctx).call(TownDO.update_config, p.config)
    return config if target(ctx).may_see_secrets else mask_config(config)


PROCEDURES = [
    Procedure(G + "createTown", "mutation", CreateTownInput, Authenticated(), create_town),
    Procedure(G + "listTowns", "query", NoInput, Authenticated(), list_towns),
    Procedure(G + "getTown", "query", TownIdInput, TownRule("read"), get_town),
    Procedure(G + "deleteTown", "mutation", TownIdInput, TownRule("delete"), delete_town),
    Procedure(G + "createOrgTown", "mutation", CreateOrgTownInput, OrgRule("write"), create_org_town),
    Procedure(G + "listOrgTowns", "query", OrgInput, OrgRule("read"), list_org_towns),
    Procedure(G + "deleteOrgTown", "mutation", OrgTownInput, TownRule("delete"), delete_town),
    Procedure(G + "getTownConfig", "query", TownIdInput, TownRule("read"), get_town_config),
    Procedure(G + "updateTownConfig", "mutation", UpdateTownConfigInput, TownRule("configure"), update_town_config),
]
