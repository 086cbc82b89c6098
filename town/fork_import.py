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
    ExportBead,
    ExportEvent,
    ExportPart,
    ExportRig,
    ForkConfig,
    ForkExportHeader,
    ForkExportSummary,
    ReviewRows,
    RowTotals,
    SkippedCounts,
)

_RIG_KEYS = ("rig_id", "rigId")


class CopiedCounts(RowTotals, kw_only=True):
    """What a fork copied: the rows of each table, and its rigs."""

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


class _Remapper:
    """Maps source rig ids to the new town's and counts the references it had to clear."""

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

    def metadata(self, text: str) -> str:
        """Map the top-level `rig_id`/`rigId` strings of a JSON object; other text is kept."""
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

    # Whole parts at a time. Only rows whose metadata mentions a rig key are rebuilt (a cheap
    # substring test), so most rows are bound exactly as they arrived.
    def beads(self, rows: list[ExportBead]) -> list[ExportBead]:
        meta = self.metadata
        return [
            (*b[:5], self.rig(b[5]), *b[6:9], b[9] if b[9] is None or not _mentions_rig(b[9]) else meta(b[9]), *b[10:])
            for b in rows
        ]

    def events(self, rows: list[ExportEvent]) -> list[ExportEvent]:
        meta = self.metadata
        return [e if (m := e[6]) is None or not _mentions_rig(m) else (*e[:6], meta(m), e[7]) for e in rows]


def _mentions_rig(text: str) -> bool:
    return "rig_id" in text or "rigId" in text


# Each statement binds a row tuple in its export column order (one prepared statement a part).
_INSERT_BEADS = (
    "INSERT INTO beads (bead_id, type, status, title, body, rig_id, parent_bead_id, assignee_agent_bead_id,"
    " priority, labels, metadata, dispatch_attempts, last_dispatch_attempt_at, created_by, created_at,"
    " updated_at, closed_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, 0, NULL, ?, ?, ?, ?)"
)
_INSERT_EVENTS = (
    "INSERT INTO bead_events (bead_event_id, bead_id, agent_id, event_type, old_value, new_value, metadata,"
    " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
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
    b-trees), and each part is one prepared statement over its row tuples; only the rows that
    mention a rig are rebuilt to map it.
    """
    report = (lambda *_: None) if progress is None else progress
    load = _Load(conn, rig_id_mapping, report)
    for part in parts:
        load.add(part)
    header, summary = load.header, load.summary
    if header is None or summary is None:
        raise BadRequest("Incomplete fork payload: header or summary missing")
    load.finish()
    unmapped = load.remap.unmapped if summary.rig_refs_unmapped is None else summary.rig_refs_unmapped
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
        self.remap = _Remapper(mapping)
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
            rows = part.rows
            if isinstance(part, BeadRows):
                rows = self.remap.beads(part.rows)
            elif isinstance(part, EventRows):
                rows = self.remap.events(part.rows)
            conn.executemany(sql, rows)
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
