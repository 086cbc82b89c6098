"""What a fork writes into its new town, as one build of the town's file (`Namespace.create`).

The build is plain data plus `write_file` and `__call__`, so it can run where the new town's
database lives: in this process (the local backend) or pickled to the new town's own worker.
`write_file` pulls the source's export from `rows` and writes the rows file it carries as the
new town's file; `__call__` then checks that file and completes the town over it. Everything
else it writes is decided before it starts (the rigs' new ids and the new owner's credentials
for them), so the file is written whole, once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from dos.git_tokens import GitCredentials
from dos.town_do import TownDO, exported_parts
from town import fork_import
from town.fork_export import ExportOptions
from town.fork_import import ImportReport
from town.fork_payload import ExportPart
from town.rigs import TownRig

# (phase, rows done, rows total): the import's phases, then "rigs"; called from the build's thread.
BuildProgress = Callable[[str, int, int], None]
Fault = Callable[[str], None]  # test-only crash points (dos/fork.py); a no-op in production


def _quiet(*_: Any) -> None:
    return None


class RowSource(Protocol):
    def parts(self, options: ExportOptions) -> Generator[ExportPart, None, None]:
        """The source's fork export, part by part (closing it ends the export)."""
        ...


@dataclass(frozen=True)
class SourceFile:
    """The source town's database file, read directly (it is on this machine)."""

    path: Path

    def parts(self, options: ExportOptions) -> Generator[ExportPart, None, None]:
        return exported_parts(self.path, options)


@dataclass(frozen=True)
class BuiltTown:
    report: ImportReport
    rigs: list[TownRig]


@dataclass(frozen=True)
class ForkBuild:
    rows: RowSource
    options: ExportOptions  # with the rigs' new ids (`rig_id_mapping`)
    ownership: dict[str, Any]  # the new town's owner fields and its fresh kilocode token
    owner_user_id: str
    kilocode_token: str
    credentials: dict[str, GitCredentials | None]  # by new rig id
    # `town:forked_from` ({town_id, forked_at, by_user_id}): decided before the build, as the
    # lineage index entry written meanwhile; its `forked_at` is the new rigs' creation time.
    lineage: dict[str, Any]
    # In-process only (not sent with a pickled build): progress reports and crash points.
    progress: BuildProgress = field(default=_quiet, compare=False)
    fault: Fault = field(default=_quiet, compare=False)
    # What `write_file` received, for `__call__` (both run in the same worker, in that order).
    _received: list[fork_import.Received] = field(default_factory=list, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        # Pickled to another process (the new town's own worker): without the callbacks.
        return {k: v for k, v in self.__dict__.items() if k not in ("progress", "fault", "_received")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, progress=_quiet, fault=_quiet, _received=[])  # (frozen: set as unpickling does)

    def write_file(self, scratch: Path) -> None:
        """The new town's first file: the rows file of the source's export, as it streams in."""
        with open(scratch, "xb") as out, contextlib.closing(self.rows.parts(self.options)) as parts:
            self._received[:] = [fork_import.receive_fork(parts, out.write, self.progress)]

    def __call__(self, town: TownDO) -> BuiltTown:
        (received,) = self._received
        town.check_rows_file(received)
        # One transaction for everything the new town writes over its rows file (each page
        # written once; the file is private, and a failure discards it whole).
        with town.conn:
            town.initialize(ownership=self.ownership)
            self.fault("initialized")
            report = town.finish_fork_import(received, self.lineage["forked_at"], self.progress)
            self.progress("rigs", 0, 0)  # (no rows of its own: the rows so far are kept)
            rigs = town.list_rigs()
            # A rig added to the source after its rigs were read has no credentials yet: the
            # fork asks for them after the build.
            town.configure_fork_rigs(
                self.owner_user_id,
                self.kilocode_token,
                [(r, self.credentials[r.id]) for r in rigs if r.id in self.credentials],
            )
            town.set_forked_from(self.lineage)
        self.fault("configured")
        return BuiltTown(report=report, rigs=rigs)
