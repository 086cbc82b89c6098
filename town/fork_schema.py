"""The rows file's schema: a town's own schema without the loaded tables' secondary indexes.

A fork's exporter fills a copy of `rows_file_image()` with the copied rows; the importer checks
that the file it received has exactly `rows_file_schema()` and builds `loaded_indexes()` in it
once every row is in (fork_payload explains the rows file).
"""

from __future__ import annotations

import functools

import apsw

from dos.migrations import apply_migrations
from town.fork_payload import LOADED_TABLES
from town.schema import TOWN_MIGRATIONS

SchemaRow = tuple[str, str, str, str | None]  # sqlite_master's type, name, tbl_name, sql


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


def schema_of(conn: apsw.Connection) -> list[SchemaRow]:
    return [
        (str(t), str(n), str(tbl), None if sql is None else str(sql))
        for t, n, tbl, sql in conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name")
    ]


@functools.cache
def _rows_file() -> tuple[bytes, tuple[tuple[str, str], ...], tuple[SchemaRow, ...]]:
    conn = apsw.Connection(":memory:")
    try:
        apply_migrations(conn, TOWN_MIGRATIONS)
        indexes = tuple(drop_secondary_indexes(conn))
        image = conn.serialize("main")
        assert image is not None  # a migrated database has pages
        return image, indexes, tuple(schema_of(conn))
    finally:
        conn.close()


def rows_file_image() -> bytes:
    """An empty rows file (a migrated town without the loaded tables' secondary indexes)."""
    return _rows_file()[0]


def loaded_indexes() -> tuple[tuple[str, str], ...]:
    """(name, CREATE INDEX as stored) of the loaded tables' secondary indexes, in schema order."""
    return _rows_file()[1]


def rows_file_schema() -> tuple[SchemaRow, ...]:
    return _rows_file()[2]


def schema_version() -> int:
    return len(TOWN_MIGRATIONS)
