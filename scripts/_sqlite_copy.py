"""SQLite's own copy of a fork's rows: the reference a fork is measured against (bench only).

Not part of the service and never imported by it (scripts/bench_fork.py --compare-sqlite uses
it). Given a source town's .sqlite3 file it builds what SQLite itself does fastest with the
same rows a fork copies:

1. an empty database with exactly a town's schema (town.schema.TOWN_MIGRATIONS applied with
   dos.migrations.apply_migrations on a dos.runtime.open_database connection: WAL,
   synchronous NORMAL, as the service opens town databases);
2. the loaded tables' secondary indexes dropped (their `sql` kept);
3. the source `ATTACH`ed as `src`;
4. timed from here: ONE transaction of `INSERT INTO main.t (...) SELECT ... FROM src.t` with
   the fork's own copied-set predicate (town.fork_export._COPIED, rewritten to read `src`),
   the same columns and the same cleared columns as the fork import, tables first, rows in
   primary-key order; then the indexes re-created from the saved sql; commit.

Rig ids are copied as they are (a fork maps them to new ids; that costs SQLite almost
nothing, so the reference leaves it out).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from dos.migrations import apply_migrations
from dos.runtime import open_database
from town import fork_export
from town.fork_schema import drop_secondary_indexes
from town.schema import TOWN_MIGRATIONS

# Page cache of the copy, KiB; None keeps SQLite's default, as the fork import does (a 64 MiB
# cache made its index build and commit slower).
DEFAULT_CACHE_KIB: int | None = None

_TABLE_REF = re.compile(r"\b(FROM|JOIN)\s+([A-Za-z_][A-Za-z0-9_]*)\b(?!\s*\.)", re.IGNORECASE)


def attached_copied_cte(schema: str = "src") -> str:
    """town.fork_export._COPIED with every table it reads qualified by `schema`."""
    text = fork_export._COPIED

    def qualify(m: re.Match[str]) -> str:
        name = m.group(2)
        if name.lower() in ("copied", schema.lower()):
            return m.group(0)
        return f"{m.group(1)} {schema}.{name}"

    rewritten = _TABLE_REF.sub(qualify, text)
    unqualified = [
        m.group(2)
        for m in _TABLE_REF.finditer(rewritten)
        if m.group(2).lower() not in ("copied", schema.lower())
    ]
    if unqualified or f"{schema}.beads" not in rewritten:
        raise RuntimeError(f"could not rewrite fork_export._COPIED for ATTACH (left: {unqualified}):\n{text}")
    return rewritten


def copy_statements(schema: str = "src") -> list[tuple[str, str]]:
    """(table, INSERT ... SELECT) in load order: tables first (rigs, beads, then their rows)."""
    cte = f"WITH {attached_copied_cte(schema)}"
    in_copied = "IN (SELECT bead_id FROM copied)"

    def typed(kind: str) -> str:
        return f"IN (SELECT c.bead_id FROM copied c JOIN {schema}.beads b ON b.bead_id = c.bead_id WHERE b.type = '{kind}')"

    return [
        (
            "rigs",
            (
                "INSERT INTO main.rigs (id, name, git_url, default_branch, config, created_at)"
                f" SELECT id, name, git_url, default_branch, coalesce(config, '{{}}'), created_at FROM {schema}.rigs ORDER BY id"
            ),
        ),
        (
            "beads",
            (
                f"{cte} INSERT INTO main.beads (bead_id, type, status, title, body, rig_id, parent_bead_id,"
                " assignee_agent_bead_id, priority, labels, metadata, dispatch_attempts, last_dispatch_attempt_at,"
                " created_by, created_at, updated_at, closed_at)"
                " SELECT b.bead_id, b.type, b.status, b.title, b.body, b.rig_id,"
                f" CASE WHEN b.parent_bead_id {in_copied} THEN b.parent_bead_id END,"
                " NULL, b.priority, b.labels, b.metadata, 0, NULL, b.created_by, b.created_at, b.updated_at, b.closed_at"
                f" FROM {schema}.beads b WHERE b.bead_id {in_copied} ORDER BY b.bead_id"
            ),
        ),
        (
            "bead_events",
            (
                f"{cte} INSERT INTO main.bead_events (bead_event_id, bead_id, agent_id, event_type, old_value, new_value,"
                " metadata, created_at)"
                " SELECT bead_event_id, bead_id, agent_id, event_type, old_value, new_value, metadata, created_at"
                f" FROM {schema}.bead_events WHERE bead_id {in_copied} ORDER BY bead_event_id"
            ),
        ),
        (
            "bead_dependencies",
            (
                f"{cte} INSERT INTO main.bead_dependencies (bead_id, depends_on_bead_id, dependency_type)"
                f" SELECT bead_id, depends_on_bead_id, dependency_type FROM {schema}.bead_dependencies"
                f" WHERE bead_id {in_copied} AND +depends_on_bead_id {in_copied} ORDER BY bead_id, depends_on_bead_id"
            ),
        ),
        (
            "review_metadata",
            (
                f"{cte} INSERT INTO main.review_metadata (bead_id, branch, target_branch, merge_commit, pr_url,"
                " retry_count, auto_merge_ready_since, last_feedback_check_at)"
                " SELECT bead_id, branch, target_branch, merge_commit, pr_url, retry_count, NULL, NULL"
                f" FROM {schema}.review_metadata WHERE bead_id {typed('merge_request')} ORDER BY bead_id"
            ),
        ),
        (
            "escalation_metadata",
            (
                f"{cte} INSERT INTO main.escalation_metadata (bead_id, severity, category, acknowledged,"
                " re_escalation_count, acknowledged_at)"
                " SELECT bead_id, severity, category, acknowledged, re_escalation_count, acknowledged_at"
                f" FROM {schema}.escalation_metadata WHERE bead_id {typed('escalation')} ORDER BY bead_id"
            ),
        ),
        (
            "convoy_metadata",
            (
                f"{cte} INSERT INTO main.convoy_metadata (bead_id, total_beads, closed_beads, landed_at, feature_branch,"
                " merge_mode, staged)"
                " SELECT bead_id, total_beads, closed_beads, landed_at, feature_branch, merge_mode, staged"
                f" FROM {schema}.convoy_metadata WHERE bead_id {typed('convoy')} ORDER BY bead_id"
            ),
        ),
    ]


@dataclass
class CopyResult:
    seconds: float  # from BEGIN to after COMMIT
    copied: dict[str, int]  # rows inserted per table (same keys as a fork's `copied`)
    phases: dict[str, float] = field(default_factory=dict)  # rows / indexes / commit seconds
    file_bytes: int = 0


def sqlite_copy(source: Path, target: Path, *, cache_kib: int | None = DEFAULT_CACHE_KIB) -> CopyResult:
    """Copy `source`'s fork rows into a new town database at `target` (which must not exist)."""
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{target}{suffix}").exists():
            raise FileExistsError(f"{target}{suffix} exists")
    conn = open_database(target)
    try:
        apply_migrations(conn, TOWN_MIGRATIONS)
        indexes = drop_secondary_indexes(conn)  # as the fork import does
        if cache_kib:
            conn.execute(f"PRAGMA cache_size = -{int(cache_kib)}")
        conn.execute("ATTACH DATABASE ? AS src", (str(source),))
        statements = copy_statements("src")
        copied: dict[str, int] = {}

        started = time.perf_counter()
        conn.execute("BEGIN")  # deferred: IMMEDIATE would take the attached source's write lock too
        try:
            for table, sql in statements:
                conn.execute(sql)
                copied[table] = conn.changes()
            rows_done = time.perf_counter()
            for _, sql in indexes:
                conn.execute(sql)
            indexes_done = time.perf_counter()
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finished = time.perf_counter()

        conn.execute("DETACH DATABASE src")
    finally:
        conn.close()  # the last connection: checkpoints and removes the WAL
    return CopyResult(
        seconds=finished - started,
        copied=copied,
        phases={
            "rows": rows_done - started,
            "indexes": indexes_done - rows_done,
            "commit": finished - indexes_done,
        },
        file_bytes=target.stat().st_size,
    )


def remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def schema_of(path: Path) -> list[tuple[str, str, str]]:
    """(type, name, sql) of every schema object, for checks."""
    conn = open_database(path)
    try:
        return [
            (str(t), str(n), str(s))
            for t, n, s in conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY type, name")
        ]
    finally:
        conn.close()
