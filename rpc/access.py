"""Access rules (rpc.md §3): who may do what to a town, and how a call finds its town.

A rule resolves the town (or org) a call is about into a `TownTarget` on the call context, then
checks the level. A town the caller may not read is NOT_FOUND (existence is not revealed);
one the caller may read but not change is FORBIDDEN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from dos.lifecycle import published_owner
from dos.owner_do import GastownOrgDO, GastownUserDO
from dos.town_do import TownDO
from rpc.auth import Caller
from rpc.errors import RpcError
from rpc.router import CallContext

Level = Literal["read", "write", "configure", "delete"]
Standing = Literal["personal_owner", "org_owner", "org_member", "admin"]


@dataclass(frozen=True)
class TownTarget:
    """A town the caller can at least read, and in what standing."""

    town_id: str
    owner_kind: Literal["user", "org"]
    owner_id: str  # user id or org id
    created_by_user_id: str | None
    standing: Standing
    caller_id: str

    @property
    def is_creator(self) -> bool:
        return self.created_by_user_id is not None and self.created_by_user_id == self.caller_id

    def allows(self, level: Level) -> bool:
        if level == "read":
            return True
        if self.standing == "admin":
            return False  # admins read everything and change nothing
        if level == "write":
            return True
        if self.standing in ("personal_owner", "org_owner"):
            return True
        return level == "configure" and self.is_creator

    @property
    def may_see_secrets(self) -> bool:
        return self.standing != "admin" and self.allows("configure")


def may_read_owner(caller: Caller, owner_kind: Literal["user", "org"], owner_id: str) -> bool:
    """Whether the caller may read the towns of this owner object (the rules resolve_town
    applies town by town): their own personal towns, an org's as owner or member, any as admin."""
    if caller.is_admin:
        return True
    if owner_kind == "user":
        return owner_id == caller.user_id
    return caller.org_role(owner_id) in ("owner", "member")


def town_not_found(town_id: str) -> RpcError:
    return RpcError("NOT_FOUND", f"Town {town_id} not found")


async def resolve_town(ctx: CallContext, town_id: str) -> TownTarget:
    """Find `town_id` among the caller's personal towns, then each readable org's towns."""
    caller = ctx.caller
    users = ctx.services.runtime.namespace(GastownUserDO)
    personal = await users.get(caller.user_id).call(GastownUserDO.get_town, town_id)
    if personal is not None:
        return TownTarget(town_id, "user", caller.user_id, caller.user_id, "personal_owner", caller.user_id)
    orgs = ctx.services.runtime.namespace(GastownOrgDO)
    for membership in caller.org_memberships:
        if membership.role == "billing_manager" or not orgs.exists(membership.orgId):
            continue
        row = await orgs.get(membership.orgId).call(GastownOrgDO.get_town, town_id)
        if row is not None:
            standing: Standing = "org_owner" if membership.role == "owner" else "org_member"
            return TownTarget(
                town_id, "org", membership.orgId, row.created_by_user_id, standing, caller.user_id
            )
    if caller.is_admin:
        target = await _resolve_for_admin(ctx, town_id)
        if target is not None:
            return target
    raise town_not_found(town_id)


async def _resolve_for_admin(ctx: CallContext, town_id: str) -> TownTarget | None:
    """Admins may read any visible town: the town says who owns it; the owner row confirms it."""
    owner = await published_owner(ctx.services.runtime, town_id)
    if owner is None:
        return None
    return TownTarget(town_id, owner.kind, owner.id, owner.created_by_user_id, "admin", ctx.caller.user_id)


async def resolve_rig_town(ctx: CallContext, rig_id: str, town_hint: str | None) -> TownTarget:
    """The town of a rig, found through the caller's owner objects (as upstream does)."""
    caller = ctx.caller
    runtime = ctx.services.runtime
    users = runtime.namespace(GastownUserDO)
    rig = await users.get(caller.user_id).call(GastownUserDO.get_rig, rig_id)
    if rig is None:
        orgs = runtime.namespace(GastownOrgDO)
        for membership in caller.org_memberships:
            if membership.role == "billing_manager" or not orgs.exists(membership.orgId):
                continue
            rig = await orgs.get(membership.orgId).call(GastownOrgDO.get_rig, rig_id)
            if rig is not None:
                break
    if rig is not None:
        if town_hint is not None and town_hint != rig.town_id:
            raise RpcError("NOT_FOUND", f"Rig {rig_id} not found")
        return await resolve_town(ctx, rig.town_id)
    if caller.is_admin and town_hint is not None:
        target = await resolve_town(ctx, town_hint)
        towns = runtime.namespace(TownDO)
        if await towns.get(town_hint).call(TownDO.get_rig, rig_id) is not None:
            return target
    raise RpcError("NOT_FOUND", f"Rig {rig_id} not found")


def require_level(target: TownTarget, level: Level) -> None:
    if not target.allows(level):
        if target.standing == "admin":
            raise RpcError("FORBIDDEN", "Admins have read-only access to this town")
        raise RpcError("FORBIDDEN", f"Not allowed to {level} town {target.town_id}")


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class Authenticated:
    """Any caller with gastown access (checked by authentication itself)."""

    async def check(self, ctx: CallContext, params: Any) -> None:
        return None


@dataclass(frozen=True)
class TownRule:
    """The call is about `params.townId` (or the town of `params.rigId` when via='rig')."""

    level: Level
    via: Literal["town", "rig"] = "town"

    async def check(self, ctx: CallContext, params: Any) -> None:
        if self.via == "rig" and getattr(params, "rigId", None) is not None:
            target = await resolve_rig_town(ctx, str(params.rigId), _opt_str(getattr(params, "townId", None)))
        else:
            town_id = _opt_str(getattr(params, "townId", None))
            if town_id is None:
                raise RpcError("BAD_REQUEST", "Either `rigId` or `townId` is required")
            target = await resolve_town(ctx, town_id)
        org_id = _opt_str(getattr(params, "organizationId", None))
        if org_id is not None and (target.owner_kind != "org" or target.owner_id != org_id):
            raise town_not_found(target.town_id)
        require_level(target, self.level)
        ctx.target = target


@dataclass(frozen=True)
class OrgRule:
    """Org-level calls (list/create org towns): members other than billing managers."""

    level: Literal["read", "write"]

    async def check(self, ctx: CallContext, params: Any) -> None:
        org_id = str(params.organizationId)
        role = ctx.caller.org_role(org_id)
        if role in ("owner", "member"):
            return
        if ctx.caller.is_admin and self.level == "read":
            return
        if role == "billing_manager":
            raise RpcError("FORBIDDEN", f"Billing managers cannot use Gastown in organization {org_id}")
        raise RpcError("FORBIDDEN", f"Not a member of organization {org_id}")


@dataclass(frozen=True)
class AdminRule:
    """Upstream's adminProcedure: platform admins only, on any visible town (the admin tools
    are the one place an admin may change a town). Others are FORBIDDEN whatever the town."""

    async def check(self, ctx: CallContext, params: Any) -> None:
        if not ctx.caller.is_admin:
            raise RpcError("FORBIDDEN", "Admin access required")
        town_id = str(params.townId)
        target = await _resolve_for_admin(ctx, town_id)
        if target is None:
            raise town_not_found(town_id)
        ctx.target = target
