"""Numbered schema migrations, recorded in `PRAGMA user_version`.

Migration *n* (1-based) runs when `user_version < n`; each one commits together with the new
`user_version`, so a crash mid-migration leaves the database at the previous version. Errors
are never swallowed: a failing migration stops the object from opening.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import apsw

Migration = str | Callable[[apsw.Connection], None]


def apply_migrations(conn: apsw.Connection, migrations: Sequence[Migration]) -> int:
    """Bring `conn` up to `len(migrations)`; returns the resulting version."""
    row = conn.execute("PRAGMA user_version").fetchone()
    assert row is not None  # the pragma always answers one row
    current = int(row[0])
    if current > len(migrations):
        raise RuntimeError(
            f"database schema version {current} is newer than this code knows ({len(migrations)})"
        )
    for number, step in enumerate(migrations[current:], start=current + 1):
        with conn:
            if isinstance(step, str):
                conn.execute(step)
            else:
                step(conn)
            # PRAGMA does not take bound parameters; `number` is an int we produced.
            conn.execute(f"PRAGMA user_version = {int(number)}")
    return len(migrations)
