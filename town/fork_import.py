"""Import a fork export into a new town (fork.md §3): one write transaction, bulk inserts.

Rig ids are remapped everywhere they appear (the `rig_id` column and the top-level
`rig_id`/`rigId` metadata keys of beads and events); ids of beads and events are kept.
"""

from __future__ import annotations

from collections.abc import Iterable

import apsw
import msgspec

from dos.kv import kv_put
from town.clock import new_id, now_iso
from town.config import CONFIG_KEY, TownConfig, get_config
from town.errors import BadRequest
from town.fork_payload import (
    FORK_PAYLOAD_VERSION,
    BeadRows,
    ConvoyRows,
    DependencyRows,
    EscalationRows,
    EventRows,
    ExportPart,
    ExportRig,
    ForkConfig,
    ForkExportHeader,
    ForkExportSummary,
    ReviewRows,
    SkippedCounts,
)

_RIG_KEYS = ("rig_id", "rigId")


class CopiedCounts(msgspec.Struct, kw_only=True):
    beads: int = 0
    bead_events: int = 0
    bead_dependencies: int = 0
    review_metadata: int = 0
    escalation_metadata: int = 0
    convoy_metadata: int = 0
    rigs: int = 0


class ImportReport(msgspec.Struct, kw_only=True):
    source_town_id: str
    copied: CopiedCounts
    skipped: SkippedCounts
    parents_detached: int
    rig_refs_unmapped: int  # bead rig_id columns and metadata rig ids with no rig to map to
    rig_id_mapping: dict[str, str]
    source_rigs: list[ExportRig]
    env_var_keys: list[str]
    env_vars_copied: bool
    secrets_not_copied: list[str]


class _Remapper:
    def __init__(self, mapping: dict[str, str]) -> None:
        self.mapping = mapping
        self.unmapped = 0

    def rig(self, rig_id: str | None) -> str | None:
        if rig_id is None:
            return None
        new = self.mapping.get(rig_id)
        if new is None:
            self.unmapped += 1
        return new

    def metadata(self, text: str | None) -> str | None:
        # Fast path: most metadata never mentions a rig.
        if text is None or ("rig_id" not in text and "rigId" not in text):
            return text
        try:
            value = msgspec.json.decode(text)
        except msgspec.DecodeError:
            return text
        if not isinstance(value, dict):
            return text
        changed = False
        for key in _RIG_KEYS:
            old = value.get(key)
            if isinstance(old, str):
                value[key] = self.rig(old)
                changed = True
        return msgspec.json.encode(value).decode() if changed else text


def import_fork(
    conn: apsw.Connection | None, parts: Iterable[ExportPart], *, rig_id_mapping: dict[str, str]
) -> ImportReport:
    """Write every part into this (new, empty) town. The caller's transaction makes it atomic.

    With `conn=None` nothing is written and the report is what an import would do (dryRun).
    """
    remap = _Remapper(rig_id_mapping)
    executemany = conn.executemany if conn is not None else _count_only
    copied = CopiedCounts()
    header: ForkExportHeader | None = None
    summary: ForkExportSummary | None = None
    for part in parts:
        if isinstance(part, ForkExportHeader):
            if part.version != FORK_PAYLOAD_VERSION:
                raise BadRequest(f"Unsupported fork payload version {part.version}")
            header = part
            for rig in part.rigs:  # rigs the caller did not map get fresh ids
                rig_id_mapping.setdefault(rig.id, new_id())
            if conn is not None:
                _apply_config(conn, part.config)
                _insert_rigs(conn, part, rig_id_mapping)
            copied.rigs = len(part.rigs)
        elif isinstance(part, BeadRows):
            executemany(
                "INSERT INTO beads (bead_id, type, status, title, body, rig_id, parent_bead_id,"
                " assignee_agent_bead_id, priority, labels, metadata, dispatch_attempts,"
                " last_dispatch_attempt_at, created_by, created_at, updated_at, closed_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, 0, NULL, ?, ?, ?, ?)",
                [
                    (b.bead_id, b.type, b.status, b.title, b.body, remap.rig(b.rig_id), b.parent_bead_id,
                     b.priority, b.labels, remap.metadata(b.metadata), b.created_by, b.created_at,
                     b.updated_at, b.closed_at)
                    for b in part.rows
                ],
            )
            copied.beads += len(part.rows)
        elif isinstance(part, EventRows):
            executemany(
                "INSERT INTO bead_events (bead_event_id, bead_id, agent_id, event_type, old_value,"
                " new_value, metadata, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (e.bead_event_id, e.bead_id, e.agent_id, e.event_type, e.old_value, e.new_value,
                     remap.metadata(e.metadata), e.created_at)
                    for e in part.rows
                ],
            )
            copied.bead_events += len(part.rows)
        elif isinstance(part, DependencyRows):
            executemany(
                "INSERT INTO bead_dependencies (bead_id, depends_on_bead_id, dependency_type) VALUES (?, ?, ?)",
                [(d.bead_id, d.depends_on_bead_id, d.dependency_type) for d in part.rows],
            )
            copied.bead_dependencies += len(part.rows)
        elif isinstance(part, ReviewRows):
            # Review timers are runtime state of the source's queue: cleared.
            executemany(
                "INSERT INTO review_metadata (bead_id, branch, target_branch, merge_commit, pr_url,"
                " retry_count, auto_merge_ready_since, last_feedback_check_at) VALUES (?, ?, ?, ?, ?, ?, NULL, NULL)",
                [(r.bead_id, r.branch, r.target_branch, r.merge_commit, r.pr_url, r.retry_count) for r in part.rows],
            )
            copied.review_metadata += len(part.rows)
        elif isinstance(part, EscalationRows):
            executemany(
                "INSERT INTO escalation_metadata (bead_id, severity, category, acknowledged,"
                " re_escalation_count, acknowledged_at) VALUES (?, ?, ?, ?, ?, ?)",
                [(e.bead_id, e.severity, e.category, e.acknowledged, e.re_escalation_count, e.acknowledged_at)
                 for e in part.rows],
            )
            copied.escalation_metadata += len(part.rows)
        elif isinstance(part, ConvoyRows):
            executemany(
                "INSERT INTO convoy_metadata (bead_id, total_beads, closed_beads, landed_at,"
                " feature_branch, merge_mode, staged) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(c.bead_id, c.total_beads, c.closed_beads, c.landed_at, c.feature_branch, c.merge_mode, c.staged)
                 for c in part.rows],
            )
            copied.convoy_metadata += len(part.rows)
        elif isinstance(part, ForkExportSummary):
            summary = part
    if header is None or summary is None:
        raise BadRequest("Incomplete fork payload: header or summary missing")
    return ImportReport(
        source_town_id=header.source_town_id,
        copied=copied,
        skipped=summary.skipped,
        parents_detached=summary.parents_detached,
        rig_refs_unmapped=remap.unmapped,
        rig_id_mapping=dict(rig_id_mapping),
        source_rigs=header.rigs,
        env_var_keys=header.env_var_keys,
        env_vars_copied=bool(header.config.env_vars),
        secrets_not_copied=header.secrets_not_copied,
    )


def _count_only(sql: str, rows: Iterable[object]) -> None:
    for _ in rows:  # still run the remapping, so a dry run counts unmapped rig ids too
        pass


def _apply_config(conn: apsw.Connection, fork: ForkConfig) -> None:
    """The new town's config: its new-town defaults with the copied settings laid over them."""
    merged = msgspec.to_builtins(get_config(conn))
    copied = msgspec.to_builtins(fork)
    instance_url = copied.pop("gitlab_instance_url", None)
    merged.update(copied)
    if instance_url is not None:
        merged.setdefault("git_auth", {})["gitlab_instance_url"] = instance_url
    try:
        checked = msgspec.convert(merged, TownConfig)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"Source config does not validate: {exc}") from exc
    kv_put(conn, CONFIG_KEY, checked)


def _insert_rigs(conn: apsw.Connection, header: ForkExportHeader, mapping: dict[str, str]) -> None:
    now = now_iso()
    rows = [(mapping[r.id], r.name, r.git_url, r.default_branch, r.config, now) for r in header.rigs]
    conn.executemany(
        "INSERT INTO rigs (id, name, git_url, default_branch, config, created_at) VALUES (?, ?, ?, ?, ?, ?)", rows
    )




def set_git_credentials(conn: apsw.Connection, token: str, installation_id: str | None) -> None:
    """Record the new owner's git token (from the provider) in the town's git_auth."""
    config = msgspec.to_builtins(get_config(conn))
    git_auth = config.setdefault("git_auth", {})
    git_auth["github_token"] = token
    if installation_id is not None:
        git_auth["platform_integration_id"] = installation_id
    kv_put(conn, CONFIG_KEY, msgspec.convert(config, TownConfig))
