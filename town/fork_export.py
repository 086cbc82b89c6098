"""Export a town for a fork (fork.md §3): one read transaction, its rows written into a rows file.

Which beads are copied is one SQL predicate (`_COPIED`), so parents, events, edges and
satellites are filtered by the database, not by a Python set of ids. The rows go straight from
the source into the rows file (town.fork_payload explains it), attached to the export's reader
by the caller, already as the new town keeps them: cleared columns cleared, parents resolved
and rig ids mapped to the new town's. Memory stays bounded whatever the town's size: the rows
file is on disk, and SQLite's sorter spills there too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import apsw
import msgspec

from dos.kv import kv_get
from town.clock import new_id, now_iso
from town.config import CONFIG_KEY, TownConfig, new_town_defaults
from town.fork_payload import (
    COPIED_CONFIG_FIELDS,
    GIT_AUTHOR_FIELDS,
    LOADED_COLUMNS,
    ExportPart,
    ExportRig,
    ForkConfig,
    ForkExportHeader,
    ForkExportSummary,
    LoadedTable,
    RowsWritten,
    RowTotals,
    SkippedCounts,
)

DEFAULT_PART_ROWS = 10_000

# The copied set: finished history only (terminal, not agents or mail, convoys only if landed).
_COPIED_BEADS = """FROM beads b LEFT JOIN convoy_metadata cm ON cm.bead_id = b.bead_id
  WHERE b.status IN ('closed', 'failed') AND b.type NOT IN ('agent', 'message')
    AND (b.type <> 'convoy' OR cm.landed_at IS NOT NULL)"""
_COPIED = f"""
copied(bead_id) AS (
  SELECT b.bead_id {_COPIED_BEADS}
)"""  # (as a CTE: scripts/_sqlite_copy.py, SQLite's own copy the fork is measured against)

# The export first writes the copied ids (with their type) into a temporary table of its own
# connection, once; every query below walks it in key order (CROSS JOIN keeps it the outer
# loop), so beads, edges and satellites come out already sorted and each lookup is a key probe.
_COPIED_TABLE = "temp.fork_copied"
_MAKE_COPIED = (
    "CREATE TEMP TABLE fork_copied (bead_id TEXT PRIMARY KEY, type TEXT NOT NULL) WITHOUT ROWID",
    f"INSERT INTO {_COPIED_TABLE} SELECT b.bead_id, b.type {_COPIED_BEADS}",
)
_DROP_COPIED = f"DROP TABLE IF EXISTS {_COPIED_TABLE}"
_C = _COPIED_TABLE
_IN_C = f"(SELECT bead_id FROM {_C})"

# Rig ids are mapped on the way into the rows file: the beads' `rig_id` column through a rig map
# of this connection, and the top-level `rig_id`/`rigId` strings of bead and event metadata
# through Python (`_Remapper.metadata`), but only on rows whose text has a key starting with
# `rig`, so the other rows never leave SQLite.
_RIGMAP = "temp.fork_rigmap"  # source rig id -> new rig id
_META_FN = "fork_rig_metadata"
_RIG_KEYS = ("rig_id", "rigId")


def _mapped_rig(column: str) -> str:
    return f"(SELECT new FROM {_RIGMAP} WHERE old = {column})"


def _mapped_metadata(column: str) -> str:
    # Only text with a key starting `"rig` can hold `rig_id` or `rigId`: the other rows never
    # leave SQLite; the mapper keeps every text it does not change as it is (invalid JSON too).
    # (A substring test: cheaper than SQLite's JSON functions before the call, measured.)
    return f"""CASE WHEN instr({column}, '"rig') > 0 THEN {_META_FN}({column}) ELSE {column} END"""


class _Remapper:
    """Maps source rig ids in metadata JSON to the new town's and counts the ones it cleared."""

    def __init__(self, mapping: dict[str, str]) -> None:
        self.mapping = mapping
        self.unmapped = 0

    def metadata(self, text: str | None) -> str | None:
        """Map the top-level `rig_id`/`rigId` strings of a JSON object; other text is kept."""
        if text is None:
            return None
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
                new = self.mapping.get(old)
                if new is None:
                    self.unmapped += 1
                value[key] = new
                changed = True
        return msgspec.json.encode(value).decode() if changed else text


# The rows of each loaded table, in the target table's own columns (town.fork_payload.
# LOADED_COLUMNS, cleared columns cleared, rig ids mapped) and in its key order. Beads, edges
# and satellites walk the copied ids (CROSS JOIN keeps them the outer loop), so they come out
# sorted, written `part_rows` at a time (for progress), each step continuing the walk after the
# last key written (`?`: '' before the first) up to the step's size (`?`). Events are read bead
# by bead (the bead index keeps each bead's events together on disk) and sorted whole, straight
# into the rows file. Walking the events' own key instead costs a random row read per event
# (2-3x slower).

class _Rows(NamedTuple):
    table: LoadedTable
    columns: str  # the SELECT's columns, in LOADED_COLUMNS order
    source: str  # FROM ... [WHERE ...]: the rows, and what counting them reads
    order: str  # ORDER BY ... [LIMIT ?]
    key: tuple[str, ...]  # columns a walk continues after; () = sorted whole, in one step

    @property
    def sql(self) -> str:
        return f"SELECT {self.columns} {self.source} {self.order}"

    @property
    def count_sql(self) -> str:
        """How many rows `sql` selects whole (without the columns and the sort: a key-only count)."""
        return f"SELECT count(*) {self.source}"

    @property
    def start(self) -> tuple[Any, ...]:
        """Bindings of a walk's start (before the first key); `sql` takes the step size after."""
        return ("",) * len(self.key)


_BEADS = _Rows(
    "beads",
    f"""b.bead_id, b.type, b.status, b.title, b.body, {_mapped_rig("b.rig_id")},
       CASE WHEN b.parent_bead_id IN {_IN_C} THEN b.parent_bead_id END, NULL,
       b.priority, b.labels, {_mapped_metadata("b.metadata")}, 0, NULL, b.created_by, b.created_at, b.updated_at,
       b.closed_at""",
    f"FROM {_C} c CROSS JOIN beads b ON b.bead_id = c.bead_id WHERE c.bead_id > ?",
    "ORDER BY c.bead_id LIMIT ?",
    ("bead_id",),
)

_EVENTS = _Rows(
    "bead_events",
    f"e.bead_event_id, e.bead_id, e.agent_id, e.event_type, e.old_value, e.new_value, {_mapped_metadata('e.metadata')},"
    " e.created_at",
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
        for key in _RIG_KEYS
    )
    return (
        f"(SELECT coalesce(sum({stale}), 0) FROM {_C} c CROSS JOIN {table} t ON t.bead_id = c.bead_id"
        f" WHERE instr(t.metadata, 'rig') > 0 AND json_valid(t.metadata))"
    )


# What a fork clears: references to rigs the source no longer has (every rig it has is mapped
# to a new one). A copy counts the metadata ones as it maps them; a count-only export reads them.
_UNMAPPED_COLUMNS_SQL = f"""SELECT count(*) FROM {_C} c CROSS JOIN beads b ON b.bead_id = c.bead_id
  WHERE b.rig_id IS NOT NULL AND b.rig_id NOT IN (SELECT id FROM rigs)"""
_UNMAPPED_SQL = f"""SELECT ({_UNMAPPED_COLUMNS_SQL}) + {_stale_refs("beads")} + {_stale_refs("bead_events")}"""


class ExportOptions(msgspec.Struct, frozen=True, kw_only=True):
    source_town_id: str
    include_env_vars: bool  # the caller asked for them AND may see the source's secrets
    include_git_author: bool
    # Source rig id -> the new town's id for it (decided before the export, so the new owner's
    # credentials can be fetched first); a rig it lacks gets a fresh id (the header says which).
    rig_id_mapping: dict[str, str] = {}
    part_rows: int = DEFAULT_PART_ROWS  # rows written per step (progress), at most
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


# The rows file, attached to the export's reader (outside any transaction; ATTACH cannot run in
# one) by `attach_rows_file`. Writing it inside the read transaction never touches the source's
# own database.
ROWS_SCHEMA = "fork_rows"


def attach_rows_file(conn: apsw.Connection, path: str) -> None:
    """Attach an empty rows file (a copy of town.fork_schema.rows_file_image()) for writing:
    no journal and no sync (it is private, and a failed export only discards it)."""
    conn.execute(f"ATTACH DATABASE ? AS {ROWS_SCHEMA}", (path,))
    conn.execute(f"PRAGMA {ROWS_SCHEMA}.journal_mode = OFF")
    conn.execute(f"PRAGMA {ROWS_SCHEMA}.synchronous = OFF")


def detach_rows_file(conn: apsw.Connection) -> None:
    """Detach the rows file again, if attached (outside any transaction)."""
    if ROWS_SCHEMA in {str(row[1]) for row in conn.execute("PRAGMA database_list")}:
        conn.execute(f"DETACH DATABASE {ROWS_SCHEMA}")


def export_parts(conn: apsw.Connection, options: ExportOptions) -> Iterator[ExportPart]:
    """Header, progress as rows are written into the rows file (`RowsWritten`), then the summary.

    The caller holds one read transaction around the whole iteration (a consistent snapshot)
    and, unless `options.rows` is False, attached the rows file (`attach_rows_file`); it sends
    the file's bytes after the rows (the summary's `file_bytes` is left for it to fill in).
    """
    config = stored_config(conn)
    rigs = [
        ExportRig(id=r[0], name=r[1], git_url=r[2], default_branch=r[3], config=r[4] or "{}")
        for r in conn.execute("SELECT id, name, git_url, default_branch, config FROM rigs ORDER BY created_at, id")
    ]
    mapping = {rig.id: options.rig_id_mapping.get(rig.id) or new_id() for rig in rigs}
    conn.execute(_DROP_COPIED)  # a connection that exported before (tests reuse one)
    for statement in _MAKE_COPIED:
        conn.execute(statement)
    copied_beads = conn.changes()  # (every copied id is a copied bead: no count needed)
    totals = RowTotals(
        beads=copied_beads,
        **{rows.table: _one_row(conn, rows.count_sql, rows.start)[0] for rows in _ROWS if rows is not _BEADS},
    )
    yield ForkExportHeader(
        source_town_id=options.source_town_id,
        exported_at=now_iso(),
        config=fork_config(config, options),
        env_var_keys=sorted(config.env_vars),
        secrets_not_copied=secrets_present(config),
        rigs=rigs,
        rig_id_mapping=mapping,
        totals=totals,
    )
    if options.rows:
        remap = _Remapper(mapping)
        unmapped_columns = _one_row(conn, _UNMAPPED_COLUMNS_SQL)[0]
        _start_rig_map(conn, remap)
        try:
            for rows in _ROWS:
                yield from _write_rows(conn, rows, options.part_rows)
        finally:
            _end_rig_map(conn)
        unmapped = unmapped_columns + remap.unmapped
    else:
        unmapped = _one_row(conn, _UNMAPPED_SQL)[0]
    counts = _one_row(conn, _SKIPPED_SQL)
    skipped = SkippedCounts(**dict(zip(SkippedCounts.__struct_fields__, counts[:9], strict=True)))
    skipped.bead_events -= totals.bead_events
    skipped.bead_dependencies -= totals.bead_dependencies
    conn.execute(_DROP_COPIED)
    yield ForkExportSummary(skipped=skipped, parents_detached=counts[9], rig_refs_unmapped=unmapped)


def _one_row(conn: apsw.Connection, sql: str, args: tuple[Any, ...] = ()) -> tuple[Any, ...]:
    row = conn.execute(sql, args).fetchone()
    assert row is not None  # an aggregate query always returns its one row
    return tuple(row)


def _start_rig_map(conn: apsw.Connection, remap: _Remapper) -> None:
    conn.create_scalar_function(_META_FN, remap.metadata, 1)  # type: ignore[arg-type]  # text in, text out
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS fork_rigmap (old TEXT PRIMARY KEY, new TEXT NOT NULL) WITHOUT ROWID")
    conn.execute(f"DELETE FROM {_RIGMAP}")
    conn.executemany(f"INSERT INTO {_RIGMAP} (old, new) VALUES (?, ?)", list(remap.mapping.items()))


def _end_rig_map(conn: apsw.Connection) -> None:
    conn.execute(f"DROP TABLE IF EXISTS {_RIGMAP}")
    conn.create_scalar_function(_META_FN, None)


def _write_rows(conn: apsw.Connection, rows: _Rows, size: int) -> Iterator[RowsWritten]:
    """Copy one table's rows into the rows file in key order, `size` at a time (sorted whole in
    one step when the rows have no walk key); yields each step's count."""
    target = f"{ROWS_SCHEMA}.{rows.table}"
    names = ", ".join(f'"{c}"' for c in LOADED_COLUMNS[rows.table])
    insert = f"INSERT INTO {target} ({names}) {rows.sql}"
    if not rows.key:
        conn.execute(insert)
        if count := conn.changes():
            yield RowsWritten(table=rows.table, rows=count)
        return
    last = rows.start
    # (The file's tables are rowid tables filled in key order: the last rowid is the last key.)
    tail = f"SELECT {', '.join(rows.key)} FROM {target} ORDER BY rowid DESC LIMIT 1"
    while True:
        conn.execute(insert, (*last, size))
        count = conn.changes()
        if count:
            yield RowsWritten(table=rows.table, rows=count)
        if count < size:
            return
        last = tuple(conn.execute(tail).fetchone() or last)
