"""The town's rig registry (`rigs`), per-rig override config, and the per-rig runtime config
kept in KV `rig:<id>:config`."""

from __future__ import annotations

from typing import Annotated, Any

import apsw
import msgspec
from msgspec import UNSET, Meta, UnsetType

from dos.kv import kv_delete, kv_get, kv_put
from town.bead_events import decode_object, json_text
from town.beads import delete_beads
from town.bounds import MAX_COUNT, Secret, Short
from town.clock import now_iso
from town.config import ConvoyMergeMode, DelayMinutes, Instructions, MergeStrategy, ReviewMode
from town.errors import BadRequest, Conflict, NotFound

_UNIQUE_VIOLATION = apsw.mapping_extended_result_codes["SQLITE_CONSTRAINT_UNIQUE"]

PositiveInt = Annotated[int, Meta(gt=0, le=MAX_COUNT)]


class TownRig(msgspec.Struct, kw_only=True):
    """A `rigs` row; `config` is the stored RigOverrideConfig object."""

    id: str
    name: str
    git_url: str
    default_branch: str
    config: dict[str, Any]
    created_at: str


class RigRoleModels(msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    polecat: Short | UnsetType = UNSET
    refinery: Short | UnsetType = UNSET


class RigCustomInstructions(
    msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True
):
    polecat: Instructions | UnsetType = UNSET
    refinery: Instructions | UnsetType = UNSET


class RigOverrideConfig(
    msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True
):
    """Per-rig overrides of the town config (model.md §4); unset = inherit from the town.

    UNSET rather than None defaults, so an explicit `auto_merge_delay_minutes: null`
    ("disabled") survives a round trip as distinct from "inherit".
    """

    default_model: Short | UnsetType = UNSET
    role_models: RigRoleModels | UnsetType = UNSET
    review_mode: ReviewMode | UnsetType = UNSET
    code_review: bool | UnsetType = UNSET
    auto_resolve_pr_feedback: bool | UnsetType = UNSET
    auto_resolve_merge_conflicts: bool | UnsetType = UNSET
    auto_merge_delay_minutes: DelayMinutes | UnsetType | None = UNSET
    merge_strategy: MergeStrategy | UnsetType = UNSET
    convoy_merge_mode: ConvoyMergeMode | UnsetType = UNSET
    custom_instructions: RigCustomInstructions | UnsetType = UNSET
    git_push_flags: Secret | UnsetType = UNSET
    max_concurrent_polecats: PositiveInt | UnsetType = UNSET
    max_dispatch_attempts: PositiveInt | UnsetType = UNSET


class RigConfig(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Runtime dispatch config of a rig (KV `rig:<rigId>:config`), camelCase as upstream."""

    townId: str
    rigId: str
    gitUrl: str
    defaultBranch: str
    userId: str
    kilocodeToken: str | None = None
    platformIntegrationId: str | None = None
    merge_strategy: MergeStrategy | None = None


_RIG_COLUMNS = "id, name, git_url, default_branch, config, created_at"


def _row_to_rig(row: tuple[Any, ...]) -> TownRig:
    return TownRig(
        id=row[0],
        name=row[1],
        git_url=row[2],
        default_branch=row[3],
        config=decode_object(row[4]),
        created_at=row[5],
    )


def add_rig(
    conn: apsw.Connection,
    *,
    rig_id: str,
    name: str,
    git_url: str,
    default_branch: str,
    config: RigOverrideConfig | None = None,
) -> TownRig:
    """Register a rig. Re-adding the same id updates name/url/branch (config untouched)."""
    config_text = json_text(config if config is not None else RigOverrideConfig())
    try:
        conn.execute(
            f"INSERT INTO rigs ({_RIG_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET name = excluded.name, git_url = excluded.git_url, "
            "default_branch = excluded.default_branch",
            (rig_id, name, git_url, default_branch, config_text, now_iso()),
        )
    except apsw.ConstraintError as exc:
        # The only UNIQUE constraint left after the id upsert is idx_rigs_name.
        if exc.extendedresult == _UNIQUE_VIOLATION:  # type: ignore[attr-defined]
            raise Conflict(f"Rig name {name!r} already exists in this town") from exc
        raise
    rig = get_rig(conn, rig_id)
    assert rig is not None
    return rig


def get_rig(conn: apsw.Connection, rig_id: str) -> TownRig | None:
    row = conn.execute(f"SELECT {_RIG_COLUMNS} FROM rigs WHERE id = ?", (rig_id,)).fetchone()
    return None if row is None else _row_to_rig(row)


def list_rigs(conn: apsw.Connection) -> list[TownRig]:
    rows = conn.execute(f"SELECT {_RIG_COLUMNS} FROM rigs ORDER BY created_at, id").fetchall()
    return [_row_to_rig(r) for r in rows]


def delete_rig(conn: apsw.Connection, rig_id: str) -> bool:
    """Delete a rig with its beads (and their descendants) and its runtime config.

    Runs the cascade even when the row is already gone, so a half-finished removal can be
    retried; returns whether the row existed.
    """
    rows = conn.execute("SELECT bead_id FROM beads WHERE rig_id = ?", (rig_id,))
    bead_ids = [str(r[0]) for r in rows]
    delete_beads(conn, bead_ids)
    kv_delete(conn, f"rig:{rig_id}:config")
    conn.execute("DELETE FROM rigs WHERE id = ?", (rig_id,))
    return conn.changes() > 0


def rig_override_config(rig: TownRig) -> RigOverrideConfig:
    """The rig's override config as a Struct; a stored value that no longer validates reads as
    empty (inherit everything), like upstream's unparsable → `{}`."""
    try:
        return msgspec.convert(rig.config, RigOverrideConfig)
    except msgspec.ValidationError:
        return RigOverrideConfig()


def set_rig_config(conn: apsw.Connection, rig_id: str, config: RigOverrideConfig) -> TownRig:
    """Replace the rig's override config as a whole (validated: callers may build it in code)."""
    try:
        checked = msgspec.convert(msgspec.to_builtins(config), RigOverrideConfig)
    except msgspec.ValidationError as exc:
        raise BadRequest(str(exc)) from exc
    conn.execute("UPDATE rigs SET config = ? WHERE id = ?", (json_text(checked), rig_id))
    if conn.changes() == 0:
        raise NotFound(f"Rig {rig_id} not found")
    rig = get_rig(conn, rig_id)
    assert rig is not None
    return rig


def put_rig_runtime_config(conn: apsw.Connection, config: RigConfig) -> None:
    kv_put(conn, f"rig:{config.rigId}:config", config)


def get_rig_runtime_config(conn: apsw.Connection, rig_id: str) -> RigConfig | None:
    stored = kv_get(conn, f"rig:{rig_id}:config")
    return None if stored is None else msgspec.convert(stored, RigConfig)


__all__ = [
    "RigConfig",
    "RigCustomInstructions",
    "RigOverrideConfig",
    "RigRoleModels",
    "TownRig",
    "add_rig",
    "delete_rig",
    "get_rig",
    "get_rig_runtime_config",
    "list_rigs",
    "put_rig_runtime_config",
    "rig_override_config",
    "set_rig_config",
]
