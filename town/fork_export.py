"""Export a town for a fork (fork.md §3): one read transaction, streamed in bounded parts.

Which beads are copied is one SQL predicate (`_COPIED`), so parents, events, edges and
satellites are filtered by the database, not by a Python set of ids: memory stays bounded by
the part size whatever the town's size.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import apsw
import msgspec

from dos.kv import kv_get
from town.clock import now_iso
from town.config import CONFIG_KEY, TownConfig, new_town_defaults
from town.fork_payload import (
    COPIED_CONFIG_FIELDS,
    GIT_AUTHOR_FIELDS,
    PART_COLUMNS,
    ExportPart,
    ExportRig,
    ForkConfig,
    ForkExportHeader,
    ForkExportPayload,
    ForkExportSummary,
    LoadedTable,
    RowImage,
    RowTotals,
    SkippedCounts,
)

DEFAULT_PART_ROWS = 10_000

# The copied set: finished history only (terminal, not agents or mail, convoys only if landed).
_COPIED = """
copied(bead_id) AS (
  SELECT b.bead_id FROM beads b LEFT JOIN convoy_metadata cm ON cm.bead_id = b.bead_id
  WHERE b.status IN ('closed', 'failed') AND b.type NOT IN ('agent', 'message')
    AND (b.type <> 'convoy' OR cm.landed_at IS NOT NULL)
)"""

# The export first writes the copied ids (with their type) into a temporary table of its own
# connection, once; every query below walks it in key order (CROSS JOIN keeps it the outer
# loop), so beads, edges and satellites come out already sorted and each lookup is a key probe.
_COPIED_TABLE = "temp.fork_copied"
_MAKE_COPIED = (
    "CREATE TEMP TABLE fork_copied (bead_id TEXT PRIMARY KEY, type TEXT NOT NULL) WITHOUT ROWID",
    f"WITH {_COPIED} INSERT INTO {_COPIED_TABLE} SELECT c.bead_id, b.type FROM copied c JOIN beads b USING (bead_id)",
)
_DROP_COPIED = f"DROP TABLE IF EXISTS {_COPIED_TABLE}"
_C = _COPIED_TABLE
_IN_C = f"(SELECT bead_id FROM {_C})"

# The rows of each loaded table, in the target table's own columns (town.fork_payload.
# PART_COLUMNS, cleared columns cleared) and in its key order. Beads, edges and satellites walk
# the copied ids (CROSS JOIN keeps them the outer loop), so they come out sorted, and each part
# continues the walk after the previous part's last key (`?`: '' before the first part) up to
# the part size (`?`). Events are read bead by bead (the bead index keeps each bead's events
# together on disk) and sorted whole: straight into the part when they fit in one, else once
# into a temporary table the parts are cut from. Walking the events' own key instead costs a
# random row read per event (2-3x slower).

class _Rows(NamedTuple):
    table: LoadedTable
    columns: str  # the part's columns, in PART_COLUMNS order
    source: str  # FROM ... [WHERE ...]: the rows, and what counting them reads
    order: str  # ORDER BY ... [LIMIT ?]
    key: tuple[str, ...]  # part columns a walk continues after; () = sorted whole, then cut

    @property
    def sql(self) -> str:
        return f"SELECT {self.columns} {self.source} {self.order}"

    @property
    def count_sql(self) -> str:
        """How many rows `sql` selects whole (without the columns and the sort: a key-only count)."""
        return f"SELECT count(*) {self.source}"

    @property
    def start(self) -> tuple[Any, ...]:
        """Bindings of a walk's start (before the first key); `sql` takes the part size after."""
        return ("",) * len(self.key)


_BEADS = _Rows(
    "beads",
    f"""b.bead_id, b.type, b.status, b.title, b.body, b.rig_id,
       CASE WHEN b.parent_bead_id IN {_IN_C} THEN b.parent_bead_id END, NULL,
       b.priority, b.labels, b.metadata, 0, NULL, b.created_by, b.created_at, b.updated_at, b.closed_at""",
    f"FROM {_C} c CROSS JOIN beads b ON b.bead_id = c.bead_id WHERE c.bead_id > ?",
    "ORDER BY c.bead_id LIMIT ?",
    ("bead_id",),
)

_EVENTS = _Rows(
    "bead_events",
    "e.bead_event_id, e.bead_id, e.agent_id, e.event_type, e.old_value, e.new_value, e.metadata, e.created_at",
    f"FROM {_C} c CROSS JOIN bead_events e ON e.bead_id = c.bead_id",
    "ORDER BY e.bead_event_id",
    (),
)

_DEPS = _Rows(
    "bead_dependencies",
    "d.bead_id, d.depends_on_bead_id, d.dependency_type",
    f"""FROM {_C} c CROSS JOIN bead_dependencies d ON d.bead_id = c.bead_id
WHERE c.bead_id >= ?1 AND (d.bead_id, d.depends_on_bead_id) > (?1, ?2) AND +d.depends_on_bead_id IN {_IN_C}""",
    "ORDER BY d.bead_id, d.depends_on_bead_id LIMIT ?3",
    ("bead_id", "depends_on_bead_id"),
)
# The unary `+` keeps SQLite from probing idx_bead_deps_pk once per pair of copied beads
# (quadratic: a 100k-bead town never finishes); it reads each copied bead's edges instead.


def _satellite(table: LoadedTable, columns: str, bead_type: str) -> _Rows:
    return _Rows(
        table,
        columns,
        f"FROM {_C} c CROSS JOIN {table} s ON s.bead_id = c.bead_id WHERE c.type = '{bead_type}' AND c.bead_id > ?",
        "ORDER BY c.bead_id LIMIT ?",
        ("bead_id",),
    )


# In load order (town.fork_payload.LOADED_TABLES). Review timers are runtime state of the
# source's queue: cleared.
_ROWS = (
    _BEADS,
    _EVENTS,
    _DEPS,
    _satellite(
        "review_metadata",
        "s.bead_id, s.branch, s.target_branch, s.merge_commit, s.pr_url, s.retry_count, NULL, NULL",
        "merge_request",
    ),
    _satellite(
        "escalation_metadata",
        "s.bead_id, s.severity, s.category, s.acknowledged, s.re_escalation_count, s.acknowledged_at",
        "escalation",
    ),
    _satellite(
        "convoy_metadata",
        "s.bead_id, s.total_beads, s.closed_beads, s.landed_at, s.feature_branch, s.merge_mode, s.staged",
        "convoy",
    ),
)


# Events and edges are counted whole here; the skipped ones are those minus the copied ones
# (two cheap counts instead of two anti-joins over the history).
_SKIPPED_SQL = f"""
SELECT
  (SELECT count(*) FROM beads WHERE status NOT IN ('closed', 'failed') AND type NOT IN ('agent', 'message')),
  (SELECT count(*) FROM beads WHERE type = 'agent'),
  (SELECT count(*) FROM beads WHERE type = 'message'),
  (SELECT count(*) FROM beads b LEFT JOIN convoy_metadata cm ON cm.bead_id = b.bead_id
     WHERE b.type = 'convoy' AND b.status IN ('closed', 'failed') AND cm.landed_at IS NULL),
  (SELECT count(*) FROM bead_events),
  (SELECT count(*) FROM bead_dependencies),
  (SELECT count(*) FROM agent_metadata),
  (SELECT count(*) FROM agent_nudges),
  (SELECT count(*) FROM town_events),
  (SELECT count(*) FROM {_C} c CROSS JOIN beads b ON b.bead_id = c.bead_id
     WHERE b.parent_bead_id IS NOT NULL AND b.parent_bead_id NOT IN {_IN_C})"""



def _stale_refs(table: str) -> str:
    """Copied rows' top-level metadata rig ids (`rig_id`, `rigId`) naming a rig the source lacks."""
    stale = " + ".join(
        f"iif(json_type(t.metadata, '$.{key}') = 'text'"
        f" AND json_extract(t.metadata, '$.{key}') NOT IN (SELECT id FROM rigs), 1, 0)"
        for key in ("rig_id", "rigId")
    )
    return (
        f"(SELECT coalesce(sum({stale}), 0) FROM {_C} c CROSS JOIN {table} t ON t.bead_id = c.bead_id"
        f" WHERE instr(t.metadata, 'rig') > 0 AND json_valid(t.metadata))"
    )


# What an import clears: references to rigs the source no longer has (every rig it has is
# mapped to a new one).
_UNMAPPED_SQL = f"""
SELECT (SELECT count(*) FROM {_C} c CROSS JOIN beads b ON b.bead_id = c.bead_id
          WHERE b.rig_id IS NOT NULL AND b.rig_id NOT IN (SELECT id FROM rigs))
  + {_stale_refs("beads")} + {_stale_refs("bead_events")}"""


class ExportOptions(msgspec.Struct, frozen=True, kw_only=True):
    source_town_id: str
    include_env_vars: bool  # the caller asked for them AND may see the source's secrets
    include_git_author: bool
    part_rows: int = DEFAULT_PART_ROWS
    rows: bool = True  # False: header and summary only (a dry run needs the counts, not the rows)


def stored_config(conn: apsw.Connection) -> TownConfig:
    """The source's config without seeding (an export never writes)."""
    stored = kv_get(conn, CONFIG_KEY)
    return new_town_defaults() if stored is None else msgspec.convert(stored, TownConfig)


def fork_config(config: TownConfig, options: ExportOptions) -> ForkConfig:
    fields: dict[str, Any] = {name: getattr(config, name) for name in COPIED_CONFIG_FIELDS}
    if options.include_git_author:
        fields.update({name: getattr(config, name) for name in GIT_AUTHOR_FIELDS})
    fields["gitlab_instance_url"] = config.git_auth.gitlab_instance_url
    fields["env_vars"] = dict(config.env_vars) if options.include_env_vars else {}
    return ForkConfig(**fields)


def secrets_present(config: TownConfig) -> list[str]:
    """Names (never values) of the secrets a fork leaves behind for the new owner to set."""
    names = []
    if isinstance(config.github_cli_pat, str) and config.github_cli_pat:
        names.append("github_cli_pat")
    if isinstance(config.git_auth.gitlab_token, str) and config.git_auth.gitlab_token:
        names.append("git_auth.gitlab_token")
    return names


def export_parts(conn: apsw.Connection, options: ExportOptions) -> Iterator[ExportPart]:
    """Header, row parts of at most `part_rows` rows, then the summary.

    The caller attached the part schema (`attach_part_schema`) and holds one read transaction
    around the whole iteration (a consistent snapshot).
    """
    config = stored_config(conn)
    rigs = [
        ExportRig(id=r[0], name=r[1], git_url=r[2], default_branch=r[3], config=r[4] or "{}")
        for r in conn.execute("SELECT id, name, git_url, default_branch, config FROM rigs ORDER BY created_at, id")
    ]
    conn.execute(_DROP_COPIED)  # a connection that exported before (tests reuse one)
    for statement in _MAKE_COPIED:
        conn.execute(statement)
    totals = RowTotals(**{rows.table: _one_row(conn, rows.count_sql, rows.start)[0] for rows in _ROWS})
    yield ForkExportHeader(
        source_town_id=options.source_town_id,
        exported_at=now_iso(),
        config=fork_config(config, options),
        env_var_keys=sorted(config.env_vars),
        secrets_not_copied=secrets_present(config),
        rigs=rigs,
        totals=totals,
    )
    if options.rows:
        for rows in _ROWS:
            yield from _row_images(conn, rows, getattr(totals, rows.table), options.part_rows)
    counts = _one_row(conn, _SKIPPED_SQL)
    skipped = SkippedCounts(**dict(zip(SkippedCounts.__struct_fields__, counts[:9], strict=True)))
    skipped.bead_events -= totals.bead_events
    skipped.bead_dependencies -= totals.bead_dependencies
    # A streamed import counts the references it clears itself; only a count-only export
    # (dry run) pays for finding them here.
    unmapped = None if options.rows else _one_row(conn, _UNMAPPED_SQL)[0]
    conn.execute(_DROP_COPIED)
    yield ForkExportSummary(skipped=skipped, parents_detached=counts[9], rig_refs_unmapped=unmapped)


def _one_row(conn: apsw.Connection, sql: str, args: tuple[Any, ...] = ()) -> tuple[Any, ...]:
    row = conn.execute(sql, args).fetchone()
    assert row is not None  # an aggregate query always returns its one row
    return tuple(row)


# The in-memory database each row part is built in and serialized from. It is attached before
# the export's read transaction (ATTACH cannot run inside one); writing it inside that
# transaction never touches the source's own database.
PART_SCHEMA = "fork_part"


def _has_part_schema(conn: apsw.Connection) -> bool:
    return PART_SCHEMA in {str(row[1]) for row in conn.execute("PRAGMA database_list")}


def attach_part_schema(conn: apsw.Connection) -> None:
    """Give `conn` the scratch database row parts are built in (outside any transaction)."""
    if not _has_part_schema(conn):
        conn.execute(f"ATTACH DATABASE ':memory:' AS {PART_SCHEMA}")


def detach_part_schema(conn: apsw.Connection) -> None:
    """Drop the scratch database again, if attached (outside any transaction)."""
    if _has_part_schema(conn):
        conn.execute(f"DETACH DATABASE {PART_SCHEMA}")


def _gathered(table: str) -> str:
    return f"temp.fork_rows_{table}"


def _gather(conn: apsw.Connection, rows: _Rows) -> int:
    conn.execute(f"DROP TABLE IF EXISTS {_gathered(rows.table)}")
    conn.execute(f"CREATE TABLE {_gathered(rows.table)} AS {rows.sql}")
    # (CREATE TABLE AS does not report its rows as changes; its last rowid is the count.)
    return int(_one_row(conn, f"SELECT coalesce(max(rowid), 0) FROM {_gathered(rows.table)}")[0])


def _row_images(conn: apsw.Connection, rows: _Rows, total: int, size: int) -> Iterator[RowImage]:
    """One table's `total` rows, `size` at a time, each part a serialized one-table database."""
    part = f"{PART_SCHEMA}.{rows.table}"
    columns = ", ".join(f'"{c}"' for c in PART_COLUMNS[rows.table])
    # Untyped columns: the values stay exactly as read; the target's own types apply on load.
    conn.execute(f"CREATE TABLE {part} ({columns})")
    try:
        for count in _fill_parts(conn, part, rows, total, size):
            image = conn.serialize(PART_SCHEMA)
            assert image is not None  # the part database holds a table, so it has pages
            yield RowImage(table=rows.table, rows=count, image=image)
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {part}")
        conn.execute(f"DROP TABLE IF EXISTS {_gathered(rows.table)}")


def _fill_parts(conn: apsw.Connection, part: str, rows: _Rows, total: int, size: int) -> Iterator[int]:
    """Fill `part` with each next part's rows in turn; yields each part's row count."""
    if not rows.key:
        if total <= size:  # one part: sorted straight into it
            conn.execute(f"INSERT INTO {part} {rows.sql}")
            yield conn.changes()
            return
        # Rows to cut are gathered first, sorted, into a temporary table (on disk past the page
        # cache, so memory stays bounded); its rowids are 1..n in key order (filled in one go).
        gathered = _gather(conn, rows)
        fill = f"INSERT INTO {part} SELECT * FROM {_gathered(rows.table)} WHERE rowid > ? AND rowid <= ? ORDER BY rowid"
        for first in range(0, gathered, size):
            conn.execute(f"DELETE FROM {part}")
            conn.execute(fill, (first, first + size))
            yield conn.changes()
        return
    last = rows.start
    tail = f"SELECT {', '.join(rows.key)} FROM {part} ORDER BY rowid DESC LIMIT 1"
    while True:
        conn.execute(f"DELETE FROM {part}")
        conn.execute(f"INSERT INTO {part} {rows.sql}", (*last, size))
        count = conn.changes()
        if count == 0:
            return
        yield count
        if count < size:
            return
        last = tuple(conn.execute(tail).fetchone() or last)


def export_for_fork(conn: apsw.Connection, options: ExportOptions) -> ForkExportPayload:
    """The whole payload at once, in one read transaction (for small towns and tests)."""
    attach_part_schema(conn)
    with conn:
        payload = ForkExportPayload(parts=list(export_parts(conn, options)))
    return payload
