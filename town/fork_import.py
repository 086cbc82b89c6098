"""Import a fork export into a new town (fork.md §3), loaded the way SQLite loads fastest.

The target is a new town's private database that nothing can see until it is published (the
runtime builds it as a scratch file that becomes the town's file only when complete, see
`dos.runtime.Namespace.create`), so the load runs outside any transaction: each row part (a
serialized one-table database) is attached by `deserialize`, which SQLite refuses inside a
transaction, and copied with one INSERT ... SELECT. Secondary indexes are dropped first and
built once at the end; rows arrive in key order, so every key b-tree grows append-only.

Rig ids are remapped everywhere they appear (the `rig_id` column and the top-level
`rig_id`/`rigId` metadata keys of beads and events); ids of beads and events are kept.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Literal

import apsw
import msgspec

from dos.kv import kv_put
from town.clock import new_id, now_iso
from town.config import CONFIG_KEY, TownConfig, get_config
from town.errors import BadRequest
from town.fork_export import PART_SCHEMA, attach_part_schema, detach_part_schema
from town.fork_payload import (
    FORK_PAYLOAD_VERSION,
    LOADED_TABLES,
    PART_COLUMNS,
    ExportPart,
    ExportRig,
    ForkConfig,
    ForkExportHeader,
    ForkExportSummary,
    RowImage,
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


class _Remapper:
    """Maps source rig ids in metadata JSON to the new town's and counts the ones it cleared."""

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
                value[key] = self.rig(old)
                changed = True
        return msgspec.json.encode(value).decode() if changed else text


# SQL names the load uses on the importing connection.
_META_FN = "fork_rig_metadata"  # _Remapper.metadata
_RIGMAP = "temp.fork_rigmap"  # source rig id -> new rig id


def _load_sql(table: str) -> str:
    """INSERT of one part's rows in their key order, rig ids mapped on the way: the `rig_id`
    column through the rig map, metadata JSON through Python but only on rows that name a rig
    by a string, so the other rows never leave SQLite."""

    def value(column: str) -> str:
        if column == "rig_id" and table == "beads":
            return f"(SELECT new FROM {_RIGMAP} WHERE old = p.rig_id)"
        if column == "metadata" and table in ("beads", "bead_events"):
            # SQLite finds the rows whose top-level rig_id/rigId is a string (many carry null);
            # only those go through Python, which maps them as every other rig reference.
            # (The substring tests first: most rows stop there, before any JSON is parsed.)
            mentions = " OR ".join(f"instr(p.metadata, '{key}') > 0" for key in _RIG_KEYS)
            is_text = " OR ".join(f"json_type(p.metadata, '$.{key}') = 'text'" for key in _RIG_KEYS)
            return (
                f"CASE WHEN ({mentions}) AND json_valid(p.metadata) AND ({is_text})"
                f" THEN {_META_FN}(p.metadata) ELSE p.metadata END"
            )
        return f'p."{column}"'

    columns = PART_COLUMNS[table]
    names = ", ".join(f'"{c}"' for c in columns)
    values = ", ".join(value(c) for c in columns)
    return f"INSERT INTO main.{table} ({names}) SELECT {values} FROM {PART_SCHEMA}.{table} p ORDER BY p.rowid"


_LOADS = {table: _load_sql(table) for table in LOADED_TABLES}
# Bead rig ids the map cannot serve (a rig the source no longer has): cleared, and counted.
_UNMAPPED_BEAD_RIGS = (
    f"SELECT count(*) FROM {PART_SCHEMA}.beads WHERE rig_id IS NOT NULL AND rig_id NOT IN (SELECT old FROM {_RIGMAP})"
)


def import_fork(
    conn: apsw.Connection | None,
    parts: Iterable[ExportPart],
    *,
    rig_id_mapping: dict[str, str],
    progress: Progress | None = None,
) -> ImportReport:
    """Write every part into this new, empty, still private town. `conn` must not be in a
    transaction (see the module docstring; the caller discards the database if this fails).
    With `conn=None` nothing is written (dryRun): the header's totals are what an import
    would copy."""
    report = (lambda *_: None) if progress is None else progress
    load = _Load(conn, rig_id_mapping, report)
    try:
        for part in parts:
            load.add(part)
        header, summary = load.header, load.summary
        if header is None or summary is None:
            raise BadRequest("Incomplete fork payload: header or summary missing")
        load.finish()
    except BaseException:
        with contextlib.suppress(apsw.Error):  # the load's own error is the one to report
            load.close()
        raise
    load.close()
    unmapped = load.remap.unmapped + load.unmapped_columns if summary.rig_refs_unmapped is None else summary.rig_refs_unmapped
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
        self.unmapped_columns = 0
        self.indexes: list[tuple[str, str]] = []
        self.total = self.done = 0
        self.prepared = False

    def add(self, part: ExportPart) -> None:
        if isinstance(part, ForkExportHeader):
            self._start(part)
        elif isinstance(part, ForkExportSummary):
            self.summary = part
        elif self.conn is not None:
            if not self.prepared:
                raise BadRequest("Fork payload rows arrived before its header")
            self._load(self.conn, part)

    def _load(self, conn: apsw.Connection, part: RowImage) -> None:
        table = part.table
        try:
            conn.deserialize(PART_SCHEMA, part.image)
            found = tuple(str(row[1]) for row in conn.execute(f"PRAGMA {PART_SCHEMA}.table_info({table})"))
            if found != PART_COLUMNS[table]:
                raise BadRequest(f"Fork payload part for {table} does not hold its columns")
            if table == "beads":
                self.unmapped_columns += int(conn.execute(_UNMAPPED_BEAD_RIGS).fetchone()[0])  # type: ignore[index]
            conn.execute(_LOADS[table])
        except apsw.Error as exc:
            raise BadRequest(f"Fork payload part for {table} is not a valid row image") from exc
        rows = conn.changes()
        if rows != part.rows:
            raise BadRequest(f"Fork payload part for {table} holds {rows} rows, not {part.rows}")
        setattr(self.copied, table, getattr(self.copied, table) + rows)
        self.done += rows
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
        if conn.in_transaction:
            raise RuntimeError("import_fork loads a private database outside any transaction")
        attach_part_schema(conn)
        conn.create_scalar_function(_META_FN, self.remap.metadata, 1)  # type: ignore[arg-type]  # text in, text out
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS fork_rigmap (old TEXT PRIMARY KEY, new TEXT NOT NULL) WITHOUT ROWID")
        conn.execute(f"DELETE FROM {_RIGMAP}")
        conn.executemany(f"INSERT INTO {_RIGMAP} (old, new) VALUES (?, ?)", list(self.mapping.items()))
        self.indexes = drop_secondary_indexes(conn)
        self.prepared = True
        _insert_rigs(conn, header, self.mapping)
        self.copied.rigs = len(header.rigs)

    def finish(self) -> None:
        conn, header = self.conn, self.header
        if conn is None or header is None:
            return
        self.report("indexes", self.done, self.total)
        with conn:  # one transaction for the builds (no journal to pay for here, one sync)
            for _, sql in self.indexes:
                conn.execute(sql)
        self.indexes = []
        self.report("config", self.done, self.total)
        _apply_config(conn, header.config)

    def close(self) -> None:
        """Leave the connection as it was: no part schema, rig map or function of the load."""
        conn = self.conn
        if conn is None or not self.prepared or conn.in_transaction:
            return
        detach_part_schema(conn)  # first: a bad image there breaks other SQL
        conn.execute(f"DROP TABLE IF EXISTS {_RIGMAP}")
        conn.create_scalar_function(_META_FN, None)


def drop_secondary_indexes(conn: apsw.Connection) -> list[tuple[str, str]]:
    """Drop the loaded tables' own indexes (not the implicit key indexes, which cannot be
    dropped); returns their exact definitions, re-run as stored so the schema ends identical."""
    marks = ", ".join("?" for _ in LOADED_TABLES)
    found = [
        (str(name), str(sql))
        for name, sql in conn.execute(
            f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ({marks})"
            " ORDER BY rowid",
            LOADED_TABLES,
        )
    ]
    with conn:
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
