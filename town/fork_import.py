"""Import a fork export into a new town (fork.md §3), the way SQLite loads fastest.

The export's rows arrive as a rows file (town.fork_payload explains it): every copied row
already as the new town keeps it, in key order, without the loaded tables' secondary indexes.
`receive_fork` writes its bytes out as they come; they become the new town's private database
file, which nothing can see until it is published (the runtime builds it as a scratch file that
becomes the town's file only when complete, see `dos.runtime.Namespace.create`). On that file,
`check_rows_file` makes sure it is what the header announced, and after the town's own first
write `finish_import` adds its rigs, builds the indexes once and lays the copied config over
the new town's defaults. So each row is copied by SQL once, on the exporting side.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal

import apsw
import msgspec

from dos.kv import kv_put
from town.config import CONFIG_KEY, TownConfig, get_config
from town.errors import BadRequest
from town.fork_payload import (
    FORK_PAYLOAD_VERSION,
    LOADED_TABLES,
    ExportPart,
    ExportRig,
    FileChunk,
    ForkConfig,
    ForkExportHeader,
    ForkExportSummary,
    RowsWritten,
    RowTotals,
    SkippedCounts,
)
from town.fork_schema import loaded_indexes, rows_file_schema, schema_of, schema_version


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


class Received(msgspec.Struct, kw_only=True):
    """What `receive_fork` took from a payload (the rows file itself went to its sink, and its
    size is the summary's)."""

    header: ForkExportHeader
    summary: ForkExportSummary


ForkPhase = Literal["export", "import", "indexes", "config"]
# (phase, rows done, rows total); called from the importing thread.
Progress = Callable[[ForkPhase, int, int], None]


def _quiet(_phase: ForkPhase, _done: int, _total: int) -> None:
    return None


def receive_fork(
    parts: Iterable[ExportPart], write: Callable[[bytes], object] | None, progress: Progress | None = None
) -> Received:
    """Take a payload's parts in order, passing the rows file's bytes to `write` (None: a
    count-only payload, which has no file). Reports the rows as the exporter writes them."""
    progress = progress or _quiet
    header: ForkExportHeader | None = None
    summary: ForkExportSummary | None = None
    written = received = 0
    for part in parts:
        if isinstance(part, ForkExportHeader):
            if header is not None:
                raise BadRequest("Fork payload has two headers")
            if part.version != FORK_PAYLOAD_VERSION:
                raise BadRequest(f"Unsupported fork payload version {part.version}")
            header = part
            progress("export", 0, header.totals.rows)
        elif header is None:
            raise BadRequest("Fork payload rows arrived before its header")
        elif isinstance(part, RowsWritten):
            written += part.rows
            progress("import", written, header.totals.rows)
        elif isinstance(part, FileChunk):
            if write is None:
                raise BadRequest("Fork payload carries rows where none were asked for")
            write(part.data)
            received += len(part.data)
        else:
            summary = part
    if header is None or summary is None:
        raise BadRequest("Incomplete fork payload: header or summary missing")
    if write is not None and (received == 0 or received != summary.file_bytes or written != header.totals.rows):
        raise BadRequest(
            f"Incomplete fork payload: {received} of {summary.file_bytes} bytes of its rows file,"
            f" {written} of {header.totals.rows} rows"
        )
    return Received(header=header, summary=summary)


def check_rows_file(conn: apsw.Connection, received: Received) -> None:
    """The database `conn` opened (the received rows file) has exactly a rows file's schema,
    exactly the rows the header announced, and nothing else: else BAD_REQUEST."""
    try:
        schema = tuple(schema_of(conn))
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])  # type: ignore[index]
        tables = [name for kind, name, _, _ in schema if kind == "table"]
        counts = dict(zip(tables, _one_row(conn, "SELECT " + ", ".join(f'(SELECT count(*) FROM "{t}")' for t in tables))))
    except apsw.Error as exc:
        raise BadRequest("Fork payload's rows file is not a valid database") from exc
    if schema != rows_file_schema() or version != schema_version():
        raise BadRequest("Fork payload's rows file does not have a town's schema")
    totals = received.header.totals
    for table, count in counts.items():
        expected = getattr(totals, table) if table in LOADED_TABLES else 0
        if count != expected:
            raise BadRequest(f"Fork payload's rows file holds {count} rows of {table}, not {expected}")


def finish_import(
    conn: apsw.Connection, received: Received, forked_at: str, progress: Progress | None = None
) -> ImportReport:
    """Complete the new town over its checked rows file (after the town's own first write):
    its rigs (created at the fork's time), the loaded tables' indexes (built once, now that
    every row is in), its config."""
    progress = progress or _quiet
    header = received.header
    total = header.totals.rows
    _insert_rigs(conn, header, forked_at)
    progress("indexes", total, total)
    try:
        with conn:  # one transaction for the builds
            for _, sql in loaded_indexes():
                conn.execute(sql)
    except apsw.ConstraintError as exc:  # (a unique index over rows the source could not hold)
        raise BadRequest("Fork payload's rows break a unique index of a town") from exc
    progress("config", total, total)
    _apply_config(conn, header.config)
    return report_of(received)


def report_of(received: Received) -> ImportReport:
    """The import's report: the header's plan (the rows file was checked to hold exactly it)."""
    header, summary = received.header, received.summary
    return ImportReport(
        source_town_id=header.source_town_id,
        copied=CopiedCounts(**msgspec.structs.asdict(header.totals), rigs=len(header.rigs)),
        skipped=summary.skipped,
        parents_detached=summary.parents_detached,
        rig_refs_unmapped=summary.rig_refs_unmapped,
        rig_id_mapping=dict(header.rig_id_mapping),
        source_rigs=header.rigs,
        env_var_keys=header.env_var_keys,
        env_vars_copied=bool(header.config.env_vars),
        secrets_not_copied=header.secrets_not_copied,
    )


def _one_row(conn: apsw.Connection, sql: str) -> tuple[int, ...]:
    row = conn.execute(sql).fetchone()
    assert row is not None  # a SELECT of subqueries always returns its one row
    return tuple(int(v) for v in row)


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


def _insert_rigs(conn: apsw.Connection, header: ForkExportHeader, now: str) -> None:
    mapping = header.rig_id_mapping
    if any(rig.id not in mapping for rig in header.rigs):
        raise BadRequest("Fork payload's header does not map every rig")
    rows = [(mapping[r.id], r.name, r.git_url, r.default_branch, r.config, now) for r in header.rigs]
    with conn:
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
