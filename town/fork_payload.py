"""The fork export payload: a versioned msgspec Struct, streamable as a header plus parts.

The payload has no field that could hold a token: `ForkConfig` lists the copyable settings
by name (a whitelist), so a secret added to TownConfig later is not copied by accident.
"""

from __future__ import annotations

from typing import Literal

import msgspec
from msgspec import UNSET, UnsetType

from town.config import ContainerConfig, CustomInstructions, RefineryConfig, RoleModels

FORK_PAYLOAD_VERSION = 3  # 2: row tuples, header totals; 3: row parts as SQLite images

# TownConfig fields a fork copies (fork.md §3). Everything else is never copied.
COPIED_CONFIG_FIELDS = (
    "default_model",
    "small_model",
    "role_models",
    "max_polecats_per_rig",
    "merge_strategy",
    "refinery",
    "custom_instructions",
    "alarm_interval_active",
    "alarm_interval_idle",
    "container",
    "staged_convoys_default",
    "convoy_merge_mode",
    "disable_ai_coauthor",
)
GIT_AUTHOR_FIELDS = ("git_author_name", "git_author_email")


class ForkConfig(msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    default_model: str | UnsetType = UNSET
    small_model: str | UnsetType = UNSET
    role_models: RoleModels | UnsetType = UNSET
    max_polecats_per_rig: int | UnsetType = UNSET
    merge_strategy: Literal["direct", "pr"] | UnsetType = UNSET
    refinery: RefineryConfig | UnsetType = UNSET
    custom_instructions: CustomInstructions | UnsetType = UNSET
    alarm_interval_active: int | UnsetType = UNSET
    alarm_interval_idle: int | UnsetType = UNSET
    container: ContainerConfig | UnsetType = UNSET
    staged_convoys_default: bool | UnsetType = UNSET
    convoy_merge_mode: Literal["review-then-land", "review-and-merge"] | UnsetType = UNSET
    disable_ai_coauthor: bool | UnsetType = UNSET
    git_author_name: str | UnsetType = UNSET
    git_author_email: str | UnsetType = UNSET
    gitlab_instance_url: str | UnsetType = UNSET
    # Values only when the export was allowed to carry them (fork.md §4); else empty.
    env_vars: dict[str, str] = {}


class ExportRig(msgspec.Struct, kw_only=True):
    id: str
    name: str
    git_url: str
    default_branch: str
    config: str  # RigOverrideConfig as stored (JSON text)


class ForkExportHeader(msgspec.Struct, kw_only=True, tag="header"):
    version: int = FORK_PAYLOAD_VERSION
    source_town_id: str
    exported_at: str
    config: ForkConfig
    env_var_keys: list[str]  # every env var key of the source, copied or not
    secrets_not_copied: list[str]  # names of secret settings the source has (never values)
    rigs: list[ExportRig]
    totals: RowTotals


# Rows travel as SQLite database images: each row part is one small database holding one
# table, named as the target table, whose columns are exactly the target's (cleared columns
# already cleared, parents already resolved). The exporter builds it with INSERT ... SELECT and
# serializes it; the importer deserializes it and loads it with one INSERT ... SELECT, so rows
# never become Python objects on either side (the import's main lever, with key order and
# late indexes). Only rig ids are mapped on the way in (the `rig_id` column and top-level
# `rig_id`/`rigId` metadata keys of beads and events).

LoadedTable = Literal[
    "beads", "bead_events", "bead_dependencies", "review_metadata", "escalation_metadata", "convoy_metadata"
]

# Each loaded table's columns as a part carries them (the target table's own columns, in order).
PART_COLUMNS: dict[str, tuple[str, ...]] = {
    "beads": (
        "bead_id", "type", "status", "title", "body", "rig_id", "parent_bead_id", "assignee_agent_bead_id",
        "priority", "labels", "metadata", "dispatch_attempts", "last_dispatch_attempt_at", "created_by",
        "created_at", "updated_at", "closed_at",
    ),
    "bead_events": (
        "bead_event_id", "bead_id", "agent_id", "event_type", "old_value", "new_value", "metadata", "created_at",
    ),
    "bead_dependencies": ("bead_id", "depends_on_bead_id", "dependency_type"),
    "review_metadata": (
        "bead_id", "branch", "target_branch", "merge_commit", "pr_url", "retry_count", "auto_merge_ready_since",
        "last_feedback_check_at",
    ),
    "escalation_metadata": (
        "bead_id", "severity", "category", "acknowledged", "re_escalation_count", "acknowledged_at",
    ),
    "convoy_metadata": (
        "bead_id", "total_beads", "closed_beads", "landed_at", "feature_branch", "merge_mode", "staged",
    ),
}
LOADED_TABLES = tuple(PART_COLUMNS)  # the tables a fork loads, in load order


class RowImage(msgspec.Struct, kw_only=True, tag="rows"):
    """One part of rows: `rows` rows of `table`, in key order, as a serialized SQLite database."""

    table: LoadedTable
    rows: int
    image: bytes


class RowTotals(msgspec.Struct, kw_only=True):
    """Rows the export will stream, per table (counted in the export's snapshot up front, so an
    importer can report progress and a dry run needs no rows at all)."""

    beads: int = 0
    bead_events: int = 0
    bead_dependencies: int = 0
    review_metadata: int = 0
    escalation_metadata: int = 0
    convoy_metadata: int = 0

    @property
    def rows(self) -> int:
        return sum(msgspec.structs.astuple(self))


class SkippedCounts(msgspec.Struct, kw_only=True):
    beads_active: int = 0
    beads_agent: int = 0
    beads_message: int = 0
    convoys_not_landed: int = 0
    bead_events: int = 0
    bead_dependencies: int = 0
    agent_metadata: int = 0
    agent_nudges: int = 0
    town_events: int = 0


class ForkExportSummary(msgspec.Struct, kw_only=True, tag="summary"):
    skipped: SkippedCounts
    parents_detached: int
    # Rig references (bead rig_id columns, top-level metadata rig ids of copied beads and
    # events) naming a rig the source no longer has, which an import clears. Counted here only
    # for a count-only export (rows=False); a streamed import counts what it clears.
    rig_refs_unmapped: int | None = None


ExportPart = ForkExportHeader | RowImage | ForkExportSummary


class ForkExportPayload(msgspec.Struct, kw_only=True):
    """The whole export in one value (small towns, tests); forks stream the same parts."""

    version: int = FORK_PAYLOAD_VERSION
    parts: list[ExportPart]
