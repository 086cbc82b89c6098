"""Convoy procedures: read, land (close), start a staged one, and change its members."""

from __future__ import annotations

import msgspec

from dos.town_do import TownDO
from rpc.access import TownRule
from rpc.inputs import ConvoyAddBeadInput, ConvoyBeadInput, GetConvoyInput, TownIdInput
from rpc.procedures.common import town_stub
from rpc.router import CallContext, Procedure
from town.convoys import ConvoyDetail

G = "gastown."


class ConvoySize(msgspec.Struct, kw_only=True):
    total_beads: int


async def list_convoys(ctx: CallContext, p: TownIdInput) -> list[ConvoyDetail]:
    """Convoys not yet landed, newest first, with their beads and dependency edges."""
    return await town_stub(ctx).call(TownDO.list_convoys)


async def get_convoy(ctx: CallContext, p: GetConvoyInput) -> ConvoyDetail | None:
    return await town_stub(ctx).call(TownDO.get_convoy, str(p.convoyId))


async def close_convoy(ctx: CallContext, p: GetConvoyInput) -> ConvoyDetail | None:
    """Land a convoy now: its unfinished beads are closed with it."""
    return await town_stub(ctx).call(TownDO.close_convoy, str(p.convoyId))


async def start_convoy(ctx: CallContext, p: GetConvoyInput) -> ConvoyDetail | None:
    """Un-stage a staged convoy."""
    return await town_stub(ctx).call(TownDO.start_convoy, str(p.convoyId))


async def convoy_add_bead(ctx: CallContext, p: ConvoyAddBeadInput) -> ConvoySize:
    """Track a bead in a convoy (optionally after other beads)."""
    depends_on = None if p.depends_on is None else [str(d) for d in p.depends_on]
    total = await town_stub(ctx).call(TownDO.convoy_add_bead, str(p.convoyId), str(p.beadId), depends_on)
    return ConvoySize(total_beads=total)


async def convoy_remove_bead(ctx: CallContext, p: ConvoyBeadInput) -> ConvoySize:
    total = await town_stub(ctx).call(TownDO.convoy_remove_bead, str(p.convoyId), str(p.beadId))
    return ConvoySize(total_beads=total)


PROCEDURES = [
    Procedure(G + "listConvoys", "query", TownIdInput, TownRule("read"), list_convoys),
    Procedure(G + "getConvoy", "query", GetConvoyInput, TownRule("read"), get_convoy),
    Procedure(G + "closeConvoy", "mutation", GetConvoyInput, TownRule("write"), close_convoy),
    Procedure(G + "startConvoy", "mutation", GetConvoyInput, TownRule("write"), start_convoy),
    Procedure(G + "convoyAddBead", "mutation", ConvoyAddBeadInput, TownRule("write"), convoy_add_bead),
    Procedure(G + "convoyRemoveBead", "mutation", ConvoyBeadInput, TownRule("write"), convoy_remove_bead),
]
