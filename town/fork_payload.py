"""The fork export payload: a versioned msgspec Struct, streamable as a header plus parts.

The payload has no field that could hold a token: `ForkConfig` lists the copyable settings
by name (a whitelist), so a secret added to TownConfig later is not copied by accident.
"""

from __future__ import annotations

from typing import Literal

import msgspec
from msgspec import UNSET, UnsetType

from town.config import ContainerConfig, CustomInstructions, RefineryConfig, RoleModels

FORK_PAYLOAD_VERSION = 1

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


class ExportBead(msgspec.Struct, array_like=True):
    """A copied bead; assignee and dispatch state are already cleared, parent already resolved."""

    bead_id: str
    type: str
    status: str
    title: str
    body: str | None
    rig_id: str | None
    parent_bead_id: str | None
    priority: str | None
    labels: str | None
    metadata: str | None
    created_by: str | None
    created_at: str
    updated_at: str
    closed_at: str | None


class ExportEvent(msgspec.Struct, array_like=True):
    bead_event_id: str
    bead_id: str
    agent_id: str | None
    event_type: str
    old_value: str | None
    new_value: str | None
    metadata: str | None
    created_at: str


class ExportDependency(msgspec.Struct, array_like=True):
    bead_id: str
    depends_on_bead_id: str
    dependency_type: str


class ExportReview(msgspec.Struct, array_like=True):
    bead_id: str
    branch: str
    target_branch: str
    merge_commit: str | None
    pr_url: str | None
    retry_count: int | None


class ExportEscalation(msgspec.Struct, array_like=True):
    bead_id: str
    severity: str
    category: str | None
    acknowledged: int
    re_escalation_count: int
    acknowledged_at: str | None


class ExportConvoy(msgspec.Struct, array_like=True):
    bead_id: str
    total_beads: int
    closed_beads: int
    landed_at: str | None
    feature_branch: str | None
    merge_mode: str | None
    staged: int


class BeadRows(msgspec.Struct, tag="beads"):
    rows: list[ExportBead]


class EventRows(msgspec.Struct, tag="bead_events"):
    rows: list[ExportEvent]


class DependencyRows(msgspec.Struct, tag="bead_dependencies"):
    rows: list[ExportDependency]


class ReviewRows(msgspec.Struct, tag="review_metadata"):
    rows: list[ExportReview]


class EscalationRows(msgspec.Struct, tag="escalation_metadata"):
    rows: list[ExportEscalation]


class ConvoyRows(msgspec.Struct, tag="convoy_metadata"):
    rows: list[ExportConvoy]


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


ExportPart = (
    ForkExportHeader | BeadRows | EventRows | DependencyRows | ReviewRows | EscalationRows | ConvoyRows | ForkExportSummary
)


class ForkExportPayload(msgspec.Struct, kw_only=True):
    """The whole export in one value (small towns, tests); forks stream the same parts."""

    version: int = FORK_PAYLOAD_VERSION
    parts: list[ExportPart]
