"""TownLineageDO: the forks of one town, keyed by the source town id (town/lineage.py).

Written by the fork flow right before it publishes the new town, and by the delete flow right
after a fork stops being visible; the source town's own database is never touched. Because
those writes sit beside, not inside, the owner-object transaction that decides visibility, an
entry can outlive its town for a moment (or across a crash): listForks shows only entries
whose owner object has the town, and `prune` (startup) drops the rest.
"""

from __future__ import annotations

from typing import Any

from dos.runtime import DurableObject, ObjectRuntime
from town import lineage
from town.lineage import ForkEntry


class TownLineageDO(DurableObject):
    MIGRATIONS = lineage.LINEAGE_MIGRATIONS

    def add_fork(self, entry: ForkEntry) -> None:
        lineage.add_fork(self.conn, entry)

    def remove_fork(self, town_id: str) -> bool:
        return lineage.remove_fork(self.conn, town_id)

    def list_forks(self) -> list[ForkEntry]:
        return lineage.list_forks(self.conn)


async def record_fork(runtime: ObjectRuntime, source_town_id: str, entry: ForkEntry) -> None:
    await runtime.namespace(TownLineageDO).get(source_town_id).call(TownLineageDO.add_fork, entry)


async def forks_of(runtime: ObjectRuntime, source_town_id: str) -> list[ForkEntry]:
    """The recorded forks of a town, newest first (none, without creating a database, if it
    was never forked)."""
    ns = runtime.namespace(TownLineageDO)
    if not ns.exists(source_town_id):
        return []
    return await ns.get(source_town_id).call(TownLineageDO.list_forks)


async def forget_town(runtime: ObjectRuntime, town_id: str, forked_from: dict[str, Any] | None) -> None:
    """A deleted town leaves its source's list, and its own list goes with it."""
    ns = runtime.namespace(TownLineageDO)
    source = forked_from.get("town_id") if forked_from else None
    if isinstance(source, str) and source and ns.exists(source):
        await ns.get(source).call(TownLineageDO.remove_fork, town_id)
    await ns.get(town_id).destroy()
