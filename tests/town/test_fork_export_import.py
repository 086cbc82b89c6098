"""Fork export and import on real APSW files (fork.md §3, §4), checked against an oracle."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apsw
import msgspec
import pytest

from dos.kv import kv_get
from dos.migrations import apply_migrations
from dos.runtime import open_snapshot_reader
from tests.fork_fixtures import (
    COPIED_CONFIG,
    ENV_SECRET_CANARY,
    ENV_VARS,
    GIT_AUTHOR,
    GITLAB_INSTANCE_URL,
    INTEGRATION_CANARY,
    KILOCODE_CANARY,
    TOKEN_CANARIES,
    EdgeCases,
    expected_fork,
    put_kv,
    seed_edge_cases,
    source_config,
    town_rows,
)
from town import config as town_config
from town import rigs
from town.demo import populate_town
from town.errors import BadRequest
from town.fork_export import ExportOptions, attach_part_schema, export_for_fork, export_parts
from town.fork_import import ImportReport, import_fork
from town.fork_payload import (
    FORK_PAYLOAD_VERSION,
    ForkExportHeader,
    ForkExportPayload,
    ForkExportSummary,
    RowImage,
)
from town.schema import TOWN_MIGRATIONS

SOURCE_ID = "11111111-1111-4111-8111-111111111111"


class Source:
    def __init__(self, conn: apsw.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self.rig_a = str(uuid.uuid4())
        self.rig_b = str(uuid.uuid4())
        self.gone_rig = str(uuid.uuid4())  # referenced by beads, no longer a rig
        with conn:
            put_kv(conn, "town:id", SOURCE_ID)
            put_kv(conn, town_config.CONFIG_KEY, source_config())
            rigs.add_rig(
                conn,
                rig_id=self.rig_a,
                name="web",
                git_url="https://github.com/acme/web.git",
                default_branch="main",
                config=rigs.RigOverrideConfig(default_model="rig-model", max_concurrent_polecats=2),
            )
            rigs.add_rig(
                conn,
                rig_id=self.rig_b,
                name="docs",
                git_url="https://gitlab.com/acme/docs.git",
                default_branch="trunk",
            )
            for rig_id in (self.rig_a, self.rig_b):
                rigs.put_rig_runtime_config(
                    conn,
                    rigs.RigConfig(
                        townId=SOURCE_ID,
                        rigId=rig_id,
                        gitUrl="u",
                        defaultBranch="main",
                        userId="source-owner",
                        kilocodeToken=KILOCODE_CANARY,
                        platformIntegrationId=INTEGRATION_CANARY,
                    ),
                )
        self.cases: EdgeCases = seed_edge_cases(
            conn, rig_a=self.rig_a, rig_b=self.rig_b, gone_rig=self.gone_rig
        )

    def options(self, *, env: bool = True, git_author: bool = True, part_rows: int = 2000) -> ExportOptions:
        return ExportOptions(
            source_town_id=SOURCE_ID, include_env_vars=env, include_git_author=git_author, part_rows=part_rows
        )


@pytest.fixture
def source(town: apsw.Connection, tmp_path: Path) -> Source:
    return Source(town, tmp_path / "town.sqlite3")


@pytest.fixture
def target(tmp_path: Path) -> Iterator[apsw.Connection]:
    """An empty migrated town as TownDO.initialize leaves it: id, defaults and new ownership."""
    conn = apsw.Connection(str(tmp_path / "new-town.sqlite3"))
    conn.execute("PRAGMA journal_mode = WAL")
    apply_migrations(conn, TOWN_MIGRATIONS)
    with conn:
        put_kv(conn, "town:id", "22222222-2222-4222-8222-222222222222")
        town_config.set_ownership(
            conn,
            owner_user_id="new-owner",
            owner_type="user",
            owner_id="new-owner",
            created_by_user_id="new-owner",
            kilocode_token="new-owner-token",
        )
    yield conn
    conn.close()


def _import(
    target: apsw.Connection, payload: ForkExportPayload, mapping: dict[str, str] | None = None
) -> ImportReport:
    return import_fork(target, payload.parts, rig_id_mapping=dict(mapping or {}))


# -- the payload ------------------------------------------------------------------------------


def test_payload_round_trips_through_json_and_msgpack(source: Source) -> None:
    payload = export_for_fork(source.conn, source.options(part_rows=4))
    for encode, decode in (
        (msgspec.json.encode, msgspec.json.decode),
        (msgspec.msgpack.encode, msgspec.msgpack.decode),
    ):
        again = decode(encode(payload), type=ForkExportPayload)
        assert again == payload
    assert isinstance(payload.parts[0], ForkExportHeader)
    assert isinstance(payload.parts[-1], ForkExportSummary)
    assert all(isinstance(p, RowImage) for p in payload.parts[1:-1])


@pytest.mark.parametrize("include_env_vars", [True, False])
def test_payload_never_carries_a_token_and_env_values_only_when_allowed(
    source: Source, include_env_vars: bool
) -> None:
    encoded = msgspec.json.encode(export_for_fork(source.conn, source.options(env=include_env_vars))).decode()
    for canary in (*TOKEN_CANARIES, INTEGRATION_CANARY):
        assert canary not in encoded
    assert (ENV_SECRET_CANARY in encoded) is include_env_vars


def test_header_has_the_whitelisted_config_and_names_secrets_without_values(source: Source) -> None:
    header = export_for_fork(source.conn, source.options()).parts[0]
    assert isinstance(header, ForkExportHeader)
    assert (header.version, header.source_town_id) == (FORK_PAYLOAD_VERSION, SOURCE_ID)
    assert msgspec.to_builtins(header.config) == {
        **COPIED_CONFIG,
        **GIT_AUTHOR,
        "gitlab_instance_url": GITLAB_INSTANCE_URL,
        "env_vars": ENV_VARS,
    }
    assert header.env_var_keys == sorted(ENV_VARS)
    assert sorted(header.secrets_not_copied) == ["git_auth.gitlab_token", "github_cli_pat"]
    assert {(r.id, r.name, r.git_url, r.default_branch) for r in header.rigs} == {
        (source.rig_a, "web", "https://github.com/acme/web.git", "main"),
        (source.rig_b, "docs", "https://gitlab.com/acme/docs.git", "trunk"),
    }
    configs = {r.id: msgspec.json.decode(r.config) for r in header.rigs}
    assert configs == {
        source.rig_a: {"default_model": "rig-model", "max_concurrent_polecats": 2},
        source.rig_b: {},
    }


def test_header_without_git_author_and_env_vars_when_not_included(source: Source) -> None:
    header = export_for_fork(source.conn, source.options(env=False, git_author=False)).parts[0]
    assert isinstance(header, ForkExportHeader)
    config = msgspec.to_builtins(header.config)
    assert "git_author_name" not in config and "git_author_email" not in config
    assert config.get("env_vars", {}) == {}
    assert header.env_var_keys == sorted(ENV_VARS)  # keys still reported, for ENV_VARS_NOT_COPIED


@pytest.mark.parametrize("part_rows", [1, 3, 7])
def test_row_parts_never_exceed_part_rows(source: Source, part_rows: int) -> None:
    parts = export_for_fork(source.conn, source.options(part_rows=part_rows)).parts
    row_parts = [p for p in parts if isinstance(p, RowImage)]
    assert row_parts and all(1 <= p.rows <= part_rows for p in row_parts)
    beads = sum(p.rows for p in row_parts if p.table == "beads")
    assert beads == len(expected_fork(source.conn, {}).rows.beads)


def _file_bytes(path: Path) -> list[bytes]:
    return [p.read_bytes() if p.exists() else b"" for p in (path, Path(f"{path}-wal"))]


def test_export_does_not_write_to_the_source(source: Source) -> None:
    """The export's only writes are to its own connection's temporary table: the source's
    database and WAL files are byte for byte what they were."""
    kv_before = source.conn.execute("SELECT key, value FROM _kv ORDER BY key").fetchall()
    files_before = _file_bytes(source.path)
    export_for_fork(source.conn, source.options())
    assert _file_bytes(source.path) == files_before
    assert source.conn.execute("SELECT key, value FROM _kv ORDER BY key").fetchall() == kv_before
    assert source.conn.execute("SELECT count(*) FROM temp.sqlite_master").fetchone()[0] == 0


# -- the import -------------------------------------------------------------------------------


def test_import_reproduces_exactly_the_rows_the_rules_select(source: Source, target: apsw.Connection) -> None:
    report = _import(target, export_for_fork(source.conn, source.options(part_rows=5)))
    expected = expected_fork(source.conn, report.rig_id_mapping)
    actual = town_rows(target)
    assert actual.beads == expected.rows.beads
    assert actual.bead_events == expected.rows.bead_events
    assert actual.bead_dependencies == expected.rows.bead_dependencies
    assert actual.review_metadata == expected.rows.review_metadata
    assert actual.escalation_metadata == expected.rows.escalation_metadata
    assert actual.convoy_metadata == expected.rows.convoy_metadata
    assert msgspec.to_builtins(report.copied) == expected.copied
    assert msgspec.to_builtins(report.skipped) == expected.skipped
    assert (report.parents_detached, report.rig_refs_unmapped) == (
        expected.parents_detached,
        expected.rig_refs_unmapped,
    )


def test_import_applies_each_bead_rule(source: Source, target: apsw.Connection) -> None:
    report = _import(target, export_for_fork(source.conn, source.options()))
    c, mapping = source.cases, report.rig_id_mapping
    copied = {r[0] for r in target.execute("SELECT bead_id FROM beads")}
    assert copied == c.ids(
        "issue_closed",
        "issue_failed",
        "mr_closed",
        "mr_failed",
        "escalation_with_row",
        "escalation_without_row",
        "convoy_landed",
        "molecule_child_of_copied",
        "child_of_open",
        "child_of_unlanded_convoy",
        "child_of_missing",
        "convoy_member",
        "on_gone_rig",
        "without_rig",
    )

    def bead(name: str) -> tuple:
        return target.execute(
            "SELECT rig_id, parent_bead_id, assignee_agent_bead_id, dispatch_attempts, last_dispatch_attempt_at,"
            " created_by, created_at, updated_at, closed_at, metadata FROM beads WHERE bead_id = ?",
            (c.bead[name],),
        ).fetchone()

    rig_id, parent, assignee, attempts, last_attempt, created_by, *times, metadata = bead("issue_closed")
    assert (rig_id, parent, assignee, attempts, last_attempt) == (mapping[source.rig_a], None, None, 0, None)
    assert (created_by, *times) == (
        "creator-issue_closed",
        "2026-03-01T10:00:00.000Z",
        "2026-03-03T12:45:00.000Z",
        "2026-03-03T12:45:00.000Z",
    )
    assert msgspec.json.decode(metadata) == {
        "rig_id": mapping[source.rig_a],
        "nested": {"rig_id": source.rig_a, "rigId": source.rig_b},  # nested ids are not touched
        "source": "mayor",
    }
    assert msgspec.json.decode(bead("issue_failed")[-1]) == {
        "rigId": mapping[source.rig_b],
        "rig_ids": [source.rig_a],
    }
    assert bead("molecule_child_of_copied")[1] == c.bead["issue_closed"]  # parent copied: kept
    for name in ("child_of_open", "child_of_unlanded_convoy", "child_of_missing"):
        assert bead(name)[1] is None  # parent not copied: detached
    assert report.parents_detached == 3
    gone = bead("on_gone_rig")
    assert gone[0] is None and msgspec.json.decode(gone[-1]) == {"rig_id": None}
    assert bead("without_rig")[0] is None
    assert msgspec.json.decode(bead("without_rig")[-1]) == {"rig_id": 42, "rigId": None}
    # on_gone_rig: its column, its metadata and its status event's metadata; plus one event's metadata
    assert report.rig_refs_unmapped == 4


def test_import_keeps_events_edges_and_satellites_of_copied_beads_only(
    source: Source, target: apsw.Connection
) -> None:
    report = _import(target, export_for_fork(source.conn, source.options()))
    c, mapping = source.cases, report.rig_id_mapping
    event = {
        r[0]: (r[1], r[2])
        for r in target.execute("SELECT bead_event_id, agent_id, metadata FROM bead_events")
    }
    assert event[c.event["event_rig_a"]] == (
        "agent-from-elsewhere",
        msgspec.json.encode({"rig_id": mapping[source.rig_a], "deep": {"rigId": source.rig_a}}).decode(),
    )
    assert msgspec.json.decode(event[c.event["event_gone_rig"]][1]) == {"rigId": None}
    assert event[c.event["created:issue_closed"]][0] == c.agent  # agent ids preserved
    assert c.event["created:issue_open"] not in event and c.event["created:agent_active"] not in event

    b = c.bead
    assert set(target.execute("SELECT * FROM bead_dependencies")) == {
        (b["issue_failed"], b["issue_closed"], "blocks"),
        (b["mr_closed"], b["issue_closed"], "tracks"),
        (b["convoy_member"], b["convoy_landed"], "tracks"),
    }
    assert report.skipped.bead_dependencies == 4
    assert list(target.execute("SELECT * FROM review_metadata ORDER BY branch")) == [
        (b["mr_closed"], "feat/x", "main", "abc123", "https://github.com/acme/web/pull/12", 2, None, None),
        (b["mr_failed"], "feat/y", "develop", None, None, 5, None, None),
    ]
    assert list(target.execute("SELECT * FROM escalation_metadata")) == [
        (b["escalation_with_row"], "critical", "ci", 1, 2, "2026-03-03T12:45:00.000Z"),
    ]
    assert list(target.execute("SELECT * FROM convoy_metadata")) == [
        (b["convoy_landed"], 3, 3, "2026-03-03T12:45:00.000Z", "convoy/landed", "review-and-merge", 1),
    ]
    for table in ("agent_metadata", "agent_nudges", "town_events", "town_wasteland_connections"):
        assert target.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0
    skipped = msgspec.to_builtins(report.skipped)
    assert skipped == {
        "beads_active": 6,
        "beads_agent": 2,
        "beads_message": 2,
        "convoys_not_landed": 2,
        "bead_events": skipped["bead_events"],
        "bead_dependencies": 4,
        "agent_metadata": 2,
        "agent_nudges": 1,
        "town_events": 2,
    }
    # 12 non-copied beads: a created event each, plus status events of the 4 terminal ones
    assert skipped["bead_events"] == 12 + 4


def test_import_lays_copied_config_over_new_town_defaults_and_keeps_new_ownership(
    source: Source, target: apsw.Connection
) -> None:
    _import(target, export_for_fork(source.conn, source.options()))
    stored = kv_get(target, town_config.CONFIG_KEY)
    for name, value in {**COPIED_CONFIG, **GIT_AUTHOR, "env_vars": ENV_VARS}.items():
        assert stored[name] == value, name
    assert stored["git_auth"] == {"gitlab_instance_url": GITLAB_INSTANCE_URL}
    assert (stored["owner_user_id"], stored["created_by_user_id"], stored["kilocode_token"]) == (
        "new-owner",
        "new-owner",
        "new-owner-token",
    )
    assert "github_cli_pat" not in stored
    keys = {r[0] for r in target.execute("SELECT key FROM _kv")}
    assert not any(
        k.startswith(("rig:", "container:", "billing:", "mayor:", "town:private:", "town:draining"))
        for k in keys
    )


def test_import_without_git_author_or_env_vars_leaves_them_unset(
    source: Source, target: apsw.Connection
) -> None:
    _import(target, export_for_fork(source.conn, source.options(env=False, git_author=False)))
    stored = kv_get(target, town_config.CONFIG_KEY)
    assert "git_author_name" not in stored and "git_author_email" not in stored
    assert stored["env_vars"] == {}


def test_import_creates_every_rig_with_a_new_id_and_the_same_settings(
    source: Source, target: apsw.Connection
) -> None:
    report = _import(target, export_for_fork(source.conn, source.options()))
    mapping = report.rig_id_mapping
    assert set(mapping) == {source.rig_a, source.rig_b} and not set(mapping.values()) & set(mapping)
    src = {
        r[0]: r[1:5]
        for r in source.conn.execute("SELECT id, name, git_url, default_branch, config FROM rigs")
    }
    new = {
        r[0]: r[1:]
        for r in target.execute("SELECT id, name, git_url, default_branch, config, created_at FROM rigs")
    }
    assert set(new) == set(mapping.values())
    for old_id, new_id in mapping.items():
        assert new[new_id][:4] == src[old_id]
        assert new[new_id][4] > "2026-03-03"  # created now, not the source's time
    assert report.copied.rigs == 2


def test_dry_run_import_reports_the_same_counts_and_writes_nothing(
    source: Source, target: apsw.Connection
) -> None:
    # A dry run exports counts only (no rows); its numbers must be the real import's.
    count_only = msgspec.structs.replace(source.options(), rows=False)
    dry_parts = export_for_fork(source.conn, count_only).parts
    assert not any(isinstance(p, RowImage) for p in dry_parts)
    dry = import_fork(None, dry_parts, rig_id_mapping={})
    real = _import(target, export_for_fork(source.conn, source.options()))
    assert (dry.copied, dry.skipped, dry.parents_detached, dry.rig_refs_unmapped) == (
        real.copied,
        real.skipped,
        real.parents_detached,
        real.rig_refs_unmapped,
    )


def test_export_is_one_snapshot_while_the_source_keeps_taking_writes(
    source: Source, target: apsw.Connection
) -> None:
    reader = open_snapshot_reader(source.path)
    try:
        attach_part_schema(reader)
        with reader:
            parts = export_parts(reader, source.options(part_rows=2))
            first = [next(parts), next(parts)]
            late = str(uuid.uuid4())
            with source.conn:  # a writer commits in the middle of the export
                source.conn.execute(
                    "INSERT INTO beads (bead_id, type, status, title, created_at, updated_at)"
                    " VALUES (?, 'issue', 'closed', 'late', '2026-04-01T00:00:00.000Z', '2026-04-01T00:00:00.000Z')",
                    (late,),
                )
                source.conn.execute(
                    "INSERT INTO bead_events (bead_event_id, bead_id, event_type, created_at)"
                    " VALUES (?, ?, 'fields_updated', '2026-04-01T00:00:00.000Z')",
                    (late, source.cases.bead["issue_closed"]),
                )
            report = import_fork(target, [*first, *parts], rig_id_mapping={})
    finally:
        reader.close()
    assert target.execute("SELECT count(*) FROM beads WHERE bead_id = ?", (late,)).fetchone()[0] == 0
    assert (
        target.execute("SELECT count(*) FROM bead_events WHERE bead_event_id = ?", (late,)).fetchone()[0] == 0
    )
    assert report.copied.beads == 14 and report.skipped.beads_active == 6


def test_big_populated_town_exports_in_many_parts_and_imports_exactly(
    source: Source, target: apsw.Connection
) -> None:
    with source.conn:
        stats = populate_town(
            source.conn,
            rig_ids=[source.rig_a, source.rig_b, source.gone_rig],
            beads=3000,
            events_per_bead=3,
            seed=7,
            actor_user_id="source-owner",
        )
    assert stats is not None
    payload = export_for_fork(source.conn, source.options(part_rows=250))
    bead_parts = [p for p in payload.parts if isinstance(p, RowImage) and p.table == "beads"]
    event_parts = [p for p in payload.parts if isinstance(p, RowImage) and p.table == "bead_events"]
    assert len(bead_parts) >= 6 and len(event_parts) >= 20
    assert all(p.rows <= 250 for p in payload.parts if isinstance(p, RowImage))
    report = _import(target, payload)
    expected = expected_fork(source.conn, report.rig_id_mapping)
    actual = town_rows(target)
    assert actual == expected.rows
    assert msgspec.to_builtins(report.copied) == expected.copied
    assert msgspec.to_builtins(report.skipped) == expected.skipped
    assert report.rig_refs_unmapped == expected.rig_refs_unmapped > 100
    assert report.parents_detached == expected.parents_detached
    # every status and type of the demo is present in the source, and the rules really filter
    assert expected.copied["beads"] < 3000 and all(v > 0 for v in expected.skipped.values())


def test_import_refuses_an_unknown_payload_version_or_an_incomplete_payload(
    source: Source, target: apsw.Connection
) -> None:
    parts = export_for_fork(source.conn, source.options()).parts
    header = parts[0]
    assert isinstance(header, ForkExportHeader)
    future = msgspec.structs.replace(header, version=FORK_PAYLOAD_VERSION + 1)
    with pytest.raises(BadRequest, match=f"version {FORK_PAYLOAD_VERSION + 1}"):
        import_fork(target, [future, *parts[1:]], rig_id_mapping={})
    assert target.execute("SELECT count(*) FROM rigs").fetchone()[0] == 0  # refused before any write
    # (A payload that breaks off later fails after rows were loaded: the import's database is
    # a scratch file the runtime discards then, tests/dos/test_runtime.py.)
    with pytest.raises(BadRequest, match="Incomplete"):
        import_fork(target, parts[:-1], rig_id_mapping={})


def test_import_refuses_row_parts_that_are_not_what_they_claim(source: Source, tmp_path: Path) -> None:
    parts = export_for_fork(source.conn, source.options()).parts
    beads = next(p for p in parts if isinstance(p, RowImage) and p.table == "beads")
    events = next(p for p in parts if isinstance(p, RowImage) and p.table == "bead_events")
    garbage = msgspec.structs.replace(beads, image=b"not a database" * 100)
    wrong_table = msgspec.structs.replace(events, table="beads")  # events' columns under beads
    short = msgspec.structs.replace(beads, rows=beads.rows + 1)
    for i, bad in enumerate((garbage, wrong_table, short)):
        conn = apsw.Connection(str(tmp_path / f"bad-{i}.sqlite3"))
        apply_migrations(conn, TOWN_MIGRATIONS)
        with pytest.raises(BadRequest, match="Fork payload part for beads"):
            import_fork(conn, [parts[0], bad, *parts[1:]], rig_id_mapping={})
        conn.close()


def test_import_refuses_a_connection_inside_a_transaction(source: Source, target: apsw.Connection) -> None:
    parts = export_for_fork(source.conn, source.options()).parts
    with pytest.raises(RuntimeError, match="outside any transaction"), target:
        import_fork(target, parts, rig_id_mapping={})


def _schema(conn: apsw.Connection) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_stat%' ORDER BY type, name"
    ).fetchall()


def test_index_late_import_leaves_exactly_the_schema_of_a_normal_town(
    source: Source, target: apsw.Connection, tmp_path: Path
) -> None:
    normal = apsw.Connection(str(tmp_path / "normal.sqlite3"))
    apply_migrations(normal, TOWN_MIGRATIONS)
    expected = _schema(normal)
    assert any(row[0] == "index" and row[3] for row in expected)  # the secondary indexes exist
    _import(target, export_for_fork(source.conn, source.options(part_rows=3)))
    assert _schema(target) == expected
    assert target.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert target.execute("SELECT count(*) FROM temp.sqlite_master").fetchone()[0] == 0  # no trace of the load


@pytest.mark.parametrize("part_rows", [1, 2, 5, 10_000])
def test_part_boundaries_do_not_change_what_is_imported(
    source: Source, tmp_path: Path, part_rows: int
) -> None:
    """Every part size yields the same town: rows split at any boundary (inside a table, at a
    table's end) land exactly once."""
    results = []
    for size in (part_rows, 10_000):
        conn = apsw.Connection(str(tmp_path / f"t-{part_rows}-{size}-{len(results)}.sqlite3"))
        apply_migrations(conn, TOWN_MIGRATIONS)
        mapping = {source.rig_a: "aaaaaaaa-0000-4000-8000-000000000001", source.rig_b: "aaaaaaaa-0000-4000-8000-000000000002"}
        report = _import(conn, export_for_fork(source.conn, source.options(part_rows=size)), mapping)
        results.append((town_rows(conn), msgspec.to_builtins(report.copied), report.rig_refs_unmapped))
        conn.close()
    assert results[0] == results[1]


def test_progress_reports_every_phase_in_order_with_rows_reaching_the_total(
    source: Source, target: apsw.Connection
) -> None:
    seen: list[tuple[str, int, int]] = []
    import_fork(
        target,
        export_for_fork(source.conn, source.options(part_rows=2)).parts,
        rig_id_mapping={},
        progress=lambda phase, done, total: seen.append((phase, done, total)),
    )
    phases = [p for p, _, _ in seen]
    assert phases[0] == "export" and phases[-2:] == ["indexes", "config"]
    assert set(phases[1:-2]) == {"import"} and len(phases) > 4
    done = [d for p, d, _ in seen if p == "import"]
    total = seen[0][2]
    assert done == sorted(done) and done[-1] == total > 0
    assert {t for _, _, t in seen} == {total}
