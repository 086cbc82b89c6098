"""TownDO: one town's database. A thin facade; every method delegates to `town.*`."""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from pathlib import Path
from typing import Any

import msgspec

from dos.kv import kv_get, kv_put
from dos.runtime import DurableObject, export_scratch, open_snapshot_reader
from town import (
    agents,
    alarm_status,
    bead_actions,
    bead_events,
    beads,
    config,
    convoys,
    demo,
    fork_export,
    fork_import,
    fork_schema,
    merge_queue,
    rigs,
    town_status,
    wasteland,
)
from town.fork_payload import ExportPart, FileChunk, ForkExportSummary
from town.schema import TOWN_MIGRATIONS

FORKED_FROM_KEY = "town:forked_from"
TOWN_ID_KEY = "town:id"


class TownOwnership(msgspec.Struct, frozen=True):
    """What the town itself records about who owns it (for admin lookups and cleanup)."""

    town_id: str | None
    owner_type: str | None
    owner_user_id: str | None
    organization_id: str | None
    created_by_user_id: str | None


class TownDO(DurableObject):
    MIGRATIONS = TOWN_MIGRATIONS

    # -- identity and ownership -------------------------------------------------------------
    def initialize(self, *, ownership: dict[str, Any]) -> config.TownConfig:
        """First write of a new town: its id, default config and ownership, in one transaction."""
        kv_put(self.conn, TOWN_ID_KEY, self.id)
        return config.set_ownership(self.conn, **ownership)

    def ownership(self) -> TownOwnership:
        # Read the stored config raw: this must not seed defaults into an orphan's database.
        stored = kv_get(self.conn, config.CONFIG_KEY)
        cfg: dict[str, Any] = stored if isinstance(stored, dict) else {}
        return TownOwnership(
            town_id=kv_get(self.conn, TOWN_ID_KEY),
            owner_type=cfg.get("owner_type"),
            owner_user_id=cfg.get("owner_user_id"),
            organization_id=cfg.get("organization_id"),
            created_by_user_id=cfg.get("created_by_user_id"),
        )

    def forked_from(self) -> dict[str, Any] | None:
        value = kv_get(self.conn, FORKED_FROM_KEY)
        return value if isinstance(value, dict) else None

    # -- config -----------------------------------------------------------------------------
    def get_config(self) -> config.TownConfig:
        return config.get_config(self.conn)

    def update_config(self, update: config.TownConfigUpdate) -> config.TownConfig:
        return config.update_config(self.conn, update)

    # -- rigs -------------------------------------------------------------------------------
    def add_rig(
        self, *, rig_id: str, name: str, git_url: str, default_branch: str, runtime: rigs.RigConfig
    ) -> rigs.TownRig:
        rig = rigs.add_rig(self.conn, rig_id=rig_id, name=name, git_url=git_url, default_branch=default_branch)
        rigs.put_rig_runtime_config(self.conn, runtime)
        return rig

    def get_rig(self, rig_id: str) -> rigs.TownRig | None:
        return rigs.get_rig(self.conn, rig_id)

    def rig_page(self, rig_id: str, beads_limit: int) -> tuple[rigs.TownRig | None, list[agents.Agent], list[beads.Bead]]:
        """What getRig shows beyond the owner's row, in one call: config, agents, beads in progress."""
        rig = rigs.get_rig(self.conn, rig_id)
        if rig is None:
            return None, [], []
        working = beads.list_beads(self.conn, rig_id=rig_id, status="in_progress", limit=beads_limit)
        return rig, agents.list_agents(self.conn, rig_id=rig_id), working

    def list_rigs(self) -> list[rigs.TownRig]:
        return rigs.list_rigs(self.conn)

    def delete_rig(self, rig_id: str) -> bool:
        return rigs.delete_rig(self.conn, rig_id)

    def set_rig_config(self, rig_id: str, override: rigs.RigOverrideConfig) -> rigs.TownRig:
        return rigs.set_rig_config(self.conn, rig_id, override)

    # -- beads ------------------------------------------------------------------------------
    def create_bead(self, **fields: Any) -> beads.Bead:
        return beads.create_bead(self.conn, **fields)

    def get_bead(self, bead_id: str) -> beads.Bead | None:
        return beads.get_bead(self.conn, bead_id)

    def update_bead(self, bead_id: str, changes: beads.BeadUpdate, *, actor: str | None) -> beads.Bead:
        return beads.update_bead(self.conn, bead_id, changes, actor=actor)

    def delete_beads_in_rig(self, rig_id: str, bead_ids: list[str]) -> int:
        """Delete the given beads that belong to `rig_id` (others are left alone)."""
        mine = [b for b in bead_ids if (bead := beads.get_bead(self.conn, b)) is not None and bead.rig_id == rig_id]
        return beads.delete_beads(self.conn, mine) if mine else 0

    def list_beads(self, **filters: Any) -> list[beads.Bead]:
        return beads.list_beads(self.conn, **filters)

    def list_bead_events(self, **filters: Any) -> list[bead_events.BeadEvent]:
        return bead_events.list_bead_events(self.conn, **filters)

    def populate_demo(self, **options: Any) -> demo.DemoStats:
        return demo.populate_town(self.conn, **options)

    # -- fork ---------------------------------------------------------------------------------
    # A fork's new town is created whole (`Namespace.create`) from the rows file the export
    # sent (dos/fork_build.py): it is checked before the town's first write, then completed.
    def check_rows_file(self, received: fork_import.Received) -> None:
        fork_import.check_rows_file(self.conn, received)

    def finish_fork_import(
        self, received: fork_import.Received, forked_at: str, progress: fork_import.Progress | None = None
    ) -> fork_import.ImportReport:
        """Rigs, indexes and config of the new town; `progress` hears each phase (this thread)."""
        return fork_import.finish_import(self.conn, received, forked_at, progress)

    def configure_fork_rigs(
        self, user_id: str, kilocode_token: str, rigs_and_creds: list[tuple[rigs.TownRig, Any]]
    ) -> None:
        """`rig:<id>:config` for each new rig, and the git token the provider gave (if any)."""
        for rig, creds in rigs_and_creds:
            installation = None if creds is None or creds.installationId is None else str(creds.installationId)
            rigs.put_rig_runtime_config(
                self.conn,
                rigs.RigConfig(
                    townId=self.id,
                    rigId=rig.id,
                    gitUrl=rig.git_url,
                    defaultBranch=rig.default_branch,
                    userId=user_id,
                    kilocodeToken=kilocode_token,
                    platformIntegrationId=installation,
                ),
            )
            if creds is not None:
                fork_import.set_git_credentials(self.conn, creds.token, installation)

    def set_forked_from(self, lineage: dict[str, Any]) -> None:
        kv_put(self.conn, FORKED_FROM_KEY, lineage)

    def start_held_bead(self, bead_id: str, rig_id: str) -> beads.Bead:
        return bead_actions.start_held_bead(self.conn, bead_id, rig_id)

    def delete_beads_by_status(self, status: str, type: str | None, rig_id: str | None) -> int:
        return bead_actions.delete_beads_by_status(self.conn, status, type, rig_id)

    def delete_beads(self, bead_ids: list[str]) -> int:
        return beads.delete_beads(self.conn, bead_ids)

    def force_close_bead(self, bead_id: str) -> beads.Bead:
        return bead_actions.force_close_bead(self.conn, bead_id)

    def force_fail_bead(self, bead_id: str) -> beads.Bead:
        return bead_actions.force_fail_bead(self.conn, bead_id)

    def merge_queue(self, **filters: Any) -> merge_queue.MergeQueueData:
        return merge_queue.merge_queue_data(self.conn, **filters)

    # -- agents -----------------------------------------------------------------------------
    def list_agents(self, rig_id: str | None) -> list[agents.Agent]:
        return agents.list_agents(self.conn, rig_id=rig_id)

    def delete_agent(self, agent_id: str, rig_id: str) -> bool:
        return agents.delete_agent(self.conn, agent_id, rig_id=rig_id)

    def reset_agent_dispatch_attempts(self, agent_id: str, rig_id: str) -> None:
        agents.reset_dispatch_attempts(self.conn, agent_id, rig_id=rig_id)

    def force_reset_agent(self, agent_id: str) -> None:
        agents.force_reset_agent(self.conn, agent_id)

    def agent_metadata_rows(self) -> list[dict[str, Any]]:
        return agents.raw_metadata_rows(self.conn)

    # -- status -----------------------------------------------------------------------------
    def drain_status(self) -> town_status.DrainStatus:
        return town_status.drain_status(self.conn)

    def mayor_status(self) -> town_status.MayorStatus:
        return town_status.mayor_status(self.conn)

    def get_alarm_status(self, *, with_billing: bool) -> alarm_status.AlarmStatus:
        return alarm_status.alarm_status(self.conn, with_billing=with_billing)

    def billing_status(self) -> alarm_status.BillingStatus:
        return alarm_status.billing_status(self.conn)

    def set_run_policy(self, policy: str) -> alarm_status.BillingStatus:
        return alarm_status.set_run_policy(self.conn, policy)

    def set_kilocode_token(self, token: str) -> None:
        config.set_ownership(self.conn, kilocode_token=token)

    # -- wasteland --------------------------------------------------------------------------
    def wasteland_connection(self) -> wasteland.WastelandConnection | None:
        return wasteland.get_connection(self.conn)

    def connect_wasteland(self, **fields: Any) -> wasteland.WastelandConnection:
        return wasteland.connect(self.conn, **fields)

    def disconnect_wasteland(self, wasteland_id: str) -> bool:
        return wasteland.disconnect(self.conn, wasteland_id)

    # -- convoys ----------------------------------------------------------------------------
    def list_convoys(self) -> list[convoys.ConvoyDetail]:
        return convoys.list_convoys(self.conn)

    def get_convoy(self, convoy_id: str) -> convoys.ConvoyDetail | None:
        return convoys.get_convoy(self.conn, convoy_id)

    def close_convoy(self, convoy_id: str) -> convoys.ConvoyDetail | None:
        return convoys.close_convoy(self.conn, convoy_id)

    def start_convoy(self, convoy_id: str) -> convoys.ConvoyDetail | None:
        return convoys.start_convoy(self.conn, convoy_id)

    def convoy_add_bead(self, convoy_id: str, bead_id: str, depends_on: list[str] | None) -> int:
        return convoys.convoy_add_bead(self.conn, convoy_id, bead_id, depends_on)

    def convoy_remove_bead(self, convoy_id: str, bead_id: str) -> int:
        return convoys.convoy_remove_bead(self.conn, convoy_id, bead_id)


# The rows file is written in chunks of this size (bounded memory in flight, between machines too).
ROWS_FILE_CHUNK_BYTES = 1 << 20


def fork_counts(source: Path, options: fork_export.ExportOptions) -> fork_import.ImportReport:
    """What a fork of the town at `source` would copy (a dry run: counts only, no rows file)."""
    options = msgspec.structs.replace(options, rows=False)
    with contextlib.closing(exported_parts(source, options)) as parts:
        return fork_import.report_of(fork_import.receive_fork(parts, None))


def exported_parts(source: Path, options: fork_export.ExportOptions) -> Generator[ExportPart, None, None]:
    """The fork export of the town database at `source`: its header, the rows written, the
    rows file's bytes and its summary. The rows are read through a reader of its own in one
    read transaction (a consistent snapshot; the town keeps taking writes) into a private rows
    file beside the source, which is sent once complete and removed when the iterator is
    closed (or at startup, after a crash: it is a scratch file of the source's)."""
    reader = open_snapshot_reader(source)
    rows_file = export_scratch(source) if options.rows else None
    try:
        if rows_file is not None:
            rows_file.write_bytes(fork_schema.rows_file_image())
            fork_export.attach_rows_file(reader, str(rows_file))  # before the read transaction
        summary: ForkExportSummary | None = None
        with reader:
            for part in fork_export.export_parts(reader, options):
                if isinstance(part, ForkExportSummary):
                    summary = part  # sent last, after the file
                else:
                    yield part
        assert summary is not None  # export_parts always ends with it
        if rows_file is not None:
            fork_export.detach_rows_file(reader)  # (writes out what SQLite still held of it)
            size = 0
            with open(rows_file, "rb") as file:
                while chunk := file.read(ROWS_FILE_CHUNK_BYTES):
                    size += len(chunk)
                    yield FileChunk(data=chunk)
            summary = msgspec.structs.replace(summary, file_bytes=size)
        yield summary
    finally:
        reader.close()
        if rows_file is not None:
            rows_file.unlink(missing_ok=True)
