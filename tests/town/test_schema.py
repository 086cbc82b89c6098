from __future__ import annotations

from pathlib import Path

import apsw

from dos.migrations import apply_migrations
from town.schema import CONTAINER_MIGRATIONS, ORG_MIGRATIONS, TOWN_MIGRATIONS, USER_MIGRATIONS


def columns(conn: apsw.Connection, table: str) -> list[tuple[str, str, int, str | None, int]]:
    """(name, type, notnull, default, pk) per column, in table order."""
    return [(r[1], r[2], r[3], r[4], r[5]) for r in conn.execute(f"PRAGMA table_info({table})")]


def indexes(conn: apsw.Connection) -> dict[str, str]:
    rows = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
    )
    return {str(r[0]): str(r[1]) for r in rows}


def test_beads_columns_match_the_spec(town: apsw.Connection) -> None:
    assert columns(town, "beads") == [
        ("bead_id", "TEXT", 1, None, 1),
        ("type", "TEXT", 1, None, 0),
        ("status", "TEXT", 1, "'open'", 0),
        ("title", "TEXT", 1, None, 0),
        ("body", "TEXT", 0, None, 0),
        ("rig_id", "TEXT", 0, None, 0),
        ("parent_bead_id", "TEXT", 0, None, 0),
        ("assignee_agent_bead_id", "TEXT", 0, None, 0),
        ("priority", "TEXT", 0, "'medium'", 0),
        ("labels", "TEXT", 0, "'[]'", 0),
        ("metadata", "TEXT", 0, "'{}'", 0),
        ("dispatch_attempts", "INTEGER", 1, "0", 0),
        ("last_dispatch_attempt_at", "TEXT", 0, None, 0),
        ("created_by", "TEXT", 0, None, 0),
        ("created_at", "TEXT", 1, None, 0),
        ("updated_at", "TEXT", 1, None, 0),
        ("closed_at", "TEXT", 0, None, 0),
    ]
    fks = [(r[2], r[3], r[4]) for r in town.execute("PRAGMA foreign_key_list(beads)")]
    assert fks == [("beads", "parent_bead_id", "bead_id")]


def test_satellite_and_queue_tables_match_the_spec(town: apsw.Connection) -> None:
    assert [c[0] for c in columns(town, "bead_events")] == [
        "bead_event_id",
        "bead_id",
        "agent_id",
        "event_type",
        "old_value",
        "new_value",
        "metadata",
        "created_at",
    ]
    assert columns(town, "bead_dependencies") == [
        ("bead_id", "TEXT", 1, None, 0),
        ("depends_on_bead_id", "TEXT", 1, None, 0),
        ("dependency_type", "TEXT", 1, "'blocks'", 0),
    ]
    assert [c[0] for c in columns(town, "agent_metadata")] == [
        "bead_id",
        "role",
        "identity",
        "container_process_id",
        "status",
        "current_hook_bead_id",
        "dispatch_attempts",
        "checkpoint",
        "last_activity_at",
        "agent_status_message",
        "agent_status_updated_at",
        "last_event_type",
        "last_event_at",
        "active_tools",
        "stalled_at",
    ]
    assert columns(town, "convoy_metadata") == [
        ("bead_id", "TEXT", 1, None, 1),
        ("total_beads", "INTEGER", 1, "0", 0),
        ("closed_beads", "INTEGER", 1, "0", 0),
        ("landed_at", "TEXT", 0, None, 0),
        ("feature_branch", "TEXT", 0, None, 0),
        ("merge_mode", "TEXT", 0, None, 0),
        ("staged", "INTEGER", 1, "0", 0),
    ]
    assert columns(town, "review_metadata")[5] == ("retry_count", "INTEGER", 0, "0", 0)
    assert columns(town, "agent_nudges")[3:6] == [
        ("mode", "TEXT", 1, "'wait-idle'", 0),
        ("priority", "TEXT", 1, "'normal'", 0),
        ("source", "TEXT", 1, "'system'", 0),
    ]
    assert columns(town, "rigs") == [
        ("id", "TEXT", 1, None, 1),
        ("name", "TEXT", 1, None, 0),
        ("git_url", "TEXT", 1, "''", 0),
        ("default_branch", "TEXT", 1, "'main'", 0),
        ("config", "TEXT", 0, "'{}'", 0),
        ("created_at", "TEXT", 1, None, 0),
    ]
    assert [c[0] for c in columns(town, "town_wasteland_connections")] == [
        "connection_id",
        "wasteland_id",
        "upstream",
        "rig_handle",
        "dolthub_org",
        "connected_at",
        "status",
    ]
    assert columns(town, "_kv") == [("key", "TEXT", 0, None, 1), ("value", "TEXT", 1, None, 0)]


def test_spec_indexes_exist_with_their_shape(town: apsw.Connection) -> None:
    found = indexes(town)
    for name in (
        "idx_beads_type_status",
        "idx_beads_parent",
        "idx_beads_rig_status",
        "idx_beads_assignee",
        "idx_bead_events_bead",
        "idx_bead_events_created",
        "idx_bead_events_type",
        "idx_bead_deps_pk",
        "idx_bead_deps_depends_on",
        "idx_agent_nudges_pending",
        "idx_town_events_pending",
        "idx_town_events_type",
        "idx_rigs_name",
    ):
        assert name in found, name
    assert found["idx_bead_deps_pk"].startswith("CREATE UNIQUE INDEX")
    assert found["idx_rigs_name"].startswith("CREATE UNIQUE INDEX")
    assert "WHERE delivered_at IS NULL" in found["idx_agent_nudges_pending"]
    assert "WHERE processed_at IS NULL" in found["idx_town_events_pending"]
    cols = [r[2] for r in town.execute("PRAGMA index_info(idx_beads_assignee)")]
    assert cols == ["assignee_agent_bead_id", "type", "status"]


def test_no_check_constraints_anywhere(town: apsw.Connection) -> None:
    ddl = " ".join(
        str(r[0]) for r in town.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL")
    )
    assert "check (" not in ddl.lower() and "check(" not in ddl.lower()


def test_migrations_are_idempotent_and_recorded(tmp_path: Path) -> None:
    for migrations in (TOWN_MIGRATIONS, USER_MIGRATIONS, ORG_MIGRATIONS, CONTAINER_MIGRATIONS):
        conn = apsw.Connection(str(tmp_path / f"db{id(migrations)}.sqlite3"))
        assert apply_migrations(conn, migrations) == len(migrations)
        conn.execute("PRAGMA user_version = 0")  # replaying over existing tables must converge
        apply_migrations(conn, migrations)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(migrations)
        conn.close()


def test_owner_tables_match_the_spec(user_db: apsw.Connection, org_db: apsw.Connection) -> None:
    assert [c[0] for c in columns(user_db, "user_towns")] == [
        "id",
        "name",
        "owner_user_id",
        "created_at",
        "updated_at",
    ]
    assert [c[0] for c in columns(org_db, "org_towns")] == [
        "id",
        "name",
        "owner_org_id",
        "created_by_user_id",
        "created_at",
        "updated_at",
    ]
    for conn in (user_db, org_db):
        assert columns(conn, "user_rigs") == [
            ("id", "TEXT", 1, None, 1),
            ("town_id", "TEXT", 1, None, 0),
            ("name", "TEXT", 1, None, 0),
            ("git_url", "TEXT", 1, None, 0),
            ("default_branch", "TEXT", 1, "'main'", 0),
            ("platform_integration_id", "TEXT", 0, None, 0),
            ("created_at", "TEXT", 1, None, 0),
            ("updated_at", "TEXT", 1, None, 0),
        ]
    tables = {
        str(r[0]) for r in user_db.execute("SELECT name FROM sqlite_master WHERE type='table'")
    }
    assert tables == {"_kv", "user_towns", "user_rigs"}
