from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import apsw

from dos.migrations import apply_migrations
from tests.town.conftest import count
from town.beads import BEAD_STATUSES, BEAD_TYPES, list_bead_events, list_beads
from town.convoys import list_convoys
from town.demo import populate_town
from town.schema import TOWN_MIGRATIONS

RIGS = ["aaaaaaaa-0000-4000-8000-000000000001", "bbbbbbbb-0000-4000-8000-000000000002"]
END = datetime(2026, 4, 1, tzinfo=UTC)
TOWN_ID = "cccccccc-0000-4000-8000-000000000003"


def _populate(
    path: Path, seed: int = 0, beads: int = 600
) -> tuple[apsw.Connection, object, list[int]]:
    conn = apsw.Connection(str(path))
    apply_migrations(conn, TOWN_MIGRATIONS)
    seen: list[int] = []
    with conn:
        stats = populate_town(
            conn,
            rig_ids=RIGS,
            beads=beads,
            events_per_bead=5,
            seed=seed,
            actor_user_id="user-1",
            progress=seen.append,
            town_id=TOWN_ID,
            end_at=END,
        )
    return conn, stats, seen


def _dump(conn: apsw.Connection) -> list[object]:
    tables = [
        str(r[0])
        for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
    ]
    return [(t, sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr)) for t in tables]


def test_populate_covers_every_type_and_status(tmp_path: Path) -> None:
    conn, stats, seen = _populate(tmp_path / "demo.sqlite3")
    combos = set(conn.execute("SELECT type, status FROM beads"))
    assert combos == {(t, s) for t in BEAD_TYPES for s in BEAD_STATUSES}
    assert count(conn, "SELECT count(*) FROM beads") == 600 == stats.beads  # type: ignore[attr-defined]
    assert seen and seen[-1] == 600
    terminal = count(conn, "SELECT count(*) FROM beads WHERE status IN ('closed', 'failed')")
    assert terminal > 600 - terminal
    events = count(conn, "SELECT count(*) FROM bead_events")
    assert events == stats.bead_events and 0.9 * 3000 < events < 1.1 * 3000  # type: ignore[attr-defined]
    # Each table gets rows, and the stats match the database.
    for table in (
        "bead_dependencies",
        "agent_metadata",
        "review_metadata",
        "escalation_metadata",
        "convoy_metadata",
        "agent_nudges",
        "town_events",
    ):
        assert count(conn, f"SELECT count(*) FROM {table}") == getattr(stats, table) > 0, table


def test_populate_writes_realistic_shapes(tmp_path: Path) -> None:
    conn, _, _ = _populate(tmp_path / "demo.sqlite3")
    roles = {str(r[0]) for r in conn.execute("SELECT role FROM agent_metadata")}
    assert roles == {"mayor", "refinery", "polecat"}
    identities = [
        str(r[0]) for r in conn.execute("SELECT identity FROM agent_metadata WHERE role != 'mayor'")
    ]
    assert all(i.endswith(f"@{TOWN_ID[:8]}") and f"-{i.split('-')[-1]}" for i in identities)
    assert f"Toast-polecat-{RIGS[0][:8]}@{TOWN_ID[:8]}" in identities
    assert (
        conn.execute("SELECT identity FROM agent_metadata WHERE role='mayor'").fetchone()[0]
        == f"mayor-{TOWN_ID[:8]}"
    )
    # Every bead's created event comes first and closed beads carry closed_at.
    assert (
        count(conn, "SELECT count(*) FROM beads WHERE status='closed' AND closed_at IS NULL") == 0
    )
    assert (
        count(conn, "SELECT count(*) FROM beads WHERE status!='closed' AND closed_at IS NOT NULL")
        == 0
    )
    assert count(conn, "SELECT count(*) FROM beads WHERE updated_at < created_at") == 0
    # Messages: mostly closed, labelled.
    msgs = conn.execute(
        "SELECT sum(status='closed'), count(*) FROM beads WHERE type='message'"
    ).fetchone()
    assert msgs[0] > msgs[1] / 2
    assert (
        count(
            conn,
            "SELECT count(*) FROM beads WHERE type='message' AND labels NOT LIKE '%gt:message%'",
        )
        == 0
    )
    # Convoys: landed (closed + landed_at), closed but not landed, and active ones.
    kinds = set(
        conn.execute(
            "SELECT b.status = 'closed', m.landed_at IS NOT NULL"
            " FROM beads b JOIN convoy_metadata m USING (bead_id)"
        )
    )
    assert kinds == {(1, 1), (1, 0), (0, 0)}
    assert (
        count(
            conn,
            "SELECT count(*) FROM convoy_metadata m JOIN beads b USING (bead_id) "
            "WHERE m.landed_at IS NOT NULL AND b.status != 'closed'",
        )
        == 0
    )
    edge_kinds = {
        str(r[0]) for r in conn.execute("SELECT DISTINCT dependency_type FROM bead_dependencies")
    }
    assert edge_kinds == {"blocks", "tracks"}
    # Every edge, parent, hook and satellite row points at an existing bead.
    assert (
        count(
            conn,
            "SELECT count(*) FROM bead_dependencies"
            " WHERE bead_id NOT IN (SELECT bead_id FROM beads) "
            "OR depends_on_bead_id NOT IN (SELECT bead_id FROM beads)",
        )
        == 0
    )
    assert (
        count(
            conn,
            "SELECT count(*) FROM beads WHERE parent_bead_id IS NOT NULL "
            "AND parent_bead_id NOT IN (SELECT bead_id FROM beads)",
        )
        == 0
    )
    assert count(conn, "SELECT count(*) FROM beads WHERE parent_bead_id IS NOT NULL") > 0
    assert (
        count(
            conn,
            "SELECT count(*) FROM agent_metadata WHERE current_hook_bead_id IS NOT NULL "
            "AND current_hook_bead_id NOT IN (SELECT bead_id FROM beads)",
        )
        == 0
    )
    assert (
        count(conn, "SELECT count(*) FROM review_metadata WHERE auto_merge_ready_since IS NOT NULL")
        > 0
    )
    assert (
        count(conn, "SELECT count(*) FROM review_metadata WHERE last_feedback_check_at IS NOT NULL")
        > 0
    )
    escalations = count(conn, "SELECT count(*) FROM beads WHERE type='escalation'")
    assert 0 < count(conn, "SELECT count(*) FROM escalation_metadata") < escalations
    # Rig references: some to a rig that no longer exists, some inside metadata.
    placeholders = ", ".join("?" * len(RIGS))
    assert (
        count(
            conn,
            "SELECT count(*) FROM beads WHERE rig_id IS NOT NULL"
            f" AND rig_id NOT IN ({placeholders})",
            *RIGS,
        )
        > 0
    )
    assert (
        count(
            conn, "SELECT count(*) FROM beads WHERE json_extract(metadata, '$.rig_id') IS NOT NULL"
        )
        > 0
    )
    assert (
        count(
            conn, "SELECT count(*) FROM beads WHERE json_extract(metadata, '$.rigId') IS NOT NULL"
        )
        > 0
    )
    assert (
        count(
            conn,
            "SELECT count(*) FROM bead_events WHERE json_extract(metadata, '$.rig_id') IS NOT NULL",
        )
        > 0
    )
    assert count(conn, "SELECT count(DISTINCT event_type) FROM bead_events") >= 15
    assert set(conn.execute("SELECT DISTINCT delivered_at IS NULL FROM agent_nudges")) == {
        (0,),
        (1,),
    }
    assert set(conn.execute("SELECT DISTINCT processed_at IS NULL FROM town_events")) == {
        (0,),
        (1,),
    }
    # Creation times increase with insertion order and end before END.
    created = [str(r[0]) for r in conn.execute("SELECT created_at FROM beads ORDER BY rowid")]
    assert created[-1] < "2026-04-01T00:00:00.000Z"
    assert (
        count(
            conn, "SELECT count(*) FROM bead_events WHERE created_at > '2026-04-01T00:00:00.000Z'"
        )
        == 0
    )
    # The domain readers accept everything the demo wrote.
    assert len(list_beads(conn, limit=500)) == 500
    assert len(list_bead_events(conn, limit=500)) == 500
    assert list_convoys(conn)


def test_populate_is_deterministic_per_seed(tmp_path: Path) -> None:
    first, _, _ = _populate(tmp_path / "a.sqlite3", seed=7, beads=300)
    second, _, _ = _populate(tmp_path / "b.sqlite3", seed=7, beads=300)
    other, _, _ = _populate(tmp_path / "c.sqlite3", seed=8, beads=300)
    assert _dump(first) == _dump(second)
    assert _dump(first) != _dump(other)


def test_populate_handles_tiny_towns_and_no_rigs(tmp_path: Path) -> None:
    for beads in (0, 1, 3, 40):
        conn = apsw.Connection(str(tmp_path / f"tiny{beads}.sqlite3"))
        apply_migrations(conn, TOWN_MIGRATIONS)
        with conn:
            stats = populate_town(conn, rig_ids=[], beads=beads, actor_user_id="u", end_at=END)
        assert stats.beads == beads == count(conn, "SELECT count(*) FROM beads")
