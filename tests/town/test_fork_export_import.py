"""Fork export and import on real APSW files (fork.md §3, §4), checked against an oracle."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apsw
import msgspec
import pytest

from dos import town_do
from dos.kv import kv_get
from dos.migrations import apply_migrations
from dos.town_do import exported_parts, fork_counts
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
from town.fork_export import ExportOptions
from town.fork_import import ImportReport, Progress, check_rows_file, finish_import, receive_fork, report_of
from town.fork_payload import (
    FORK_PAYLOAD_VERSION,
    ExportPart,
    FileChunk,
    ForkExportHeader,
    ForkExportPayload,
    ForkExportSummary,
    RowsWritten,
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

    def options(
        self, *, env: bool = True, git_author: bool = True, part_rows: int = 2000, mapping: dict[str, str] | None = None
    ) -> ExportOptions:
        return ExportOptions(
            source_town_id=SOURCE_ID,
            include_env_vars=env,
            include_git_author=git_author,
            part_rows=part_rows,
            rig_id_mapping=mapping or {},
        )

    def export(self, options: ExportOptions | None = None) -> list[ExportPart]:
        """The whole fork export of this town, as dos.town_do streams it."""
        return list(exported_parts(self.path, options or self.options()))


@pytest.fixture
def source(town: apsw.Connection, tmp_path: Path) -> Source:
    return Source(town, tmp_path / "town.sqlite3")


NEW_TOWN_ID = "22222222-2222-4222-8222-222222222222"
FORKED_AT = "2026-12-02T05:00:00.000Z"


class Importer:
    """Imports payloads as a fork's build does (dos/fork_build.py): the rows file written out
    as it arrives, checked, then the new town's first write (its id, defaults and new
    ownership, as TownDO.initialize), then the rest of the import."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.opened: list[apsw.Connection] = []

    def __call__(self, parts: list[ExportPart], progress: Progress | None = None) -> tuple[apsw.Connection, ImportReport]:
        path = self.tmp_path / f"new-town-{uuid.uuid4()}.sqlite3"
        with open(path, "xb") as out:
            received = receive_fork(parts, out.write, progress)
        conn = apsw.Connection(str(path))
        self.opened.append(conn)
        check_rows_file(conn, received)
        with conn:
            put_kv(conn, "town:id", NEW_TOWN_ID)
            town_config.set_ownership(
                conn,
                owner_user_id="new-owner",
                owner_type="user",
                owner_id="new-owner",
                created_by_user_id="new-owner",
                kilocode_token="new-owner-token",
            )
        return conn, finish_import(conn, received, FORKED_AT, progress)


@pytest.fixture
def fork(tmp_path: Path) -> Iterator[Importer]:
    importer = Importer(tmp_path)
    yield importer
    for conn in importer.opened:
        conn.close()


def _rows_file(parts: list[ExportPart]) -> bytes:
    return b"".join(p.data for p in parts if isinstance(p, FileChunk))


def _with_rows_file(parts: list[ExportPart], image: bytes) -> list[ExportPart]:
    """The same payload carrying `image` as its rows file (in one chunk)."""
    summary = parts[-1]
    assert isinstance(summary, ForkExportSummary)
    others = [p for p in parts[:-1] if not isinstance(p, FileChunk)]
    return [*others, FileChunk(data=image), msgspec.structs.replace(summary, file_bytes=len(image))]


# -- the payload ------------------------------------------------------------------------------


def test_payload_round_trips_through_json_and_msgpack(source: Source) -> None:
    payload = ForkExportPayload(parts=source.export(source.options(part_rows=4)))
    for encode, decode in (
        (msgspec.json.encode, msgspec.json.decode),
        (msgspec.msgpack.encode, msgspec.msgpack.decode),
    ):
        again = decode(encode(payload), type=ForkExportPayload)
        assert again == payload
    assert isinstance(payload.parts[0], ForkExportHeader)
    assert isinstance(payload.parts[-1], ForkExportSummary)
    middle = payload.parts[1:-1]
    assert all(isinstance(p, (RowsWritten, FileChunk)) for p in middle)
    # Rows are reported as they are written, then the rows file follows, whole.
    kinds = [type(p) for p in middle]
    assert kinds == sorted(kinds, key=lambda k: k is FileChunk) and FileChunk in kinds and RowsWritten in kinds
    assert payload.parts[-1].file_bytes == len(_rows_file(payload.parts)) > 0


@pytest.mark.parametrize("include_env_vars", [True, False])
def test_payload_never_carries_a_token_and_env_values_only_when_allowed(
    source: Source, include_env_vars: bool
) -> None:
    parts = source.export(source.options(env=include_env_vars))
    encoded = msgspec.json.encode([p for p in parts if not isinstance(p, FileChunk)]).decode()
    rows_file = _rows_file(parts)  # raw bytes: nothing of the source's KV or rigs is in it
    for canary in (*TOKEN_CANARIES, INTEGRATION_CANARY):
        assert canary not in encoded
        assert canary.encode() not in rows_file
    assert (ENV_SECRET_CANARY in encoded) is include_env_vars
    assert ENV_SECRET_CANARY.encode() not in rows_file


def test_header_has_the_whitelisted_config_and_names_secrets_without_values(source: Source) -> None:
    header = source.export()[0]
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


def test_header_maps_every_rig_to_the_id_asked_for_or_a_fresh_one(source: Source) -> None:
    chosen = "aaaaaaaa-0000-4000-8000-000000000001"
    header = source.export(source.options(mapping={source.rig_a: chosen}))[0]
    assert isinstance(header, ForkExportHeader)
    assert set(header.rig_id_mapping) == {source.rig_a, source.rig_b}
    assert header.rig_id_mapping[source.rig_a] == chosen
    assert header.rig_id_mapping[source.rig_b] not in (source.rig_a, source.rig_b, chosen)


def test_header_without_git_author_and_env_vars_when_not_included(source: Source) -> None:
    header = source.export(source.options(env=False, git_author=False))[0]
    assert isinstance(header, ForkExportHeader)
    config = msgspec.to_builtins(header.config)
    assert "git_author_name" not in config and "git_author_email" not in config
    assert config.get("env_vars", {}) == {}
    assert header.env_var_keys == sorted(ENV_VARS)  # keys still reported, for ENV_VARS_NOT_COPIED


@pytest.mark.parametrize("part_rows", [1, 3, 7])
def test_rows_are_written_at_most_part_rows_at_a_time(source: Source, part_rows: int) -> None:
    written = [p for p in source.export(source.options(part_rows=part_rows)) if isinstance(p, RowsWritten)]
    walked = [p for p in written if p.table != "bead_events"]  # (events are sorted whole, in one step)
    assert walked and all(1 <= p.rows <= part_rows for p in walked)
    beads = sum(p.rows for p in written if p.table == "beads")
    assert beads == len(expected_fork(source.conn, {}).rows.beads)


def _file_bytes(path: Path) -> list[bytes]:
    return [p.read_bytes() if p.exists() else b"" for p in (path, Path(f"{path}-wal"))]


def test_export_does_not_write_to_the_source_and_leaves_no_file(source: Source) -> None:
    """The export writes only its own rows file beside the source, removed when it ends: the
    source's database and WAL files are byte for byte what they were."""
    kv_before = source.conn.execute("SELECT key, value FROM _kv ORDER BY key").fetchall()
    files_before = _file_bytes(source.path)
    source.export()
    assert _file_bytes(source.path) == files_before
    assert source.conn.execute("SELECT key, value FROM _kv ORDER BY key").fetchall() == kv_before
    assert sorted(p.name for p in source.path.parent.iterdir() if p.name.startswith(source.path.name)) == [
        name for name in ("town.sqlite3", "town.sqlite3-shm", "town.sqlite3-wal") if (source.path.parent / name).exists()
    ]


def test_an_export_closed_midway_removes_its_rows_file(source: Source) -> None:
    parts = exported_parts(source.path, source.options(part_rows=2))
    next(parts), next(parts)
    assert list(source.path.parent.glob("town.sqlite3.new.export-*")) != []
    parts.close()
    assert list(source.path.parent.glob("town.sqlite3.new.export-*")) == []


# -- the import -------------------------------------------------------------------------------


def test_import_reproduces_exactly_the_rows_the_rules_select(source: Source, fork: Importer) -> None:
    target, report = fork(source.export(source.options(part_rows=5)))
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


def test_import_applies_each_bead_rule(source: Source, fork: Importer) -> None:
    target, report = fork(source.export())
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
    source: Source, fork: Importer
) -> None:
    target, report = fork(source.export())
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
    source: Source, fork: Importer
) -> None:
    target, _ = fork(source.export())
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
    source: Source, fork: Importer
) -> None:
    target, _ = fork(source.export(source.options(env=False, git_author=False)))
    stored = kv_get(target, town_config.CONFIG_KEY)
    assert "git_author_name" not in stored and "git_author_email" not in stored
    assert stored["env_vars"] == {}


def test_import_creates_every_rig_with_a_new_id_and_the_same_settings(
    source: Source, fork: Importer
) -> None:
    target, report = fork(source.export())
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
        assert new[new_id][4] == FORKED_AT  # created at the fork's time, not the source's
    assert report.copied.rigs == 2


def test_dry_run_reports_the_same_counts_and_carries_no_rows(source: Source, fork: Importer) -> None:
    # A dry run exports counts only (no rows file); its numbers must be the real import's.
    count_only = source.export(msgspec.structs.replace(source.options(), rows=False))
    assert not any(isinstance(p, (RowsWritten, FileChunk)) for p in count_only)
    dry = report_of(receive_fork(count_only, None))
    counted = fork_counts(source.path, source.options())  # (what a dry run of the service reads)
    assert msgspec.structs.replace(counted, rig_id_mapping={}) == msgspec.structs.replace(dry, rig_id_mapping={})
    _, real = fork(source.export())
    assert (dry.copied, dry.skipped, dry.parents_detached, dry.rig_refs_unmapped) == (
        real.copied,
        real.skipped,
        real.parents_detached,
        real.rig_refs_unmapped,
    )


def test_export_is_one_snapshot_while_the_source_keeps_taking_writes(source: Source, fork: Importer) -> None:
    parts = exported_parts(source.path, source.options(part_rows=2))
    first = [next(parts), next(parts)]  # the header and the first beads: the snapshot is taken
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
    target, report = fork([*first, *parts])
    assert target.execute("SELECT count(*) FROM beads WHERE bead_id = ?", (late,)).fetchone()[0] == 0
    assert (
        target.execute("SELECT count(*) FROM bead_events WHERE bead_event_id = ?", (late,)).fetchone()[0] == 0
    )
    assert report.copied.beads == 14 and report.skipped.beads_active == 6


def test_big_populated_town_exports_in_many_parts_and_imports_exactly(
    source: Source, fork: Importer, monkeypatch: pytest.MonkeyPatch
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
    monkeypatch.setattr(town_do, "ROWS_FILE_CHUNK_BYTES", 64 * 1024)  # many chunks of the file
    parts = source.export(source.options(part_rows=250))
    bead_steps = [p for p in parts if isinstance(p, RowsWritten) and p.table == "beads"]
    chunks = [p for p in parts if isinstance(p, FileChunk)]
    assert len(bead_steps) >= 6 and all(p.rows <= 250 for p in bead_steps)
    assert len(chunks) >= 10 and all(len(p.data) <= 64 * 1024 for p in chunks)
    target, report = fork(parts)
    expected = expected_fork(source.conn, report.rig_id_mapping)
    actual = town_rows(target)
    assert actual == expected.rows
    assert msgspec.to_builtins(report.copied) == expected.copied
    assert msgspec.to_builtins(report.skipped) == expected.skipped
    assert report.rig_refs_unmapped == expected.rig_refs_unmapped > 100
    assert report.parents_detached == expected.parents_detached
    # every status and type of the demo is present in the source, and the rules really filter
    assert expected.copied["beads"] < 3000 and all(v > 0 for v in expected.skipped.values())


def test_import_refuses_an_unknown_payload_version_or_an_incomplete_payload(source: Source, tmp_path: Path) -> None:
    parts = source.export()
    header = parts[0]
    assert isinstance(header, ForkExportHeader)
    written: list[bytes] = []
    future = msgspec.structs.replace(header, version=FORK_PAYLOAD_VERSION + 1)
    with pytest.raises(BadRequest, match=f"version {FORK_PAYLOAD_VERSION + 1}"):
        receive_fork([future, *parts[1:]], written.append)
    assert written == []  # refused before any byte of the file was written
    with pytest.raises(BadRequest, match="Incomplete"):
        receive_fork(parts[:-1], written.append)  # no summary
    cut = [p for p in parts if p is not next(p for p in reversed(parts) if isinstance(p, FileChunk))]
    with pytest.raises(BadRequest, match="Incomplete"):
        receive_fork(cut, [].append)  # the file's last chunk lost
    with pytest.raises(BadRequest, match="before its header"):
        receive_fork(parts[1:], [].append)
    with pytest.raises(BadRequest, match="none were asked for"):
        receive_fork(parts, None)  # rows where a dry run's counts were expected


def _refused(parts: list[ExportPart], tmp_path: Path) -> str:
    """Receive the payload into a file and check it: the BAD_REQUEST's message."""
    path = tmp_path / f"bad-{uuid.uuid4()}.sqlite3"
    with open(path, "xb") as out:
        received = receive_fork(parts, out.write)
    conn = apsw.Connection(str(path))
    try:
        with pytest.raises(BadRequest) as refused:
            check_rows_file(conn, received)
    finally:
        conn.close()
    return str(refused.value)


def test_import_refuses_a_rows_file_that_is_not_what_the_header_says(source: Source, tmp_path: Path) -> None:
    parts = source.export()
    image = _rows_file(parts)
    assert "not a valid database" in _refused(_with_rows_file(parts, b"not a database" * 300), tmp_path)

    normal = apsw.Connection(":memory:")  # a town's full schema (with its indexes) is not a rows file
    apply_migrations(normal, TOWN_MIGRATIONS)
    assert "does not have a town's schema" in _refused(_with_rows_file(parts, normal.serialize("main")), tmp_path)

    # More rows of a table than announced, or rows in a table a fork never copies.
    for sql, table in (
        ("INSERT INTO beads (bead_id, type, title, created_at, updated_at) VALUES ('x', 'issue', 't', 'a', 'a')", "beads"),
        ("INSERT INTO _kv (key, value) VALUES ('town:id', 'someone-else')", "_kv"),
    ):
        tampered = apsw.Connection(":memory:")
        tampered.deserialize("main", image)
        tampered.execute(sql)
        message = _refused(_with_rows_file(parts, tampered.serialize("main")), tmp_path)
        assert f"rows of {table}" in message, message


def _schema(conn: apsw.Connection) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_stat%' ORDER BY type, name"
    ).fetchall()


def test_index_late_import_leaves_exactly_the_schema_of_a_normal_town(
    source: Source, fork: Importer, tmp_path: Path
) -> None:
    normal = apsw.Connection(str(tmp_path / "normal.sqlite3"))
    apply_migrations(normal, TOWN_MIGRATIONS)
    expected = _schema(normal)
    assert any(row[0] == "index" and row[3] for row in expected)  # the secondary indexes exist
    target, _ = fork(source.export(source.options(part_rows=3)))
    assert _schema(target) == expected
    assert target.execute("PRAGMA user_version").fetchone() == normal.execute("PRAGMA user_version").fetchone()
    assert target.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert target.execute("SELECT count(*) FROM temp.sqlite_master").fetchone()[0] == 0  # no trace of the load


@pytest.mark.parametrize("part_rows", [1, 2, 5, 10_000])
def test_part_boundaries_do_not_change_what_is_imported(source: Source, fork: Importer, part_rows: int) -> None:
    """Every step size yields the same town: rows split at any boundary (inside a table, at a
    table's end) land exactly once."""
    mapping = {source.rig_a: "aaaaaaaa-0000-4000-8000-000000000001", source.rig_b: "aaaaaaaa-0000-4000-8000-000000000002"}
    results = []
    for size in (part_rows, 10_000):
        target, report = fork(source.export(source.options(part_rows=size, mapping=mapping)))
        results.append((town_rows(target), msgspec.to_builtins(report.copied), report.rig_refs_unmapped))
    assert results[0] == results[1]


def test_progress_reports_every_phase_in_order_with_rows_reaching_the_total(source: Source, fork: Importer) -> None:
    seen: list[tuple[str, int, int]] = []
    fork(source.export(source.options(part_rows=2)), progress=lambda phase, done, total: seen.append((phase, done, total)))
    phases = [p for p, _, _ in seen]
    assert phases[0] == "export" and phases[-2:] == ["indexes", "config"]
    assert set(phases[1:-2]) == {"import"} and len(phases) > 4
    done = [d for p, d, _ in seen if p == "import"]
    total = seen[0][2]
    assert done == sorted(done) and done[-1] == total > 0
    assert {t for _, _, t in seen} == {total}
