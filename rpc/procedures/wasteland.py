"""A town's wasteland connection (one active connection per town, as upstream's POC)."""

from __future__ import annotations

import msgspec

from dos.town_do import TownDO
from rpc.access import TownRule
from rpc.inputs import ConnectWastelandInput, DisconnectWastelandInput, TownIdInput
from rpc.procedures.common import town_stub
from rpc.router import CallContext, Procedure
from town.wasteland import WastelandConnection

G = "gastown."


class Success(msgspec.Struct, kw_only=True):
    success: bool


async def get_connection(ctx: CallContext, p: TownIdInput) -> WastelandConnection | None:
    return await town_stub(ctx).call(TownDO.wasteland_connection)


async def connect(ctx: CallContext, p: ConnectWastelandInput) -> WastelandConnection:
    return await town_stub(ctx).call(
        TownDO.connect_wasteland,
        wasteland_id=str(p.wastelandId),
        upstream=p.upstream,
        rig_handle=p.rigHandle,
        dolthub_org=p.dolthubOrg,
    )


async def disconnect(ctx: CallContext, p: DisconnectWastelandInput) -> Success:
    await town_stub(ctx).call(TownDO.disconnect_wasteland, str(p.wastelandId))
    return Success(success=True)


PROCEDURES = [
    Procedure(G + "getTownWastelandConnection", "query", TownIdInput, TownRule("read"), get_connection),
    Procedure(G + "connectTownToWasteland", "mutation", ConnectWastelandInput, TownRule("write"), connect),
    Procedure(G + "disconnectTownFromWasteland", "mutation", DisconnectWastelandInput, TownRule("write"), disconnect),
]
