"""Small helpers the procedure modules share (object stubs for the call's target)."""

from __future__ import annotations

from typing import Any

from dos.owner_do import GastownOrgDO, GastownUserDO
from dos.runtime import Stub
from dos.town_do import TownDO
from rpc.access import TownTarget
from rpc.auth import mint_token
from rpc.router import CallContext


def target(ctx: CallContext) -> TownTarget:
    assert isinstance(ctx.target, TownTarget), "access rule did not resolve a town"
    return ctx.target


def town_stub(ctx: CallContext, town_id: str | None = None) -> Stub[TownDO]:
    return ctx.services.runtime.namespace(TownDO).get(town_id or target(ctx).town_id)


def owner_stub(ctx: CallContext) -> Stub[Any]:
    t = target(ctx)
    cls = GastownUserDO if t.owner_kind == "user" else GastownOrgDO
    return ctx.services.runtime.namespace(cls).get(t.owner_id)


def minter(ctx: CallContext):  # type: ignore[no-untyped-def]
    """Mint a kilocode_token (30 days, HS256 with the server secret) for a user id."""
    secret = ctx.services.settings.secret
    return lambda user_id: mint_token(secret, user_id)
