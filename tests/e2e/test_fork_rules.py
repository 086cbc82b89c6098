"""forkTown end to end (fork.md §1, §3, §4, §5): a source with one row per rule, forked through
the real server, checked in the new town's SQLite file.

The source is built in two steps: towns, rigs and config through the API; then, with the
server stopped (the running server owns the files), hand-made edge-case rows and a demo
history written straight into the source's database. A second server on the same data dir
runs the forks.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import apsw
import jwt
import pytest

from tests.fork_fixtures import (
    COPIED_CONFIG,
    ENV_SECRET_CANARY,
    ENV_VARS,
    GIT_AUTHOR,
    GITLAB_INSTANCE_URL,
    INTEGRATION_CANARY,
    KILOCODE_CANARY,
    RUNTIME_KV,
    SECRET_CONFIG,
    TOKEN_CANARIES,
    EdgeCases,
    count_rows,
    expected_fork,
    kv,
    logical_dump,
    read_db,
    seed_edge_cases,
    town_rows,
)
from tests.server import TEST_SECRET, RunningServer, object_file, start_server
from tests.trpc import mutate, query
from town.clock import now_iso
from town.demo import populate_town

PROVIDER_TOKEN = "ghs_provider_token_for_the_new_owner"
PROVIDER_INSTALLATION = 4242
COPIED_COUNT_KEYS = (
    "beads",
    "bead_events",
    "bead_dependencies",
    "review_metadata",
    "escalation_metadata",
    "convoy_metadata",
    "rigs",
)


class _GitTokens(BaseHTTPRequestHandler):
    """A git-token provider that knows one repository (acme/web) and records its requests."""

    requests: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        _GitTokens.requests.append(body)
        known = body.get("githubRepo") == "acme/web"
        payload = json.dumps({"token": PROVIDER_TOKEN, "installationId": PROVIDER_INSTALLATION}).encode()
        self.send_response(200 if known else 404)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(payload if known else b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@dataclass
class Scenario:
    server: RunningServer
    alice_id: str
    org_id: str
    source_id: str
    rigs: dict[str, str]  # name -> source rig id ("old" was deleted)
    cases: EdgeCases
    dump_before: dict[str, Any]
    started_at: str
    fork: dict[str, Any]  # the ForkResult of the main fork

    def client(self, user_id: str | None = None, **orgs: str) -> Any:
        memberships = orgs or {self.org_id: "owner"}
        return self.server.client(self.server.token(user_id or self.alice_id, orgs=memberships))

    def town_file(self, town_id: str) -> Path:
        return object_file(self.server, "TownDO", town_id)

    @property
    def new_id(self) -> str:
        return str(self.fork["town"]["id"])

    @property
    def mapping(self) -> dict[str, str]:
        return dict(self.fork["rigIdMapping"])

    def warning(self, result: dict[str, Any], code: str) -> dict[str, Any]:
        found = [w for w in result["warnings"] if w["code"] == code]
        assert len(found) == 1, (code, result["warnings"])
        return found[0]


class Servers:
    """How the scenario starts its servers, and frees a stopped one's files for writing
    (tests/ray overrides it: there the objects outlive the server, as actors)."""

    def start(self, data: Path, env: dict[str, str]) -> RunningServer:
        return start_server(data, extra_env=env)

    def release(self, stopped: RunningServer) -> None:
        """Nothing holds a local server's files once it stopped."""


@pytest.fixture(scope="module")
def servers() -> Servers:
    return Servers()


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory, servers: Servers) -> Iterator[Scenario]:
    provider = ThreadingHTTPServer(("127.0.0.1", 0), _GitTokens)
    threading.Thread(target=provider.serve_forever, daemon=True).start()
    env = {"GASTOWN_GIT_TOKEN_SERVICE_URL": f"http://127.0.0.1:{provider.server_address[1]}/token"}
    data = tmp_path_factory.mktemp("fork-rules") / "data"
    alice_id, org_id = f"alice-fork-{uuid.uuid4().hex[:8]}", str(uuid.uuid4())

    # 1. towns, rigs and config through the API
    first = servers.start(data, env)
    try:
        alice = first.client(first.token(alice_id, orgs={org_id: "owner"}))
        source_id = mutate(alice, "createTown", {"name": "Source"})["id"]
        rigs = {
            name: mutate(
                alice,
                "createRig",
                {"townId": source_id, "name": name, "gitUrl": url, "defaultBranch": branch},
            )["id"]
            for name, url, branch in (
                ("web", "https://github.com/acme/web.git", "main"),
                ("docs", "https://gitlab.com/acme/docs.git", "trunk"),
                ("old", "https://github.com/acme/old.git", "main"),
            )
        }
        mutate(
            alice,
            "updateRigConfig",
            {"rigId": rigs["web"], "config": {"default_model": "rig-model", "max_concurrent_polecats": 2}},
        )
        config = {**COPIED_CONFIG, **GIT_AUTHOR, **SECRET_CONFIG, "kilocode_token": KILOCODE_CANARY}
        mutate(alice, "updateTownConfig", {"townId": source_id, "config": config})
        mutate(alice, "deleteRig", {"rigId": rigs["old"]})
    finally:
        first.stop()
        servers.release(first)

    # 2. edge cases and volume, straight into the stopped server's file
    source_file = object_file(first, "TownDO", source_id)
    conn = apsw.Connection(str(source_file))
    try:
        cases = seed_edge_cases(conn, rig_a=rigs["web"], rig_b=rigs["docs"], gone_rig=rigs["old"])
        with conn:
            populate_town(
                conn,
                rig_ids=[rigs["web"], rigs["docs"], rigs["old"]],
                beads=400,
                events_per_bead=4,
                seed=11,
                actor_user_id=alice_id,
            )
    finally:
        conn.close()
    dump_before = logical_dump(source_file)

    # 3. a new server forks it
    server = servers.start(data, env)
    try:
        started_at = now_iso()
        alice = server.client(server.token(alice_id, orgs={org_id: "owner"}))
        fork = mutate(alice, "forkTown", {"sourceTownId": source_id, "newTownName": "Forked"})
        yield Scenario(server, alice_id, org_id, source_id, rigs, cases, dump_before, started_at, fork)
    finally:
        server.stop()
        provider.shutdown()


def _counts(result: dict[str, Any]) -> tuple[dict[str, int], dict[str, int]]:
    return result["copied"], result["skipped"]


# -- rows -------------------------------------------------------------------------------------


def test_new_town_holds_exactly_the_rows_the_rules_select(scenario: Scenario) -> None:
    with read_db(scenario.town_file(scenario.source_id)) as source:
        expected = expected_fork(source, scenario.mapping)
    with read_db(scenario.town_file(scenario.new_id)) as new:
        actual = town_rows(new)
    assert actual.beads == expected.rows.beads
    assert actual.bead_events == expected.rows.bead_events
    assert actual.bead_dependencies == expected.rows.bead_dependencies
    assert actual.review_metadata == expected.rows.review_metadata
    assert actual.escalation_metadata == expected.rows.escalation_metadata
    assert actual.convoy_metadata == expected.rows.convoy_metadata
    assert scenario.fork["copied"] == expected.copied
    assert scenario.fork["skipped"] == expected.skipped


def test_result_counts_equal_the_rows_in_the_new_and_source_files(scenario: Scenario) -> None:
    copied, skipped = _counts(scenario.fork)
    with read_db(scenario.town_file(scenario.new_id)) as new:
        rows = count_rows(new)
    assert {k: rows[k] for k in COPIED_COUNT_KEYS} == copied
    assert (
        rows["agent_metadata"]
        == rows["agent_nudges"]
        == rows["town_events"]
        == rows["town_wasteland_connections"]
        == 0
    )
    with read_db(scenario.town_file(scenario.source_id)) as source:
        src = count_rows(source)
    beads_skipped = sum(
        skipped[k] for k in ("beads_active", "beads_agent", "beads_message", "convoys_not_landed")
    )
    assert copied["beads"] + beads_skipped == src["beads"]
    assert copied["bead_events"] + skipped["bead_events"] == src["bead_events"]
    assert copied["bead_dependencies"] + skipped["bead_dependencies"] == src["bead_dependencies"]
    assert (skipped["agent_metadata"], skipped["agent_nudges"], skipped["town_events"]) == (
        src["agent_metadata"],
        src["agent_nudges"],
        src["town_events"],
    )
    assert copied["rigs"] == 2 and min(copied.values()) > 0 and min(skipped.values()) > 0


def test_copied_beads_lose_runtime_state_and_keep_history(scenario: Scenario) -> None:
    c, mapping = scenario.cases, scenario.mapping
    with read_db(scenario.town_file(scenario.new_id)) as new:
        beads = {
            r[0]: r[1:]
            for r in new.execute(
                "SELECT bead_id, rig_id, parent_bead_id, assignee_agent_bead_id, dispatch_attempts,"
                " last_dispatch_attempt_at, created_by, created_at, closed_at, metadata FROM beads"
            )
        }
        assert (
            new.execute(
                "SELECT count(*) FROM beads WHERE assignee_agent_bead_id IS NOT NULL OR dispatch_attempts <> 0"
                " OR last_dispatch_attempt_at IS NOT NULL OR status NOT IN ('closed', 'failed') OR type IN ('agent', 'message')"
            ).fetchone()[0]
            == 0
        )
        rig_ids = {r[0] for r in new.execute("SELECT DISTINCT rig_id FROM beads")}
    assert rig_ids == {mapping[scenario.rigs["web"]], mapping[scenario.rigs["docs"]], None}

    rig, parent, assignee, attempts, last, created_by, created_at, closed_at, metadata = beads[
        c.bead["issue_closed"]
    ]
    assert (rig, parent, assignee, attempts, last) == (mapping[scenario.rigs["web"]], None, None, 0, None)
    assert (created_by, created_at, closed_at) == (
        "creator-issue_closed",
        "2026-03-01T10:00:00.000Z",
        "2026-03-03T12:45:00.000Z",
    )
    assert json.loads(metadata) == {
        "rig_id": mapping[scenario.rigs["web"]],
        "nested": {"rig_id": scenario.rigs["web"], "rigId": scenario.rigs["docs"]},
        "source": "mayor",
    }
    assert beads[c.bead["molecule_child_of_copied"]][1] == c.bead["issue_closed"]
    for name in ("child_of_open", "child_of_unlanded_convoy", "child_of_missing"):
        assert beads[c.bead[name]][1] is None, name
    assert beads[c.bead["on_gone_rig"]][0] is None and json.loads(beads[c.bead["on_gone_rig"]][-1]) == {
        "rig_id": None
    }
    for name in (
        "issue_open",
        "issue_in_progress",
        "issue_in_review",
        "agent_active",
        "agent_dead",
        "message_closed",
        "message_open",
        "mr_in_review",
        "escalation_open",
        "convoy_closed_not_landed",
        "convoy_failed_without_row",
        "convoy_open",
    ):
        assert c.bead[name] not in beads, name
    assert c.bead["escalation_without_row"] in beads and c.bead["convoy_landed"] in beads


def test_events_edges_and_satellites_follow_the_copied_beads(scenario: Scenario) -> None:
    c, b, mapping = scenario.cases, scenario.cases.bead, scenario.mapping
    with read_db(scenario.town_file(scenario.new_id)) as new:
        events = {
            r[0]: r[1:] for r in new.execute("SELECT bead_event_id, agent_id, metadata FROM bead_events")
        }
        edges = set(
            new.execute(
                "SELECT * FROM bead_dependencies WHERE bead_id IN (?, ?, ?, ?, ?)",
                (b["issue_failed"], b["mr_closed"], b["convoy_member"], b["child_of_open"], b["issue_open"]),
            )
        )
        review = {r[0]: r[1:] for r in new.execute("SELECT * FROM review_metadata")}
        escalations = {r[0]: r[1:] for r in new.execute("SELECT * FROM escalation_metadata")}
        convoys = {r[0]: r[1:] for r in new.execute("SELECT * FROM convoy_metadata")}
    assert events[c.event["created:issue_closed"]][0] == c.agent  # agent ids preserved, even dangling
    assert json.loads(events[c.event["event_rig_a"]][1]) == {
        "rig_id": mapping[scenario.rigs["web"]],
        "deep": {"rigId": scenario.rigs["web"]},
    }
    assert json.loads(events[c.event["event_gone_rig"]][1]) == {"rigId": None}
    assert (
        c.event["created:issue_open"] not in events
        and c.event["status:convoy_closed_not_landed"] not in events
    )
    assert edges == {
        (b["issue_failed"], b["issue_closed"], "blocks"),
        (b["mr_closed"], b["issue_closed"], "tracks"),
        (b["convoy_member"], b["convoy_landed"], "tracks"),
    }
    assert review[b["mr_closed"]] == (
        "feat/x",
        "main",
        "abc123",
        "https://github.com/acme/web/pull/12",
        2,
        None,
        None,
    )
    assert review[b["mr_failed"]] == ("feat/y", "develop", None, None, 5, None, None)
    assert b["mr_in_review"] not in review
    assert all(row[-2:] == (None, None) for row in review.values())
    assert escalations[b["escalation_with_row"]] == ("critical", "ci", 1, 2, "2026-03-03T12:45:00.000Z")
    assert b["escalation_without_row"] not in escalations and b["escalation_open"] not in escalations
    assert convoys[b["convoy_landed"]] == (
        3,
        3,
        "2026-03-03T12:45:00.000Z",
        "convoy/landed",
        "review-and-merge",
        1,
    )
    assert b["convoy_closed_not_landed"] not in convoys
    with read_db(scenario.town_file(scenario.new_id)) as new:
        assert new.execute("SELECT count(*) FROM convoy_metadata WHERE landed_at IS NULL").fetchone()[0] == 0


# -- config, secrets, KV ------------------------------------------------------------------------


def test_new_town_config_copies_settings_and_never_secrets(scenario: Scenario) -> None:
    with read_db(scenario.town_file(scenario.new_id)) as new:
        config = kv(new)["town:config"]
    for name, value in {**COPIED_CONFIG, **GIT_AUTHOR, "env_vars": ENV_VARS}.items():
        assert config[name] == value, name
    # the only git token is the provider's, for the new owner; the source's binding is gone
    assert config["git_auth"] == {
        "gitlab_instance_url": GITLAB_INSTANCE_URL,
        "github_token": PROVIDER_TOKEN,
        "platform_integration_id": str(PROVIDER_INSTALLATION),
    }
    assert "github_cli_pat" not in config
    assert (
        config["owner_type"],
        config["owner_user_id"],
        config["owner_id"],
        config["created_by_user_id"],
    ) == (
        "user",
        scenario.alice_id,
        scenario.alice_id,
        scenario.alice_id,
    )
    assert "organization_id" not in config
    text = json.dumps(logical_dump(scenario.town_file(scenario.new_id)))
    for canary in (*TOKEN_CANARIES, INTEGRATION_CANARY):
        assert canary not in text


def test_new_kilocode_token_is_a_fresh_30_day_jwt_for_the_caller(scenario: Scenario) -> None:
    with read_db(scenario.town_file(scenario.new_id)) as new:
        token = kv(new)["town:config"]["kilocode_token"]
    assert token != KILOCODE_CANARY
    claims = jwt.decode(token, TEST_SECRET, algorithms=["HS256"])
    assert claims["kiloUserId"] == scenario.alice_id
    assert claims["exp"] - claims["iat"] == 30 * 24 * 3600


def test_new_town_kv_holds_only_config_lineage_and_new_rig_configs(scenario: Scenario) -> None:
    with read_db(scenario.town_file(scenario.source_id)) as source:
        assert set(RUNTIME_KV) <= set(kv(source))  # the source does have runtime state
    with read_db(scenario.town_file(scenario.new_id)) as new:
        values = kv(new)
    new_rigs = set(scenario.mapping.values())
    assert set(values) - {"town:config:newDefaultsSeeded"} == {
        "town:id",
        "town:config",
        "town:forked_from",
        *(f"rig:{r}:config" for r in new_rigs),
    }
    assert values["town:id"] == scenario.new_id
    # a fresh container object for the new town, none of the source's container state
    with read_db(object_file(scenario.server, "TownContainerDO", scenario.new_id)) as container:
        assert kv(container) == {"container:registry": []}
    for rig_id in new_rigs:
        rig_config = values[f"rig:{rig_id}:config"]
        assert (rig_config["townId"], rig_config["rigId"], rig_config["userId"]) == (
            scenario.new_id,
            rig_id,
            scenario.alice_id,
        )
        assert rig_config["kilocodeToken"] == values["town:config"]["kilocode_token"]


def test_lineage_is_recorded_and_returned_by_get_town_and_list_towns(scenario: Scenario) -> None:
    with read_db(scenario.town_file(scenario.new_id)) as new:
        lineage = kv(new)["town:forked_from"]
    assert lineage == {
        "town_id": scenario.source_id,
        "forked_at": scenario.fork["forked_from"]["forked_at"],
        "by_user_id": scenario.alice_id,
    }
    assert scenario.fork["forked_from"] == {"town_id": scenario.source_id, "forked_at": lineage["forked_at"]}
    assert scenario.started_at <= lineage["forked_at"] <= now_iso()
    alice = scenario.client()
    town = query(alice, "getTown", {"townId": scenario.new_id})
    assert town == scenario.fork["town"]
    assert (town["name"], town["owner_user_id"], town["forked_from"]) == (
        "Forked",
        scenario.alice_id,
        lineage,
    )
    listed = {t["id"]: t for t in query(alice, "listTowns")}
    assert listed[scenario.new_id]["forked_from"] == lineage
    assert listed[scenario.source_id]["forked_from"] is None


# -- rigs -------------------------------------------------------------------------------------


def test_every_rig_gets_a_new_id_and_the_same_settings_at_fork_time(scenario: Scenario) -> None:
    mapping = scenario.mapping
    assert set(mapping) == {scenario.rigs["web"], scenario.rigs["docs"]}  # the deleted rig is gone
    assert not set(mapping.values()) & set(mapping)
    forked_at = scenario.fork["forked_from"]["forked_at"]
    with read_db(scenario.town_file(scenario.source_id)) as source:
        src = {
            r[0]: r[1:] for r in source.execute("SELECT id, name, git_url, default_branch, config FROM rigs")
        }
    with read_db(scenario.town_file(scenario.new_id)) as new:
        rows = {
            r[0]: r[1:]
            for r in new.execute("SELECT id, name, git_url, default_branch, config, created_at FROM rigs")
        }
    assert set(rows) == set(mapping.values())
    for old, new_id in mapping.items():
        assert rows[new_id][:4] == src[old]
        assert scenario.started_at <= rows[new_id][4] <= forked_at
    assert json.loads(rows[mapping[scenario.rigs["web"]]][3]) == {
        "default_model": "rig-model",
        "max_concurrent_polecats": 2,
    }

    user_file = object_file(scenario.server, "GastownUserDO", scenario.alice_id)
    with read_db(user_file) as owner:
        owner_rigs = {
            r[0]: r[1:]
            for r in owner.execute(
                "SELECT id, town_id, name, git_url, default_branch FROM user_rigs WHERE town_id = ?",
                (scenario.new_id,),
            )
        }
    assert owner_rigs == {new_id: (scenario.new_id, *src[old][:3]) for old, new_id in mapping.items()}
    assert {r["id"] for r in scenario.fork["rigs"]} == set(mapping.values())
    listed = query(scenario.client(), "listRigs", {"townId": scenario.new_id})
    assert {r["id"] for r in listed} == set(mapping.values())


def test_git_credentials_are_asked_for_the_new_owner_and_missing_ones_reported(scenario: Scenario) -> None:
    asked = [r for r in _GitTokens.requests if r["userId"] == scenario.alice_id]
    assert {"githubRepo": "acme/web", "userId": scenario.alice_id, "orgId": None} in asked
    missing = scenario.warning(scenario.fork, "GIT_CREDENTIALS_MISSING")
    assert missing["rigIds"] == [scenario.mapping[scenario.rigs["docs"]]]  # gitlab: the provider cannot help
    with read_db(scenario.town_file(scenario.new_id)) as new:
        values = kv(new)
    web = values[f"rig:{scenario.mapping[scenario.rigs['web']]}:config"]
    docs = values[f"rig:{scenario.mapping[scenario.rigs['docs']]}:config"]
    assert web.get("platformIntegrationId") == str(PROVIDER_INSTALLATION)
    assert docs.get("platformIntegrationId") is None


# -- warnings and secrets in responses ------------------------------------------------------------


def test_warnings_name_env_keys_secrets_detached_parents_and_unmapped_rigs(scenario: Scenario) -> None:
    fork = scenario.fork
    codes = sorted(w["code"] for w in fork["warnings"])
    assert codes == sorted(
        [
            "ENV_VARS_COPIED",
            "SECRETS_NOT_COPIED",
            "GIT_CREDENTIALS_MISSING",
            "PARENT_DETACHED",
            "RIG_UNMAPPED",
        ]
    )
    assert scenario.warning(fork, "ENV_VARS_COPIED")["keys"] == sorted(ENV_VARS)
    assert sorted(scenario.warning(fork, "SECRETS_NOT_COPIED")["keys"]) == [
        "git_auth.gitlab_token",
        "github_cli_pat",
    ]
    with read_db(scenario.town_file(scenario.source_id)) as source:
        expected = expected_fork(source, scenario.mapping)
    assert expected.parents_detached >= 3 and expected.rig_refs_unmapped >= 4
    assert str(expected.parents_detached) in scenario.warning(fork, "PARENT_DETACHED")["message"]
    assert str(expected.rig_refs_unmapped) in scenario.warning(fork, "RIG_UNMAPPED")["message"]


def test_no_token_appears_in_the_response_or_the_log(scenario: Scenario) -> None:
    response = json.dumps(scenario.fork)
    log = scenario.server.log_text()
    for canary in (*TOKEN_CANARIES, INTEGRATION_CANARY, PROVIDER_TOKEN):
        assert canary not in response and canary not in log
    assert ENV_SECRET_CANARY not in log


# -- source, dry run, other targets -----------------------------------------------------------------


def test_dry_run_reports_the_same_and_creates_nothing(scenario: Scenario) -> None:
    data = scenario.server.data_dir
    files_before = sorted(p.name for p in data.rglob("*.sqlite3"))
    alice = scenario.client()
    towns_before = query(alice, "listTowns")
    dry = mutate(
        alice, "forkTown", {"sourceTownId": scenario.source_id, "newTownName": "Dry", "dryRun": True}
    )
    assert dry["town"] is None
    assert (dry["copied"], dry["skipped"]) == (scenario.fork["copied"], scenario.fork["skipped"])
    assert sorted(w["code"] for w in dry["warnings"]) == sorted(w["code"] for w in scenario.fork["warnings"])
    assert dry["forked_from"]["town_id"] == scenario.source_id
    assert sorted(p.name for p in data.rglob("*.sqlite3")) == files_before
    assert query(alice, "listTowns") == towns_before


def test_dry_run_names_rigs_that_cannot_get_credentials_by_their_source_ids(scenario: Scenario) -> None:
    """A dry run does not ask the provider (that would mint tokens); a non-GitHub rig is certain to
    lack credentials, and is named by its source id since no new ids exist."""
    dry = mutate(
        scenario.client(),
        "forkTown",
        {"sourceTownId": scenario.source_id, "newTownName": "Dry", "dryRun": True},
    )
    missing = next(w for w in dry["warnings"] if w["code"] == "GIT_CREDENTIALS_MISSING")
    real = next(w for w in scenario.fork["warnings"] if w["code"] == "GIT_CREDENTIALS_MISSING")
    assert [scenario.fork["rigIdMapping"][old] for old in missing["rigIds"]] == real["rigIds"]


def test_org_fork_without_git_author_and_env_vars(scenario: Scenario) -> None:
    alice = scenario.client()
    result = mutate(
        alice,
        "forkOrgTown",
        {
            "sourceTownId": scenario.source_id,
            "newTownName": "Org copy",
            "organizationId": scenario.org_id,
            "includeGitAuthor": False,
            "includeEnvVars": False,
        },
    )
    town = result["town"]
    assert (town["owner_org_id"], town["created_by_user_id"]) == (scenario.org_id, scenario.alice_id)
    assert (result["copied"], result["skipped"]) == (scenario.fork["copied"], scenario.fork["skipped"])
    assert scenario.warning(result, "ENV_VARS_NOT_COPIED")["keys"] == sorted(ENV_VARS)
    assert not any(w["code"] == "ENV_VARS_COPIED" for w in result["warnings"])
    assert {
        "githubRepo": "acme/web",
        "userId": scenario.alice_id,
        "orgId": scenario.org_id,
    } in _GitTokens.requests
    with read_db(scenario.town_file(town["id"])) as new:
        config = kv(new)["town:config"]
    assert config["env_vars"] == {}
    assert "git_author_name" not in config and "git_author_email" not in config
    assert config["disable_ai_coauthor"] is True  # not a git author field: copied
    assert (
        config["owner_type"],
        config["owner_id"],
        config["organization_id"],
        config["created_by_user_id"],
    ) == (
        "org",
        scenario.org_id,
        scenario.org_id,
        scenario.alice_id,
    )
    org_file = object_file(scenario.server, "GastownOrgDO", scenario.org_id)
    with read_db(org_file) as org:
        assert org.execute(
            "SELECT name, created_by_user_id FROM org_towns WHERE id = ?", (town["id"],)
        ).fetchall() == [("Org copy", scenario.alice_id)]
        assert {
            r[0] for r in org.execute("SELECT id FROM user_rigs WHERE town_id = ?", (town["id"],))
        } == set(result["rigIdMapping"].values())
    listed = query(alice, "listOrgTowns", {"organizationId": scenario.org_id})
    assert [t["forked_from"]["town_id"] for t in listed if t["id"] == town["id"]] == [scenario.source_id]


def test_org_member_who_may_not_see_secrets_gets_no_env_vars(scenario: Scenario) -> None:
    alice = scenario.client()
    org_town = mutate(alice, "createOrgTown", {"organizationId": scenario.org_id, "name": "Org source"})["id"]
    mutate(alice, "updateTownConfig", {"townId": org_town, "config": {"env_vars": ENV_VARS}})
    bob_id = f"bob-fork-{uuid.uuid4().hex[:8]}"
    bob = scenario.client(bob_id, **{scenario.org_id: "member"})
    result = mutate(
        bob, "forkTown", {"sourceTownId": org_town, "newTownName": "Bob's copy", "includeEnvVars": True}
    )
    assert scenario.warning(result, "ENV_VARS_NOT_COPIED")["keys"] == sorted(ENV_VARS)
    assert ENV_SECRET_CANARY not in json.dumps(result)
    with read_db(scenario.town_file(result["town"]["id"])) as new:
        config = kv(new)["town:config"]
    assert config["env_vars"] == {}
    # org -> personal: the new town is the caller's, with a token minted for the caller
    assert (config["owner_type"], config["owner_user_id"], config["created_by_user_id"]) == (
        "user",
        bob_id,
        bob_id,
    )
    assert jwt.decode(config["kilocode_token"], TEST_SECRET, algorithms=["HS256"])["kiloUserId"] == bob_id


def test_source_is_untouched(scenario: Scenario) -> None:
    # last in the module: after the main fork, the dry run and the org fork
    assert logical_dump(scenario.town_file(scenario.source_id)) == scenario.dump_before
