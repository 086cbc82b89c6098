"""Export a town for a fork (fork.md §3): one read transaction, streamed in bounded parts.

Which beads are copied is one SQL predicate (`_COPIED`), so parents, events, edges and
satellites are filtered by the database, not by a Python set of ids: memory stays bounded by
the part size whatever the town's size.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import apsw
import msgspec

from dos.kv import kv_get
from town.clock import now_iso
from town.config import CONFIG_KEY, TownConfig, new_town_defaults
from town.fork_payload import (
    COPIED_CONFIG_FIELDS,
    GIT_AUTHOR_FIELDS,
    BeadRows,
    ConvoyRows,
    DependencyRows,
    EscalationRows,
    EventRows,
    ExportPart,
    ExportRig,
    ForkConfig,
    ForkExportHeader,
    ForkExportPayload,
    ForkExportSummary,
    ReviewRows,
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

_BEADS_SQL = f"""
SELECT b.bead_id, b.type, b.status, b.title, b.body, b.rig_id,
       CASE WHEN b.parent_bead_id IN {_IN_C} THEN b.parent_bead_id END,
       b.priority, b.labels, b.metadata, b.created_by, b.created_at, b.updated_at, b.closed_at
FROM {_C} c CROSS JOIN beads b ON b.bead_id = c.bead_id ORDER BY c.bead_id"""

_EVENTS_SQL = f"""
SELECT e.bead_event_id, e.bead_id, e.agent_id, e.event_type, e.old_value, e.new_value, e.metadata, e.created_at
FROM {_C} c CROSS JOIN bead_events e ON e.bead_id = c.bead_id ORDER BY e.bead_event_id"""

_DEPS_SQL = f"""
SELECT d.bead_id, d.depends_on_bead_id, d.dependency_type
FROM {_C} c CROSS JOIN bead_dependencies d ON d.bead_id = c.bead_id
WHERE +d.depends_on_bead_id IN {_IN_C} ORDER BY d.bead_id, d.depends_on_bead_id"""
# Every row query reads in its table's key order, so the importer's key b-trees grow
# append-only (the import's main lever, with indexes built once at the end).
# The unary `+` keeps SQLite from probing idx_bead_deps_pk once per pair of copied beads
# (quadratic: a 100k-bead town never finishes); it reads each copied bead's edges instead.


def _satellite_sql(table: str, columns: str, bead_type: str) -> str:
    return (
        f"SELECT {columns} FROM {_C} c CROSS JOIN {table} s ON s.bead_id = c.bead_id"
        f" WHERE c.type = '{bead_type}' ORDER BY c.bead_id"
    )


_REVIEW_SQL = _satellite_sql(
    "review_metadata", "s.bead_id, s.branch, s.target_branch, s.merge_commit, s.pr_url, s.retry_count", "merge_request"
)
_ESCALATION_SQL = _satellite_sql(
    "escalation_metadata",
    "s.bead_id, s.severity, s.category, s.acknowledged, s.re_escalation_count, s.acknowledged_at",
    "escalation",
)
_CONVOY_SQL = _satellite_sql(
    "convoy_metadata",
    "s.bead_id, s.total_beads, s.closed_beads, s.landed_at, s.feature_branch, s.merge_mode, s.staged",
    "convoy",
)


def _count(query: str) -> str:
    return f"(SELECT count(*) FROM ({query}))"


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

_TOTALS_SQL = f"""
SELECT
  (SELECT count(*) FROM {_C}),
  (SELECT count(*) FROM {_C} c CROSS JOIN bead_events e ON e.bead_id = c.bead_id),
  {_count(_DEPS_SQL)}, {_count(_REVIEW_SQL)}, {_count(_ESCALATION_SQL)}, {_count(_CONVOY_SQL)}"""


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

    The caller holds one read transaction around the whole iteration (a consistent snapshot).
    """
    config = stored_config(conn)
    rigs = [
        ExportRig(id=r[0], name=r[1], git_url=r[2], default_branch=r[3], config=r[4] or "{}")
        for r in conn.execute("SELECT id, name, git_url, default_branch, config FROM rigs ORDER BY created_at, id")
    ]
    conn.execute(_DROP_COPIED)  # a connection that exported before (tests reuse one)
    for statement in _MAKE_COPIED:
        conn.execute(statement)
    totals = RowTotals(**dict(zip(RowTotals.__struct_fields__, _one_row(conn, _TOTALS_SQL), strict=True)))
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
        size = options.part_rows
        yield from _parts(conn, _BEADS_SQL, BeadRows, size)
        yield from _parts(conn, _EVENTS_SQL, EventRows, size)
        yield from _parts(conn, _DEPS_SQL, DependencyRows, size)
        yield from _parts(conn, _REVIEW_SQL, ReviewRows, size)
        yield from _parts(conn, _ESCALATION_SQL, EscalationRows, size)
        yield from _parts(conn, _CONVOY_SQL, ConvoyRows, size)
    counts = _one_row(conn, _SKIPPED_SQL)
    skipped = SkippedCounts(**dict(zip(SkippedCounts.__struct_fields__, counts[:9], strict=True)))
    skipped.bead_events -= totals.bead_events
    skipped.bead_dependencies -= totals.bead_dependencies
    # A streamed import counts the references it clears itself; only a count-only export
    # (dry run) pays for finding them here.
    unmapped = None if options.rows else _one_row(conn, _UNMAPPED_SQL)[0]
    conn.execute(_DROP_COPIED)
    yield ForkExportSummary(skipped=skipped, parents_detached=counts[9], rig_refs_unmapped=unmapped)


def _one_row(conn: apsw.Connection, sql: str) -> tuple[Any, ...]:
    row = conn.execute(sql).fetchone()
    assert row is not None  # an aggregate query always returns its one row
    return tuple(row)


def _parts(conn: apsw.Connection, sql: str, part_type: Any, size: int) -> Iterator[Any]:
    cursor = conn.execute(sql)
    while rows := list(itertools.islice(cursor, size)):
        yield part_type(rows)


def export_for_fork(conn: apsw.Connection, options: ExportOptions) -> ForkExportPayload:
    """The whole payload at once, in one read transaction (for small towns and tests)."""
    with conn:
        payload = ForkExportPayload(parts=list(export_parts(conn, options)))
    return payload
