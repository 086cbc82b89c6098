"""Real APSW databases on disk with the object migrations applied."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import apsw
import pytest

from dos.migrations import apply_migrations
from town.schema import ORG_MIGRATIONS, TOWN_MIGRATIONS, USER_MIGRATIONS


def _open(path: Path, migrations: list) -> apsw.Connection:
    conn = apsw.Connection(str(path))
    conn.execute("PRAGMA journal_mode = WAL")
    apply_migrations(conn, migrations)
    return conn


@pytest.fixture
def town(tmp_path: Path) -> Iterator[apsw.Connection]:
    conn = _open(tmp_path / "town.sqlite3", TOWN_MIGRATIONS)
    yield conn
    conn.close()


@pytest.fixture
def user_db(tmp_path: Path) -> Iterator[apsw.Connection]:
    conn = _open(tmp_path / "user.sqlite3", USER_MIGRATIONS)
    yield conn
    conn.close()


@pytest.fixture
def org_db(tmp_path: Path) -> Iterator[apsw.Connection]:
    conn = _open(tmp_path / "org.sqlite3", ORG_MIGRATIONS)
    yield conn
    conn.close()


def count(conn: apsw.Connection, sql: str, *params: object) -> int:
    return int(conn.execute(sql, params).fetchone()[0])
