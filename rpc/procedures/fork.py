"""gastown.forkTown and gastown.forkOrgTown (fork.md): who may fork, then the fork service; and
the fork's progress, for the caller who started it (getForkStatus, forkProgress)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import msgspec

from dos import lifecycle
from dos.fork import ForkPlan, ForkResult, fingerprint
from dos.fork_status import PHASE_RANK, ForkStatus
from rpc.access import Authenticated, TownTarget, resolve_town
from rpc.errors import RpcError
from rpc.inputs import ForkOrgTownInput, ForkProgressInput, ForkTownInput, GetForkStatusInput
from rpc.router import CallContext, Procedure
from rpc.tracked import Tracked

G = "gastown."


@dataclass(frozen=True)
class ForkRule:
    """fork.md §2: the source must be readable (else NOT_FOUND) by a non-admin standing; an org
    target needs an owner or member role there."""

    async def check(self, ctx: CallContext, params: Any) -> None:
        source = await resolve_town(ctx, str(params.sourceTownId))
        if source.standing == "admin":
            raise RpcError("FORBIDDEN", "Admin read access does not allow forking someone else's town")
        org_id = getattr(params, "organizationId", None)
        if org_id is not None:
            role = ctx.caller.org_role(str(org_id))
            if role not in ("owner", "member"):
                raise RpcError("FORBIDDEN", f"Forking into organization {org_id} needs an owner or member role there")
        ctx.target = source


async def fork_town(ctx: CallContext, p: ForkTownInput) -> msgspec.Raw | ForkResult:
    source: TownTarget = ctx.target
    org_id = str(p.organizationId) if isinstance(p, ForkOrgTownInput) else None
    owner = lifecycle.Owner("org", org_id, ctx.caller.user_id) if org_id else lifecycle.Owner("user", ctx.caller.user_id, ctx.caller.user_id)
    plan = ForkPlan(
        caller_id=ctx.caller.user_id,
        source_town_id=source.town_id,
        target=owner,
        new_town_name=p.newTownName,
        include_git_author=p.includeGitAuthor,
        include_env_vars=p.includeEnvVars,
        may_copy_secrets=source.may_see_secrets,
        dry_run=p.dryRun,
        idempotency_key=p.idempotencyKey,
        input_fingerprint=fingerprint(ctx.path, msgspec.to_builtins(p)),
    )
    return await ctx.services.forks.fork(plan)


# Statuses are keyed by the caller's own user id: another caller's key is simply not found.
async def get_fork_status(ctx: CallContext, p: GetForkStatusInput) -> ForkStatus:
    """The status of the caller's fork with this idempotencyKey (kept after it ends)."""
    return await ctx.services.forks.status(ctx.caller.user_id, p.idempotencyKey)


async def fork_progress(ctx: CallContext, p: ForkProgressInput) -> AsyncIterator[Tracked[ForkStatus]]:
    """Each status of the caller's fork with this idempotencyKey, in order, until done or failed.
    Each is `tracked` by its place in the fork (phase, rows done): a client that reconnects with
    the last id it received (`lastEventId`) gets only later statuses, the final one once."""
    after = _progress_place(p.lastEventId) if p.lastEventId is not None else None
    async for status in ctx.services.forks.watch(ctx.caller.user_id, p.idempotencyKey, wait=p.waitMs / 1000):
        place = (PHASE_RANK[status.phase], status.rowsDone)
        if after is not None and place <= after:
            continue
        yield Tracked(f"{place[0]}:{place[1]}:{status.phase}", status)


def _progress_place(last_event_id: str) -> tuple[int, int]:
    rank, _, rows = last_event_id.partition(":")
    rows = rows.partition(":")[0]
    if not (rank.isdigit() and rows.isdigit()):
        raise RpcError("BAD_REQUEST", f"Invalid lastEventId {last_event_id!r}")
    return int(rank), int(rows)


PROCEDURES = [
    Procedure(G + "forkTown", "mutation", ForkTownInput, ForkRule(), fork_town),
    Procedure(G + "forkOrgTown", "mutation", ForkOrgTownInput, ForkRule(), fork_town),
    Procedure(G + "getForkStatus", "query", GetForkStatusInput, Authenticated(), get_fork_status),
    Procedure(G + "forkProgress", "subscription", ForkProgressInput, Authenticated(), fork_progress),
]
