"""The status reads town pages poll (drain, admin banner, mayor, alarm, billing, merge queue)
and the two small writes next to them (run policy, a fresh kilocode_token)."""

from __future__ import annotations

import msgspec

from dos.town_do import TownDO
from rpc.access import TownRule
from rpc.inputs import MergeQueueInput, RunPolicyInput, TownIdInput
from rpc.procedures.common import minter, target, town_stub
from rpc.router import CallContext, Procedure
from town.alarm_status import BillingStatus, TownAlarmStatus
from town.merge_queue import MergeQueueData
from town.town_status import DrainStatus, MayorStatus

G = "gastown."


class AdminAccess(msgspec.Struct, kw_only=True):
    isAdminViewing: bool
    ownerUserId: str | None
    ownerOrgId: str | None


async def get_drain_status(ctx: CallContext, p: TownIdInput) -> DrainStatus:
    """Whether the town's container is draining, and since when."""
    return await town_stub(ctx).call(TownDO.drain_status)


async def check_admin_access(ctx: CallContext, p: TownIdInput) -> AdminAccess:
    """Whether the caller is a platform admin viewing a town that is not theirs (the admin banner)."""
    t = target(ctx)
    if t.standing != "admin":
        return AdminAccess(isAdminViewing=False, ownerUserId=None, ownerOrgId=None)
    owner = await town_stub(ctx).call(TownDO.ownership)
    return AdminAccess(isAdminViewing=True, ownerUserId=owner.owner_user_id, ownerOrgId=owner.organization_id)


async def get_mayor_status(ctx: CallContext, p: TownIdInput) -> MayorStatus:
    """The mayor's session; always `session: null` here (no agent runtime)."""
    return await town_stub(ctx).call(TownDO.mayor_status)


async def get_alarm_status(ctx: CallContext, p: TownIdInput) -> TownAlarmStatus:
    """Agent and bead counts, patrol counters, recent events, the alarm interval and billing."""
    status = await town_stub(ctx).call(TownDO.get_alarm_status, with_billing=True)
    assert isinstance(status, TownAlarmStatus)
    return status


async def get_billing_status(ctx: CallContext, p: TownIdInput) -> BillingStatus:
    """Container billing: not enabled in this deployment; reports the run policy."""
    return await town_stub(ctx).call(TownDO.billing_status)


async def set_container_run_policy(ctx: CallContext, p: RunPolicyInput) -> BillingStatus:
    """Pause or resume automatic container starts (stored with the town)."""
    return await town_stub(ctx).call(TownDO.set_run_policy, p.policy)


async def get_merge_queue_data(ctx: CallContext, p: MergeQueueInput) -> MergeQueueData:
    """Merge requests that need attention and the review activity log."""
    return await town_stub(ctx).call(
        TownDO.merge_queue, rig_id=None if p.rigId is None else str(p.rigId), limit=p.limit, since=p.since
    )


async def refresh_container_token(ctx: CallContext, p: TownIdInput) -> None:
    """Re-mint the town's kilocode_token for its owner user (the creator for org towns)."""
    owner = await town_stub(ctx).call(TownDO.ownership)
    user_id = owner.owner_user_id or owner.created_by_user_id or ctx.caller.user_id
    await town_stub(ctx).call(TownDO.set_kilocode_token, minter(ctx)(user_id))


PROCEDURES = [
    Procedure(G + "getDrainStatus", "query", TownIdInput, TownRule("read"), get_drain_status),
    Procedure(G + "checkAdminAccess", "query", TownIdInput, TownRule("read"), check_admin_access),
    Procedure(G + "getMayorStatus", "query", TownIdInput, TownRule("read"), get_mayor_status),
    Procedure(G + "getAlarmStatus", "query", TownIdInput, TownRule("read"), get_alarm_status),
    Procedure(G + "getBillingStatus", "query", TownIdInput, TownRule("read"), get_billing_status),
    Procedure(G + "setContainerRunPolicy", "mutation", RunPolicyInput, TownRule("configure"), set_container_run_policy),
    Procedure(G + "getMergeQueueData", "query", MergeQueueInput, TownRule("read"), get_merge_queue_data),
    Procedure(G + "refreshContainerToken", "mutation", TownIdInput, TownRule("write"), refresh_container_token),
]
