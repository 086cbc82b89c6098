"""Secrets in a fork (fork.md §4) and git credentials from the provider (fork.md §3).

Canary values are planted in the source's config (env var values, github_cli_pat, git_auth
tokens) and its minted kilocode_token is read from its database. Tokens must never leave the
source: not in a response, not in any file of the new town or the owner objects, not in a log
line. Env var values may reach the new town only when the caller may see them on the source.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.git_token_stub import GitTokenStub
from tests.server import RunningServer, object_file, object_files, start_server
from tests.trpc import mutate, query

RIGS = (
    ("web", "https://github.com/acme/web.git"),
    ("api", "ssh://git@github.com/acme/api.git"),
    ("infra", "https://gitlab.com/acme/infra.git"),
)
GITHUB_REPOS = {"acme/web", "acme/api"}


def _canary(kind: str) -> str:
    return f"CANARY{kind}{uuid.uuid4().hex}"


@dataclass
class Source:
    town_id: str
    rig_ids: dict[str, str]  # name -> id
    env: dict[str, str]
    tokens: list[str]  # kilocode_token, github_cli_pat, git_auth tokens: never copied anywhere


def read_kv(path: Path, key: str) -> Any:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT value FROM _kv WHERE key = ?", (key,)).fetchone()
    finally:
        conn.close()
    return None if row is None else json.loads(row[0])


def town_db(server: RunningServer, town_id: str) -> Path:
    return object_file(server, "TownDO", town_id)


def town_ids_on_disk(server: RunningServer) -> set[str]:
    return {p.stem for p in object_files(server, "TownDO")}


def town_config(server: RunningServer, town_id: str) -> dict[str, Any]:
    cfg = read_kv(town_db(server, town_id), "town:config")
    assert isinstance(cfg, dict)
    return cfg


def jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def make_source(
    server: RunningServer, client: httpx.Client, create: str, create_input: dict[str, Any]
) -> Source:
    town_id = mutate(client, create, create_input)["id"]
    rig_ids = {
        name: mutate(client, "createRig", {"townId": town_id, "name": name, "gitUrl": url})["id"]
        for name, url in RIGS
    }
    bead = mutate(client, "createBead", {"rigId": rig_ids["web"], "title": "done"})["bead_id"]
    mutate(client, "updateBead", {"rigId": rig_ids["web"], "beadId": bead, "status": "closed"})
    env = {"API_KEY": _canary("env"), "DB_PASSWORD": _canary("env")}
    pat, github, gitlab = _canary("pat"), _canary("github"), _canary("gitlab")
    config = {
        "env_vars": env,
        "github_cli_pat": pat,
        "git_auth": {
            "github_token": github,
            "gitlab_token": gitlab,
            "gitlab_instance_url": "https://gitlab.example",
        },
        "git_author_name": "Source Author",
    }
    mutate(client, "updateTownConfig", {"townId": town_id, "config": config})
    stored = town_config(server, town_id)
    # The update input takes git_auth tokens: they are stored, so they are real canaries.
    assert (
        stored["git_auth"]["github_token"],
        stored["git_auth"]["gitlab_token"],
        stored["github_cli_pat"],
    ) == (github, gitlab, pat)
    kilocode = stored["kilocode_token"]
    # A kilocode_token minted in the same second for the same user is byte-identical (no jti);
    # wait for the next second so the fork's fresh token cannot coincide with the canary.
    while int(time.time()) <= jwt_claims(kilocode)["iat"]:
        time.sleep(0.05)
    return Source(town_id, rig_ids, env, [kilocode, pat, github, gitlab])


def new_town_files(server: RunningServer, town_id: str) -> list[Path]:
    """Every file the fork wrote: the new town and its container, and all owner objects (with
    their WAL companions), wherever the server's backend keeps them."""
    databases = [object_file(server, "TownDO", town_id), object_file(server, "TownContainerDO", town_id)]
    databases += object_files(server, "GastownUserDO") + object_files(server, "GastownOrgDO")
    paths = [companion for db in databases for companion in db.parent.glob(f"{db.name}*")]
    assert any(p.name == f"{town_id}.sqlite3" for p in paths)
    return paths


def assert_absent(values: list[str], **blobs: bytes) -> None:
    for where, blob in blobs.items():
        for value in values:
            assert value.encode() not in blob, f"a secret canary leaked into {where}"


def assert_absent_from_files(values: list[str], paths: list[Path]) -> None:
    assert_absent(values, **{str(p): p.read_bytes() for p in paths if p.exists()})


def warning(result: dict[str, Any], code: str) -> dict[str, Any] | None:
    found = [w for w in result["warnings"] if w["code"] == code]
    assert len(found) <= 1
    return found[0] if found else None


def fork_raw(client: httpx.Client, path: str, body: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    response = client.post(f"/trpc/gastown.{path}", json=body)
    assert response.status_code == 200, response.text
    return response.json()["result"]["data"], response.content


# ---------------------------------------------------------------------------------------------
# Env vars and tokens on the session server (no git-token provider configured)
# ---------------------------------------------------------------------------------------------

ORG = str(uuid.uuid4())


class World:
    def __init__(self, server: RunningServer) -> None:
        self.server = server
        ids = {n: f"{n}-{uuid.uuid4().hex[:8]}" for n in ("alice", "mike", "mary", "olga")}
        self.ids = ids
        self.alice = server.client(server.token(ids["alice"]))
        self.mike = server.client(server.token(ids["mike"], orgs={ORG: "member"}))  # creator of the org town
        self.mary = server.client(server.token(ids["mary"], orgs={ORG: "member"}))  # plain member
        self.olga = server.client(server.token(ids["olga"], orgs={ORG: "owner"}))
        self.personal = make_source(server, self.alice, "createTown", {"name": "Secret personal"})
        self.org = make_source(
            server, self.mike, "createOrgTown", {"organizationId": ORG, "name": "Secret org"}
        )

    @property
    def all_canaries(self) -> list[str]:
        return [*self.personal.tokens, *self.personal.env.values(), *self.org.tokens, *self.org.env.values()]


@pytest.fixture(scope="module")
def world(server: RunningServer) -> World:
    return World(server)


def test_owner_fork_copies_env_vars_and_no_token(world: World) -> None:
    src = world.personal
    result, raw = fork_raw(
        world.alice, "forkTown", {"sourceTownId": src.town_id, "newTownName": "copy with env"}
    )
    new_id = result["town"]["id"]
    copied = warning(result, "ENV_VARS_COPIED")
    assert copied is not None and copied["keys"] == sorted(src.env)
    assert warning(result, "ENV_VARS_NOT_COPIED") is None
    secrets_warning = warning(result, "SECRETS_NOT_COPIED")
    assert secrets_warning is not None and "github_cli_pat" in secrets_warning["keys"]
    # A result names env var keys, never values: not even a caller who may copy them sees them.
    assert_absent([*src.tokens, *src.env.values()], response=raw)
    assert_absent_from_files(src.tokens, new_town_files(world.server, new_id))

    cfg = town_config(world.server, new_id)
    assert cfg["env_vars"] == src.env
    assert "github_cli_pat" not in cfg
    assert set(cfg["git_auth"]) <= {"gitlab_instance_url"}, "no git token without a provider"
    assert cfg["git_auth"].get("gitlab_instance_url") == "https://gitlab.example"
    assert cfg["git_author_name"] == "Source Author"
    claims = jwt_claims(cfg["kilocode_token"])
    assert claims["kiloUserId"] == world.ids["alice"]
    assert claims["exp"] - claims["iat"] == 30 * 24 * 3600
    # The owner sees the copied values unmasked on the new town, as on the source.
    assert query(world.alice, "getTownConfig", {"townId": new_id})["env_vars"] == src.env


def test_owner_fork_without_env_vars_copies_none_and_lists_keys(world: World) -> None:
    src = world.personal
    body = {
        "sourceTownId": src.town_id,
        "newTownName": "no env",
        "includeEnvVars": False,
        "includeGitAuthor": False,
    }
    result, raw = fork_raw(world.alice, "forkTown", body)
    new_id = result["town"]["id"]
    not_copied = warning(result, "ENV_VARS_NOT_COPIED")
    assert not_copied is not None and not_copied["keys"] == sorted(src.env)
    assert warning(result, "ENV_VARS_COPIED") is None
    secret_values = [*src.tokens, *src.env.values()]
    assert_absent(secret_values, response=raw)
    assert_absent_from_files(secret_values, new_town_files(world.server, new_id))
    cfg = town_config(world.server, new_id)
    assert cfg["env_vars"] == {}
    assert "git_author_name" not in cfg


@pytest.mark.parametrize("target", ["personal", "org"])
def test_plain_org_member_never_gets_env_vars_even_when_asking(world: World, target: str) -> None:
    src = world.org
    # On the source itself mary only sees masked values.
    assert all(
        v.startswith("****")
        for v in query(world.mary, "getTownConfig", {"townId": src.town_id})["env_vars"].values()
    )
    body: dict[str, Any] = {"sourceTownId": src.town_id, "newTownName": "member fork", "includeEnvVars": True}
    path = "forkTown"
    if target == "org":
        body["organizationId"] = ORG
        path = "forkOrgTown"
    result, raw = fork_raw(world.mary, path, body)
    new_id = result["town"]["id"]
    not_copied = warning(result, "ENV_VARS_NOT_COPIED")
    assert not_copied is not None and not_copied["keys"] == sorted(src.env)
    assert warning(result, "ENV_VARS_COPIED") is None
    secret_values = [*src.tokens, *src.env.values()]
    assert_absent(secret_values, response=raw)
    assert_absent_from_files(secret_values, new_town_files(world.server, new_id))
    assert town_config(world.server, new_id)["env_vars"] == {}
    # mary administers the new town, but there is nothing of the source's to unmask.
    if target == "personal":
        assert query(world.mary, "getTownConfig", {"townId": new_id})["env_vars"] == {}


@pytest.mark.parametrize("who", ["olga", "mike"])
def test_org_owner_and_town_creator_may_copy_env_vars(world: World, who: str) -> None:
    src = world.org
    client = world.olga if who == "olga" else world.mike
    result, raw = fork_raw(client, "forkTown", {"sourceTownId": src.town_id, "newTownName": f"{who} fork"})
    copied = warning(result, "ENV_VARS_COPIED")
    assert copied is not None and copied["keys"] == sorted(src.env)
    assert town_config(world.server, result["town"]["id"])["env_vars"] == src.env
    # A result names env var keys, never values: not even a caller who may copy them sees them.
    assert_absent([*src.tokens, *src.env.values()], response=raw)
    assert_absent_from_files(src.tokens, new_town_files(world.server, result["town"]["id"]))


def test_fork_gets_a_kilocode_token_of_its_own_even_within_the_same_second(world: World) -> None:
    for _ in range(3):
        time.sleep(1 - time.time() % 1 + 0.01)  # start just after a second boundary
        source = mutate(world.alice, "createTown", {"name": "same second"})["id"]
        new_id = mutate(world.alice, "forkTown", {"sourceTownId": source, "newTownName": "twin"})["town"][
            "id"
        ]
        fresh = town_config(world.server, new_id)["kilocode_token"]
        assert fresh != town_config(world.server, source)["kilocode_token"]


def test_dry_run_and_json_rpc_responses_carry_no_secret(world: World) -> None:
    for client, src in ((world.alice, world.personal), (world.mary, world.org)):
        values = [*src.tokens, *src.env.values()]
        dry, raw = fork_raw(
            client, "forkTown", {"sourceTownId": src.town_id, "newTownName": "dry", "dryRun": True}
        )
        assert dry["town"] is None
        assert_absent(values, dry_run=raw)
        rpc = client.post(
            "/rpc",
            json={
                "jsonrpc": "2.0",
                "id": 7,
                "method": "gastown.forkTown",
                "params": {"sourceTownId": src.town_id, "newTownName": "rpc"},
            },
        )
        assert "result" in rpc.json(), rpc.text
        assert_absent(values, json_rpc=rpc.content)


def test_server_log_holds_no_secret(world: World) -> None:
    fork_raw(world.alice, "forkTown", {"sourceTownId": world.personal.town_id, "newTownName": "for the log"})
    assert_absent(world.all_canaries, server_log=world.server.log_text().encode())


def test_without_a_provider_every_rig_lacks_git_credentials(world: World) -> None:
    result, _ = fork_raw(
        world.alice, "forkTown", {"sourceTownId": world.personal.town_id, "newTownName": "no creds"}
    )
    missing = warning(result, "GIT_CREDENTIALS_MISSING")
    assert missing is not None
    assert sorted(missing["rigIds"]) == sorted(r["id"] for r in result["rigs"])
    assert len(missing["rigIds"]) == len(RIGS)


# ---------------------------------------------------------------------------------------------
# Git credentials through a real provider stub, with the server logging at debug level
# ---------------------------------------------------------------------------------------------

CRED_ORG = str(uuid.uuid4())


@dataclass
class CredWorld:
    server: RunningServer
    stub: GitTokenStub
    alice: httpx.Client
    mary: httpx.Client
    source: Source
    org_source: Source


@pytest.fixture(scope="module")
def start_cred_server() -> Callable[[Path, dict[str, str]], RunningServer]:
    """How the credential tests start their own server (tests/ray overrides it)."""
    return lambda data, env: start_server(data, extra_env=env)


@pytest.fixture(scope="module")
def cred(
    tmp_path_factory: pytest.TempPathFactory, start_cred_server: Callable[[Path, dict[str, str]], RunningServer]
) -> Iterator[CredWorld]:
    stub = GitTokenStub().start()
    root = tmp_path_factory.mktemp("fork-creds")
    server = start_cred_server(root / "data", {"GASTOWN_GIT_TOKEN_SERVICE_URL": stub.url, "GASTOWN_LOG_LEVEL": "debug"})
    try:
        alice = server.client(server.token("alice"))
        mary = server.client(server.token("mary", orgs={CRED_ORG: "member"}))
        mike = server.client(server.token("mike", orgs={CRED_ORG: "owner"}))
        source = make_source(server, alice, "createTown", {"name": "cred source"})
        org_source = make_source(
            server, mike, "createOrgTown", {"organizationId": CRED_ORG, "name": "cred org"}
        )
        yield CredWorld(server, stub, alice, mary, source, org_source)
    finally:
        server.stop()
        stub.stop()


def _fork_with_stub(
    cred: CredWorld, client: httpx.Client, path: str, body: dict[str, Any]
) -> tuple[dict[str, Any], bytes, list[dict[str, Any]]]:
    before = len(cred.stub.requests)
    result, raw = fork_raw(client, path, body)
    return result, raw, cred.stub.bodies()[before:]


def test_provider_is_asked_once_per_github_rig_and_its_token_is_stored_not_returned(cred: CredWorld) -> None:
    cred.stub.mode = "ok"
    issued_before = len(cred.stub.issued)
    result, raw, requests = _fork_with_stub(
        cred, cred.alice, "forkTown", {"sourceTownId": cred.source.town_id, "newTownName": "with creds"}
    )
    assert sorted(r["githubRepo"] for r in requests) == sorted(GITHUB_REPOS)
    assert all(r["userId"] == "alice" and r["orgId"] is None for r in requests)
    assert all(set(r) == {"githubRepo", "userId", "orgId"} for r in requests)
    issued = cred.stub.issued[issued_before:]
    assert len(issued) == 2

    new_id = result["town"]["id"]
    cfg = town_config(cred.server, new_id)
    assert cfg["git_auth"]["github_token"] in issued
    assert cfg["git_auth"]["github_token"] != cred.source.tokens[2]
    assert cfg["git_auth"].get("platform_integration_id") == "4242"
    assert "gitlab_token" not in cfg["git_auth"]
    by_name = {r["name"]: r["id"] for r in result["rigs"]}
    bound = {r["name"]: r["platform_integration_id"] for r in result["rigs"]}
    assert bound == {"web": "4242", "api": "4242", "infra": None}
    missing = warning(result, "GIT_CREDENTIALS_MISSING")
    assert missing is not None and missing["rigIds"] == [by_name["infra"]], (
        "only the gitlab rig lacks credentials"
    )
    for name in ("web", "api"):
        rig_cfg = read_kv(town_db(cred.server, new_id), f"rig:{by_name[name]}:config")
        assert (rig_cfg["userId"], rig_cfg["platformIntegrationId"], rig_cfg["townId"]) == (
            "alice",
            "4242",
            new_id,
        )
    assert_absent(issued + cred.source.tokens, response=raw)


def test_provider_gets_org_and_caller_for_an_org_fork(cred: CredWorld) -> None:
    cred.stub.mode = "ok"
    body = {"sourceTownId": cred.org_source.town_id, "newTownName": "org creds", "organizationId": CRED_ORG}
    result, raw, requests = _fork_with_stub(cred, cred.mary, "forkOrgTown", body)
    assert len(requests) == 2
    assert all(r["userId"] == "mary" and r["orgId"] == CRED_ORG for r in requests)
    assert town_config(cred.server, result["town"]["id"])["git_auth"]["github_token"] in cred.stub.issued
    assert_absent(cred.stub.issued, response=raw)


def test_hanging_provider_holds_no_lock_and_the_fork_stays_invisible_until_done(cred: CredWorld) -> None:
    cred.stub.mode = "hang"
    before = {t["id"] for t in query(cred.alice, "listTowns")}
    files_before = town_ids_on_disk(cred.server)
    asked = len(cred.stub.requests)
    body = {"sourceTownId": cred.source.town_id, "newTownName": "slow creds"}
    token = cred.server.token("alice")
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(lambda: fork_raw(cred.server.client(token), "forkTown", body)[0])
        deadline = time.monotonic() + 10
        while len(cred.stub.requests) < asked + 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(cred.stub.requests) == asked + 2, "the provider was not asked"
        # The fork waits on the network before it writes anything (credentials come first, so
        # the new town's file is then written whole): no new town on disk yet, nobody can see
        # one, and the source keeps taking writes (no transaction is held across the call).
        # (If the source were locked, this write would wait for the hanging provider and the
        # client's timeout would fail the test.)
        rig = cred.source.rig_ids["web"]
        mutate(cred.alice, "createBead", {"rigId": rig, "title": "written during a fork"})
        assert {t["id"] for t in query(cred.alice, "listTowns")} == before
        assert town_ids_on_disk(cred.server) == files_before
        cred.stub.mode = "ok"
        result = pending.result(timeout=30)
    new_town = result["town"]["id"]
    assert new_town not in before
    assert town_ids_on_disk(cred.server) - files_before == {new_town}
    assert {t["id"] for t in query(cred.alice, "listTowns")} == before | {new_town}
    # The bead written while the fork waited is open, so it is not copied.
    assert result["copied"]["beads"] == 1


@pytest.mark.parametrize("mode", ["error", "garbage", "hang"])
def test_failing_provider_does_not_fail_the_fork(cred: CredWorld, mode: str) -> None:
    cred.stub.mode = mode  # type: ignore[assignment]
    stale = cred.stub.hanging_now  # requests an earlier test left hanging (the stub holds them 60 s)
    cred.stub.most_hanging = stale
    try:
        result, _, requests = _fork_with_stub(
            cred,
            cred.alice,
            "forkTown",
            {"sourceTownId": cred.source.town_id, "newTownName": f"{mode} creds"},
        )
    finally:
        cred.stub.mode = "ok"
    assert len(requests) == 2
    missing = warning(result, "GIT_CREDENTIALS_MISSING")
    assert missing is not None
    assert sorted(missing["rigIds"]) == sorted(r["id"] for r in result["rigs"])
    cfg = town_config(cred.server, result["town"]["id"])
    assert "github_token" not in cfg["git_auth"]
    assert result["town"]["id"] in {t["id"] for t in query(cred.alice, "listTowns")}
    if mode == "hang":
        assert cred.stub.most_hanging >= stale + 2, "the two rigs' provider calls are made in parallel"


def test_debug_log_holds_no_token_or_secret(cred: CredWorld) -> None:
    cred.stub.mode = "ok"
    fork_raw(cred.alice, "forkTown", {"sourceTownId": cred.source.town_id, "newTownName": "log check"})
    fork_raw(
        cred.mary,
        "forkTown",
        {"sourceTownId": cred.org_source.town_id, "newTownName": "log check", "dryRun": True},
    )
    log = cred.server.log_text()
    assert " DEBUG " in log, "the server did not log at debug level"
    assert cred.stub.issued
    values = [
        *cred.stub.issued,
        *cred.source.tokens,
        *cred.source.env.values(),
        *cred.org_source.tokens,
        *cred.org_source.env.values(),
    ]
    assert_absent(values, debug_log=log.encode())
