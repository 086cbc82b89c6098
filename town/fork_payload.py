"""The fork export payload: a versioned msgspec Struct, streamable as a header plus parts.

The payload has no field that could hold a token: `ForkConfig` lists the copyable settings
by name (a whitelist), so a secret added to TownConfig later is not copied by accident.
"""

from __future__ import annotations

from typing import Literal

import msgspec
from msgspec import UNSET, UnsetType

from town.config import ContainerConfig, CustomInstructions, RefineryConfig, RoleModels

FORK_PAYLOAD_VERSION = 4  # 2: row tuples, header totals; 3: row parts as SQLite images; 4: one rows file

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
    rig_id_mapping: dict[str, str]  # every rig in `rigs` -> its id in the new town
    totals: RowTotals


# Rows travel as one SQLite database file, the rows file: a town's own schema without the
# loaded tables' secondary indexes, holding only the copied rows, already as the new town keeps
# them (cleared columns cleared, parents resolved, rig ids mapped to the new town's). The
# exporter fills it beside the source with INSERT ... SELECT in key order (so rows never become
# Python objects and every key b-tree grows append-only) and streams its bytes; the importer
# writes those bytes as the new town's file, then adds what is the new town's own (identity,
# ownership, rigs, config) and builds the indexes once. Each row is copied by SQL once, as
# SQLite's own copy does; between machines the file moves as plain bytes.

LoadedTable = Literal[
    "beads", "bead_events", "bead_dependencies", "review_metadata", "escalation_metadata", "convoy_metadata"
]

# The columns a fork copies of each loaded table (the target table's own columns, in order).
LOADED_COLUMNS: dict[str, tuple[str, ...]] = {
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
LOADED_TABLES = tuple(LOADED_COLUMNS)  # the tables a fork loads, in load order


class RowsWritten(msgspec.Struct, kw_only=True, tag="written"):
    """Progress: the exporter has written `rows` more rows of `table` into the rows file."""

    table: LoadedTable
    rows: int


class FileChunk(msgspec.Struct, kw_only=True, tag="chunk"):
    """The next bytes of the rows file (sent after every row is in it)."""

    data: bytes


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
    # events) naming a rig the source no longer has: cleared in the copy.
    rig_refs_unmapped: int
    file_bytes: int = 0  # the rows file's size (0: a count-only export sends no file)


ExportPart = ForkExportHeader | RowsWritten | FileChunk | ForkExportSummary


class ForkExportPayload(msgspec.Struct, kw_only=True):
    """The whole export in one value (small towns, tests); forks stream the same parts."""

    version: int = FORK_PAYLOAD_VERSION
    parts: list[ExportPart]
