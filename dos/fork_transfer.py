"""How a fork's rows get from the source town into the new one: the one backend-specific step
of dos/fork.py.

- `LocalTransfer` (the local backend): the new town's `Namespace.create` reads the source's
  file directly, in this process (`TownDO.import_fork_from`).
- `StreamedTransfer` (Ray): the new town's actor, on its own node, runs the same `create`
  with a picklable build (`StreamedImport`) that pulls the source actor's export as a Ray
  streaming generator, a few parts ahead at most (bounded memory: parts are at most one
  part-size each), and imports them as they come. The parts never pass through this process.

Either way the new town's file appears whole or not at all (fork.md §5).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from dos.town_do import TownDO, copy_fork
from town import fork_import
from town.errors import Unavailable
from town.fork_export import ExportOptions
from town.fork_import import ImportReport, Progress

Fault = Callable[[str], None]  # test-only crash points (dos/fork.py)

# Parts in flight between the source and the new town (Ray's generator backpressure).
STREAM_AHEAD = 4


class Transfer(Protocol):
    async def counts(self, source_town_id: str, options: ExportOptions) -> ImportReport: ...

    async def import_town(
        self,
        town_id: str,
        source_town_id: str,
        ownership: dict[str, Any],
        options: ExportOptions,
        mapping: dict[str, str],
        progress: Progress,
    ) -> ImportReport: ...


def transfer_for(runtime: Any, fault: Fault) -> Transfer:
    if getattr(runtime, "streams_forks", False):
        return StreamedTransfer(runtime, fault)
    return LocalTransfer(runtime, fault)


class LocalTransfer:
    def __init__(self, runtime: Any, fault: Fault) -> None:
        self.runtime = runtime
        self.fault = fault

    async def _source_path(self, source_town_id: str) -> Any:
        towns = self.runtime.namespace(TownDO)
        await towns.get(source_town_id).call(TownDO.ownership)  # opened and migrated; reads only
        return towns.path_for(source_town_id)

    async def counts(self, source_town_id: str, options: ExportOptions) -> ImportReport:
        source = await self._source_path(source_town_id)
        report: ImportReport = await self.runtime.run_in_bulk_pool(copy_fork, None, source, options, {})
        return report

    async def import_town(
        self,
        town_id: str,
        source_town_id: str,
        ownership: dict[str, Any],
        options: ExportOptions,
        mapping: dict[str, str],
        progress: Progress,
    ) -> ImportReport:
        source = await self._source_path(source_town_id)
        fault = self.fault

        def build(town: TownDO) -> ImportReport:
            # The new town's database is made whole (runtime `create`): its identity and
            # ownership, then the source's rows; it exists only once all of it is written.
            town.initialize(ownership=ownership)
            fault("initialized")
            return town.import_fork_from(source, options, mapping, progress)

        report: ImportReport = await self.runtime.namespace(TownDO).create(town_id, build)
        return report


@dataclass(frozen=True)
class StreamedImport:
    """The build of a new town on its own node (pickled to its actor): its identity and
    ownership, then the source actor's export, streamed."""

    source: Any  # the source town's ObjectActor handle
    ownership: dict[str, Any]
    options: ExportOptions
    mapping: dict[str, str]

    def __call__(self, town: TownDO) -> ImportReport:
        import ray

        town.initialize(ownership=self.ownership)
        stream = self.source.export_parts.options(
            num_returns="streaming", _generator_backpressure_num_objects=STREAM_AHEAD
        ).remote(self.options)

        def parts() -> Iterator[Any]:
            try:
                for ref in stream:
                    yield ray.get(ref)
            except (ray.exceptions.RayActorError, ray.exceptions.ActorUnschedulableError) as exc:
                raise Unavailable("The fork's source town went away while it was being copied; retry") from exc

        mapping = dict(self.mapping)
        return fork_import.import_fork(town.conn, parts(), rig_id_mapping=mapping)


class StreamedTransfer:
    def __init__(self, runtime: Any, fault: Fault) -> None:
        self.runtime = runtime
        self.fault = fault

    async def _source(self, source_town_id: str) -> Any:
        towns = self.runtime.namespace(TownDO)
        await towns.get(source_town_id).call(TownDO.ownership)  # its actor is up, its file migrated
        return await towns.handle(source_town_id)

    async def counts(self, source_town_id: str, options: ExportOptions) -> ImportReport:
        towns = self.runtime.namespace(TownDO)
        await self._source(source_town_id)
        report: ImportReport = await towns.invoke(source_town_id, "fork_counts", options)
        return report

    async def import_town(
        self,
        town_id: str,
        source_town_id: str,
        ownership: dict[str, Any],
        options: ExportOptions,
        mapping: dict[str, str],
        progress: Progress,
    ) -> ImportReport:
        source = await self._source(source_town_id)
        self.fault("initialized")
        report: ImportReport = await self.runtime.namespace(TownDO).create(
            town_id, StreamedImport(source, ownership, options, dict(mapping))
        )
        # The rows streamed between two actors, not through here: the import phase is
        # reported once, whole (and its test crash point lands after the file exists).
        progress("import", report.copied.rows, report.copied.rows)
        mapping.update(report.rig_id_mapping)
        return report
