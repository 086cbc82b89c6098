"""What a fork writes into its new town, as one build of the town's file (`Namespace.create`).

The build is plain data plus `__call__`, so it can run where the new town's database lives: in
this process (the local backend) or pickled to the new town's own worker. Its `rows` say where
the source's rows come from; everything else it writes is decided before it starts (the rigs'
new ids and the new owner's credentials for them), so the file is written whole, once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from dos.git_tokens import GitCredentials
from dos.town_do import TownDO
from town.clock import now_iso
from town.fork_export import ExportOptions
from town.fork_import import ImportReport
from town.rigs import TownRig

# (phase, rows done, rows total): the import's phases, then "rigs"; called from the build's thread.
BuildProgress = Callable[[str, int, int], None]
Fault = Callable[[str], None]  # test-only crash points (dos/fork.py); a no-op in production


def _quiet(*_: Any) -> None:
    return None


class RowSource(Protocol):
    def import_into(
        self, town: TownDO, options: ExportOptions, mapping: dict[str, str], progress: BuildProgress
    ) -> ImportReport: ...


@dataclass(frozen=True)
class SourceFile:
    """The source town's database file, read directly (it is on this machine)."""

    path: Path

    def import_into(
        self, town: TownDO, options: ExportOptions, mapping: dict[str, str], progress: BuildProgress
    ) -> ImportReport:
        return town.import_fork_from(self.path, options, mapping, progress)


@dataclass(frozen=True)
class BuiltTown:
    report: ImportReport
    rigs: list[TownRig]
    forked_from: dict[str, Any]  # the lineage written into the town (`town:forked_from`)


@dataclass(frozen=True)
class ForkBuild:
    rows: RowSource
    options: ExportOptions
    ownership: dict[str, Any]  # the new town's owner fields and its fresh kilocode token
    mapping: dict[str, str]  # source rig id -> new rig id (the import adds any rig it lacks)
    owner_user_id: str
    kilocode_token: str
    credentials: dict[str, GitCredentials | None]  # by new rig id
    source_town_id: str
    by_user_id: str
    # In-process only (not sent with a pickled build): progress reports and crash points.
    progress: BuildProgress = field(default=_quiet, compare=False)
    fault: Fault = field(default=_quiet, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        # Pickled to another process (the new town's own worker): without the callbacks.
        return {k: v for k, v in self.__dict__.items() if k not in ("progress", "fault")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, progress=_quiet, fault=_quiet)  # (frozen: set as unpickling does)

    def __call__(self, town: TownDO) -> BuiltTown:
        town.initialize(ownership=self.ownership)
        self.fault("initialized")
        report = self.rows.import_into(town, self.options, self.mapping, self.progress)
        self.progress("rigs", 0, 0)  # (no rows of its own: the rows so far are kept)
        rigs = town.list_rigs()
        # A rig added to the source after its rigs were read has no credentials yet: the fork
        # asks for them after the build.
        town.configure_fork_rigs(
            self.owner_user_id, self.kilocode_token, [(r, self.credentials[r.id]) for r in rigs if r.id in self.credentials]
        )
        lineage = {"town_id": self.source_town_id, "forked_at": now_iso(), "by_user_id": self.by_user_id}
        town.set_forked_from(lineage)
        self.fault("configured")
        return BuiltTown(report=report, rigs=rigs, forked_from=lineage)
