"""Town and rig lifecycles across objects: create, delete, register rigs.

Ordering is what makes these all-or-nothing: a town's own database is written completely
first, and the owner-object row that makes it visible last; deletes remove visibility first.
Anything half-written by a crash is an orphan without an owner row and is swept at startup
(`sweep_orphans`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from dos.container_do import TownContainerDO
from dos.lineage_do import TownLineageDO, forget_town, record_fork
from dos.owner_do import GastownOrgDO, GastownUserDO, OwnerDO
from dos.runtime import ObjectRuntime
from dos.town_do import TownDO
from town import owners, rigs
from town.clock import new_id
from town.errors import NotFound
from town.lineage import ForkEntry

log = logging.getLogger("gastown.lifecycle")

OwnerKind = Literal["user", "org"]
TokenMinter = Callable[[str], str]  # user id -> kilocode token


@dataclass(frozen=True)
class Owner:
    kind: OwnerKind
    id: str  # user id or org id
    created_by_user_id: str


def ownership_fields(owner: Owner, kilocode_token: str) -> dict[str, Any]:
    """TownConfig ownership as createTown / createOrgTown record it (upstream §7.1)."""
    if owner.kind == "user":
        return {"kilocode_token": kilocode_token, "owner_user_id": owner.id, "owner_type": "user", "owner_id": owner.id, "created_by_user_id": owner.created_by_user_id}
    return {
        "kilocode_token": kilocode_token,
        "owner_type": "org",
        "owner_id": owner.id,
        "owner_user_id": owner.created_by_user_id,
        "organization_id": owner.id,
        "created_by_user_id": owner.created_by_user_id,
    }


def owner_namespace(runtime: ObjectRuntime, kind: OwnerKind) -> Any:
    return runtime.namespace(GastownUserDO if kind == "user" else GastownOrgDO)


async def create_town(
    runtime: ObjectRuntime, mint: TokenMinter, *, owner: Owner, name: str
) -> owners.Town | owners.OrgTown:
    town_id = new_id()
    town = runtime.namespace(TownDO).get(town_id)
    try:
        await town.call(TownDO.initialize, ownership=ownership_fields(owner, mint(owner.created_by_user_id)))
        return await publish_town(runtime, owner=owner, town_id=town_id, name=name)
    except BaseException:
        await town.destroy()
        raise


async def publish_town(
    runtime: ObjectRuntime,
    *,
    owner: Owner,
    town_id: str,
    name: str,
    forked_from: dict[str, Any] | None = None,
) -> owners.Town | owners.OrgTown:
    """Write the owner row: from this moment the town is visible."""
    if owner.kind == "user":
        user = runtime.namespace(GastownUserDO).get(owner.id)
        return await user.call(GastownUserDO.add_town, town_id=town_id, name=name, forked_from=forked_from)
    org = runtime.namespace(GastownOrgDO).get(owner.id)
    return await org.call(
        GastownOrgDO.add_town,
        town_id=town_id,
        name=name,
        created_by_user_id=owner.created_by_user_id,
        forked_from=forked_from,
    )


async def delete_town(runtime: ObjectRuntime, *, owner_kind: OwnerKind, owner_id: str, town_id: str) -> None:
    await owner_namespace(runtime, owner_kind).get(owner_id).call(OwnerDO.delete_town, town_id)
    town = runtime.namespace(TownDO).get(town_id)
    forked_from = await town.call(TownDO.forked_from)
    await forget_town(runtime, town_id, forked_from)
    await town.destroy()
    await runtime.namespace(TownContainerDO).get(town_id).destroy()


async def create_rig(
    runtime: ObjectRuntime,
    *,
    owner_kind: OwnerKind,
    owner_id: str,
    town_id: str,
    user_id: str,
    name: str,
    git_url: str,
    default_branch: str,
    platform_integration_id: str | None,
    kilocode_token: str | None,
) -> owners.Rig:
    """Register a rig in the town (row + `rig:<id>:config`), then in the owner object."""
    rig_id = new_id()
    runtime_config = rigs.RigConfig(
        townId=town_id,
        rigId=rig_id,
        gitUrl=git_url,
        defaultBranch=default_branch,
        userId=user_id,
        kilocodeToken=kilocode_token,
        platformIntegrationId=platform_integration_id,
    )
    town = runtime.namespace(TownDO).get(town_id)
    await town.call(
        TownDO.add_rig, rig_id=rig_id, name=name, git_url=git_url, default_branch=default_branch, runtime=runtime_config
    )
    owner = owner_namespace(runtime, owner_kind).get(owner_id)
    try:
        return await owner.call(
            OwnerDO.add_rig,
            rig_id=rig_id,
            town_id=town_id,
            name=name,
            git_url=git_url,
            default_branch=default_branch,
            platform_integration_id=platform_integration_id,
        )
    except BaseException:
        await town.call(TownDO.delete_rig, rig_id)
        raise


async def delete_rig(runtime: ObjectRuntime, *, owner_kind: OwnerKind, owner_id: str, town_id: str, rig_id: str) -> None:
    owner = owner_namespace(runtime, owner_kind).get(owner_id)
    if not await owner.call(OwnerDO.delete_rig, rig_id):
        raise NotFound(f"Rig {rig_id} not found")
    await runtime.namespace(TownDO).get(town_id).call(TownDO.delete_rig, rig_id)


async def sweep_orphans(runtime: ObjectRuntime) -> list[str]:
    """Remove town databases no owner object knows (half-written by a crash), and first
    writes of any object that a crash interrupted. Startup only.

    When other processes share the objects (the Ray backend's replicas), an unpublished town
    may be another replica's fork in progress: only one left alone for the runtime's
    `orphan_grace_seconds` is taken for an orphan."""
    for path in runtime.remove_partial_writes():
        log.warning("removing %s (an object's first write or creation, interrupted)", path)
    grace: float | None = getattr(runtime, "orphan_grace_seconds", None)
    towns = runtime.namespace(TownDO)
    containers = runtime.namespace(TownContainerDO)
    removed: list[str] = []
    for town_id in towns.ids_on_disk():
        if await published_owner(runtime, town_id) is not None:
            continue
        if grace is not None and await towns.quiet_seconds(town_id) < grace:
            continue
        log.warning("removing unpublished town %s (left by an interrupted create or fork)", town_id)
        await towns.get(town_id).destroy()
        await containers.get(town_id).destroy()
        removed.append(town_id)
    # A container object whose town is gone (or never got published) is an orphan too.
    for town_id in containers.ids_on_disk():
        if not towns.exists(town_id):
            if grace is not None and await containers.quiet_seconds(town_id) < grace:
                continue  # a fork writes the new town's container while its rows stream in
            log.warning("removing container state of missing town %s", town_id)
            await containers.get(town_id).destroy()
    return removed


async def index_lineage(runtime: ObjectRuntime) -> int:
    """Record every published fork in its source's TownLineageDO (for data written before the
    index existed). Startup only, once; returns how many forks it recorded."""
    towns = runtime.namespace(TownDO)
    recorded = 0
    for town_id in towns.ids_on_disk():
        owner = await published_owner(runtime, town_id)
        lineage = None if owner is None else await towns.get(town_id).call(TownDO.forked_from)
        if owner is None or lineage is None or not isinstance(lineage.get("town_id"), str):
            continue
        entry = ForkEntry(
            town_id=town_id, owner_kind=owner.kind, owner_id=owner.id, forked_at=str(lineage.get("forked_at", ""))
        )
        await record_fork(runtime, lineage["town_id"], entry)
        recorded += 1
    return recorded


async def prune_lineage(runtime: ObjectRuntime) -> int:
    """Drop lineage entries whose fork is not visible (a fork that failed or crashed before
    publishing, a delete interrupted after hiding the town), and the lists of towns that are
    gone. Startup only; returns how many entries it dropped."""
    lineages = runtime.namespace(TownLineageDO)
    towns = runtime.namespace(TownDO)
    grace: float | None = getattr(runtime, "orphan_grace_seconds", None)
    dropped = 0
    for source_id in lineages.ids_on_disk():
        if not towns.exists(source_id):
            dropped += len(await lineages.get(source_id).call(TownLineageDO.list_forks))
            await lineages.get(source_id).destroy()
            continue
        for entry in await lineages.get(source_id).call(TownLineageDO.list_forks):
            if grace is not None and _age_seconds(entry.forked_at) < grace:
                continue  # indexed before publishing: maybe another replica's fork in progress
            if await published_owner(runtime, entry.town_id) is None:
                await lineages.get(source_id).call(TownLineageDO.remove_fork, entry.town_id)
                dropped += 1
    return dropped


def _age_seconds(stamp: str) -> float:
    try:
        return (datetime.now(UTC) - datetime.fromisoformat(stamp.replace("Z", "+00:00"))).total_seconds()
    except ValueError:
        return float("inf")


@dataclass(frozen=True)
class PublishedOwner:
    """Who a town's owner row says owns it (the row exists: the town is visible)."""

    kind: OwnerKind
    id: str
    created_by_user_id: str


async def published_owner(runtime: ObjectRuntime, town_id: str) -> PublishedOwner | None:
    """Ask the town who owns it, then confirm with that owner object's row; None if unpublished.

    Opens nothing that does not exist yet: a missing town or owner object is just None.
    """
    towns = runtime.namespace(TownDO)
    if not towns.exists(town_id):
        return None
    owner = await towns.get(town_id).call(TownDO.ownership)
    if owner.owner_type == "org" and owner.organization_id:
        orgs = runtime.namespace(GastownOrgDO)
        if orgs.exists(owner.organization_id):
            org_row = await orgs.get(owner.organization_id).call(GastownOrgDO.get_town, town_id)
            if org_row is not None:
                return PublishedOwner("org", owner.organization_id, org_row.created_by_user_id)
    elif owner.owner_user_id:
        users = runtime.namespace(GastownUserDO)
        if (
            users.exists(owner.owner_user_id)
            and await users.get(owner.owner_user_id).call(GastownUserDO.get_town, town_id) is not None
        ):
            return PublishedOwner("user", owner.owner_user_id, owner.owner_user_id)
    return None
