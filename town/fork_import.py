"""Import a fork export into a new town (fork.md §3): one write transaction, loaded the way
SQLite loads fastest.

Rig ids are remapped everywhere they appear (the `rig_id` column and the top-level
`rig_id`/`rigId` metadata keys of beads and events); ids of beads and events are kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal

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


ForkPhase = Literal["export", "import", "indexes", "config"]
# (phase, rows done, rows total); called from the importing thread.
Progress = Callable[[ForkPhase, int, int], None]

# The tables a fork loads; their secondary indexes are dropped for the load, rebuilt after.
_LOADED_TABLES = ("beads", "bead_events", "bead_dependencies", "review_metadata", "escalation_metadata", "convoy_metadata")
_RIG_MAP_NAME = "fork_rig_map"
_RIG_MAP = f"temp.{_RIG_MAP_NAME}"


_UNMAPPED_FN = "fork_rig_unmapped"


def _mapped_rig(param: str) -> str:
    """SQL for the new id of the (non-null) rig id `param`; a rig the map lacks reads as NULL
    and is counted by the importer's SQL function (called only for those rows)."""
    return f"coalesce((SELECT new_id FROM {_RIG_MAP} WHERE old_id = {param}), {_UNMAPPED_FN}())"


def _mapped_metadata(param: str) -> str:
    """SQL mapping the top-level `rig_id`/`rigId` string values of a JSON object (NULL when the
    rig is not mapped); any other text (no rig key, invalid JSON, not an object) stays as is."""
    mapped = param
    for key in _RIG_KEYS:
        path = f"'$.{key}'"
        mapped = (
            f"CASE WHEN json_type({param}, {path}) = 'text'"
            f" THEN json_set({mapped}, {path}, {_mapped_rig(f'json_extract({param}, {path})')}) ELSE {mapped} END"
        )
    return (
        f"CASE WHEN {param} IS NULL OR instr({param}, 'rig') = 0 OR NOT json_valid({param})"
        f" OR json_type({param}) <> 'object' THEN {param} ELSE {mapped} END"
    )


# Each statement binds a row tuple exactly as exported; mapping happens inside SQLite.
_INSERT_BEADS = (
    "INSERT INTO beads (bead_id, type, status, title, body, rig_id, parent_bead_id, assignee_agent_bead_id,"
    " priority, labels, metadata, dispatch_attempts, last_dispatch_attempt_at, created_by, created_at,"
    f" updated_at, closed_at) VALUES (?1, ?2, ?3, ?4, ?5, iif(?6 IS NULL, NULL, {_mapped_rig('?6')}), ?7, NULL, ?8, ?9,"
    f" {_mapped_metadata('?10')}, 0, NULL, ?11, ?12, ?13, ?14)"
)
_INSERT_EVENTS = (
    "INSERT INTO bead_events (bead_event_id, bead_id, agent_id, event_type, old_value, new_value, metadata,"
    f" created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, {_mapped_metadata('?7')}, ?8)"
)
_INSERT_DEPENDENCIES = "INSERT INTO bead_dependencies (bead_id, depends_on_bead_id, dependency_type) VALUES (?, ?, ?)"
# Review timers are runtime state of the source's queue: cleared.
_INSERT_REVIEWS = (
    "INSERT INTO review_metadata (bead_id, branch, target_branch, merge_commit, pr_url, retry_count,"
    " auto_merge_ready_since, last_feedback_check_at) VALUES (?, ?, ?, ?, ?, ?, NULL, NULL)"
)
_INSERT_ESCALATIONS = (
    "INSERT INTO escalation_metadata (bead_id, severity, category, acknowledged, re_escalation_count,"
    " acknowledged_at) VALUES (?, ?, ?, ?, ?, ?)"
)
_INSERT_CONVOYS = (
    "INSERT INTO convoy_metadata (bead_id, total_beads, closed_beads, landed_at, feature_branch, merge_mode,"
    " staged) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_INSERTS: dict[type, tuple[str, str]] = {
    BeadRows: (_INSERT_BEADS, "beads"),
    EventRows: (_INSERT_EVENTS, "bead_events"),
    DependencyRows: (_INSERT_DEPENDENCIES, "bead_dependencies"),
    ReviewRows: (_INSERT_REVIEWS, "review_metadata"),
    EscalationRows: (_INSERT_ESCALATIONS, "escalation_metadata"),
    ConvoyRows: (_INSERT_CONVOYS, "convoy_metadata"),
}


def import_fork(
    conn: apsw.Connection | None,
    parts: Iterable[ExportPart],
    *,
    rig_id_mapping: dict[str, str],
    progress: Progress | None = None,
) -> ImportReport:
    """Write every part into this (new, empty, still private) town; the caller's transaction
    makes it atomic. With `conn=None` nothing is written (dryRun): the header's totals are
    what an import would copy.

    The load is shaped for SQLite: secondary indexes are dropped first and rebuilt once at the
    end (a sorted build instead of random inserts), rows arrive in key order (append-only key
    b-trees), each part is one prepared statement over its row tuples, and rig ids are mapped
    by SQLite from a temporary table, so no Python code runs per row.
    """
    report = (lambda *_: None) if progress is None else progress
    load = _Load(conn, rig_id_mapping, report)
    try:
        for part in parts:
            load.add(part)
        if load.header is None or load.summary is None:
            raise BadRequest("Incomplete fork payload: header or summary missing")
        load.finish()
    finally:
        load.close()
    header, summary = load.header, load.summary
    unmapped = load.unmapped.value if summary.rig_refs_unmapped is None else summary.rig_refs_unmapped
    return ImportReport(
        source_town_id=header.source_town_id,
        copied=load.copied,
        skipped=summary.skipped,
        parents_detached=summary.parents_detached,
        rig_refs_unmapped=unmapped,
        rig_id_mapping=dict(rig_id_mapping),
        source_rigs=header.rigs,
        env_var_keys=header.env_var_keys,
        env_vars_copied=bool(header.config.env_vars),
        secrets_not_copied=header.secrets_not_copied,
    )


class _Load:
    """One import's state: the header's plan, counts so far, the indexes to rebuild."""

    def __init__(self, conn: apsw.Connection | None, mapping: dict[str, str], report: Progress) -> None:
        self.conn, self.mapping, self.report = conn, mapping, report
        self.copied = CopiedCounts()
        self.header: ForkExportHeader | None = None
        self.summary: ForkExportSummary | None = None
        self.unmapped = _Counter()
        self.indexes: list[tuple[str, str]] = []
        self.total = self.done = 0
        self.prepared = False

    def add(self, part: ExportPart) -> None:
        conn = self.conn
        if isinstance(part, ForkExportHeader):
            self._start(part)
        elif isinstance(part, ForkExportSummary):
            self.summary = part
        elif conn is not None:
            if not self.prepared:
                raise BadRequest("Fork payload rows arrived before its header")
            sql, table = _INSERTS[type(part)]
            conn.executemany(sql, part.rows)
            setattr(self.copied, table, getattr(self.copied, table) + len(part.rows))
            self.done += len(part.rows)
            self.report("import", self.done, self.total)

    def _start(self, header: ForkExportHeader) -> None:
        if header.version != FORK_PAYLOAD_VERSION:
            raise BadRequest(f"Unsupported fork payload version {header.version}")
        self.header = header
        for rig in header.rigs:  # rigs the caller did not map get fresh ids
            self.mapping.setdefault(rig.id, new_id())
        self.total = header.totals.rows
        self.report("export", 0, self.total)
        conn = self.conn
        if conn is None:
            self.copied = CopiedCounts(**msgspec.structs.asdict(header.totals), rigs=len(header.rigs))
            return
        self.indexes = _drop_secondary_indexes(conn)
        conn.create_scalar_function(_UNMAPPED_FN, self.unmapped.count, 0, deterministic=False)
        conn.execute(f"CREATE TEMP TABLE {_RIG_MAP_NAME} (old_id TEXT PRIMARY KEY, new_id TEXT NOT NULL)")
        conn.executemany(f"INSERT INTO {_RIG_MAP} (old_id, new_id) VALUES (?, ?)", list(self.mapping.items()))
        self.prepared = True
        _insert_rigs(conn, header, self.mapping)
        self.copied.rigs = len(header.rigs)

    def finish(self) -> None:
        conn, header = self.conn, self.header
        if conn is None or header is None:
            return
        self.report("indexes", self.done, self.total)
        for _, sql in self.indexes:
            conn.execute(sql)
        self.report("config", self.done, self.total)
        _apply_config(conn, header.config)

    def close(self) -> None:
        """Leave the connection as it was, whether the load finished or failed (a failed load's
        writes, index drops included, roll back with the caller's transaction)."""
        if self.conn is None or not self.prepared:
            return
        self.conn.execute(f"DROP TABLE IF EXISTS {_RIG_MAP}")
        self.conn.create_scalar_function(_UNMAPPED_FN, None, 0)


class _Counter:
    def __init__(self) -> None:
        self.value = 0

    def count(self, *_: object) -> None:
        """SQL function `fork_rig_unmapped()`: counts one cleared reference, answers NULL."""
        self.value += 1


def _drop_secondary_indexes(conn: apsw.Connection) -> list[tuple[str, str]]:
    """Drop the loaded tables' own indexes (not the implicit key indexes, which cannot be
    dropped); returns their exact definitions, re-run as stored so the schema ends identical."""
    marks = ", ".join("?" for _ in _LOADED_TABLES)
    found = [
        (str(name), str(sql))
        for name, sql in conn.execute(
            f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ({marks})"
            " ORDER BY rowid",
            _LOADED_TABLES,
        )
    ]
    for name, _ in found:
        conn.execute(f'DROP INDEX "{name}"')
    return found


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
