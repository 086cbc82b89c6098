"""gastown.listForks: the towns forked from a town, as far as the caller may read them."""

from __future__ import annotations

import asyncio

from dos.lineage_do import forks_of
from dos.owner_do import GastownOrgDO, GastownUserDO
from rpc.access import TownRule, may_read_owner
from rpc.inputs import TownIdInput
from rpc.procedures.common import target
from rpc.router import CallContext, Procedure
from town.lineage import ForkEntry
from town.owners import OrgTown, Town

G = "gastown."


async def _visible_row(ctx: CallContext, entry: ForkEntry) -> Town | OrgTown | None:
    """The fork's owner row if the caller may read it; None for a fork the caller may not
    read, or one that is not (or no longer) published: such forks are simply left out."""
    if not may_read_owner(ctx.caller, entry.owner_kind, entry.owner_id):
        return None
    runtime = ctx.services.runtime
    if entry.owner_kind == "user":
        users = runtime.namespace(GastownUserDO)
        if not users.exists(entry.owner_id):
            return None
        return await users.get(entry.owner_id).call(GastownUserDO.get_town, entry.town_id)
    orgs = runtime.namespace(GastownOrgDO)
    if not orgs.exists(entry.owner_id):
        return None
    return await orgs.get(entry.owner_id).call(GastownOrgDO.get_town, entry.town_id)


async def list_forks(ctx: CallContext, p: TownIdInput) -> list[Town | OrgTown]:
    """The towns forked from this town that the caller may read, newest first (each with its `forked_from`)."""
    entries = await forks_of(ctx.services.runtime, target(ctx).town_id)
    rows = await asyncio.gather(*(_visible_row(ctx, e) for e in entries))
    return [row for row in rows if row is not None]


PROCEDURES = [
    Procedure(G + "listForks", "query", TownIdInput, TownRule("read"), list_forks),
]
