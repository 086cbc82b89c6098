"""Where a fork's rows come from: the one backend-specific step of dos/fork.py.

- `LocalTransfer` (the local backend): the new town's build (dos/fork_build.py) reads the
  source's file directly, in this process (`SourceFile`).
- `StreamedTransfer` (Ray): the build is pickled to the new town's actor, on its own node, where
  it pulls the source actor's export as a Ray streaming generator, a few parts ahead at most
  (bounded memory: a part is at most one chunk of the rows file), and writes them as they come
  (`SourceActor`). The parts never pass through this process.

Either way the new town's file appears whole or not at all (fork.md §5).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Protocol

from dos.fork_build import RowSource, SourceFile
from dos.town_do import TownDO, fork_counts
from town.errors import Unavailable
from town.fork_export import ExportOptions
from town.fork_import import ImportReport
from town.fork_payload import ExportPart

# Parts in flight between the source and the new town (Ray's generator backpressure).
STREAM_AHEAD = 4


class Transfer(Protocol):
    async def counts(self, source_town_id: str, options: ExportOptions) -> ImportReport: ...

    async def rows_of(self, source_town_id: str) -> RowSource:
        """The source's rows for a build (the source was opened already)."""
        ...


def transfer_for(runtime: Any) -> Transfer:
    if getattr(runtime, "streams_forks", False):
        return StreamedTransfer(runtime)
    return LocalTransfer(runtime)


class LocalTransfer:
    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime

    async def counts(self, source_town_id: str, options: ExportOptions) -> ImportReport:
        towns = self.runtime.namespace(TownDO)
        await towns.get(source_town_id).call(TownDO.ownership)  # opened and migrated; reads only
        report: ImportReport = await self.runtime.run_in_bulk_pool(fork_counts, towns.path_for(source_town_id), options)
        return report

    async def rows_of(self, source_town_id: str) -> RowSource:
        return SourceFile(self.runtime.namespace(TownDO).path_for(source_town_id))


@dataclass(frozen=True)
class SourceActor:
    """The source town's actor, streaming its export (pickled with the build to the new town's
    actor, which pulls the parts)."""

    actor: Any  # the source town's ObjectActor handle

    def parts(self, options: ExportOptions) -> Generator[ExportPart, None, None]:
        import ray

        stream = self.actor.export_parts.options(
            num_returns="streaming", _generator_backpressure_num_objects=STREAM_AHEAD
        ).remote(options)
        try:
            for ref in stream:
                yield ray.get(ref)
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnschedulableError) as exc:
            raise Unavailable("The fork's source town went away while it was being copied; retry") from exc


class StreamedTransfer:
    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime

    async def counts(self, source_town_id: str, options: ExportOptions) -> ImportReport:
        towns = self.runtime.namespace(TownDO)
        await towns.get(source_town_id).call(TownDO.ownership)  # its actor is up, its file migrated
        report: ImportReport = await towns.invoke(source_town_id, "fork_counts", options)
        return report

    async def rows_of(self, source_town_id: str) -> RowSource:
        return SourceActor(await self.runtime.namespace(TownDO).handle(source_town_id))
