"""No object without a write (issue 9): reads, denied calls and probes of ids that do not
exist leave the data directory as it was, through the real server, for every kind of caller.

Each caller runs every procedure (subscriptions aside) that it may not use, or that only
reads, with inputs built from the procedure's input Struct; the files on disk (databases and
their companions) are listed before and after.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import msgspec.inspect as mi
import pytest

from rpc.procedures import all_procedures
from tests.server import RunningServer, start_server
from tests.trpc import mutate

ORG = str(uuid.uuid4())
OTHER_ORG = str(uuid.uuid4())
RIG_URL = "https://github.com/acme/web.git"
# Calls that may legitimately create an object for the caller who makes them.
CREATES = {"gastown.createTown", "gastown.createOrgTown", "gastown.forkTown", "gastown.forkOrgTown"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("no-write") / "data")
    yield running
    running.stop()


def files(data_dir: Path) -> set[str]:
    """Every file under the data dir, as the database it belongs to (a reader may add -wal /
    -shm beside a database that exists; that is not a new object)."""
    out = set()
    for p in data_dir.rglob("*"):
        if p.is_file():
            name = str(p.relative_to(data_dir))
            for suffix in ("-wal", "-shm"):
                name = name.removesuffix(suffix)
            out.add(name)
    return out


def _value(name: str, info: Any, ids: dict[str, str]) -> Any:
    if name in ids:
        return ids[name]
    if isinstance(info, mi.UUIDType):
        return str(uuid.uuid4())
    if isinstance(info, mi.StrType):
        return RIG_URL if name == "gitUrl" else "probe"
    if isinstance(info, mi.IntType):
        return 10
    if isinstance(info, mi.ListType):
        return [str(uuid.uuid4())]
    if isinstance(info, mi.LiteralType):
        return info.values[0]
    if isinstance(info, mi.UnionType):
        return str(uuid.uuid4())
    return {}


def build_input(proc: Any, ids: dict[str, str]) -> dict[str, Any] | None:
    if proc.input is None:
        return None
    fields = mi.type_info(proc.input).fields  # type: ignore[attr-defined]
    out = {f.name: _value(f.name, f.type, ids) for f in fields if f.required or f.name in ids}
    return out or None


def call(client: httpx.Client, proc: Any, input: dict[str, Any] | None) -> httpx.Response:
    url = f"/trpc/{proc.path}"
    if proc.kind == "query":
        return client.get(url + ("" if input is None else "?input=" + quote(json.dumps(input))))
    body = b"" if input is None else json.dumps(input).encode()
    return client.post(url, content=body, headers={"content-type": "application/json"})


def sweep(
    client: httpx.Client, ids: dict[str, str], *, mutations: bool, skip: set[str] = CREATES, via_rig: bool = False
) -> int:
    """Every procedure (queries; mutations too if `mutations`) with these ids: returns how many
    ran. Mutations must all be refused (the caller may not make them)."""
    ran = 0
    for proc in all_procedures():
        if proc.kind == "subscription" or proc.path in skip:
            continue
        if proc.kind == "mutation" and not mutations:
            continue
        if via_rig and getattr(proc.access, "via", None) != "rig":
            continue
        response = call(client, proc, build_input(proc, ids))
        assert response.status_code < 500, (proc.path, response.text)
        if proc.kind == "mutation":
            assert response.status_code >= 400, (proc.path, ids, response.text)
        ran += 1
    return ran


def test_denied_calls_and_read_probes_create_no_database(server: RunningServer) -> None:
    tok = server.token
    alice_id, mike_id = f"alice-{uuid.uuid4().hex[:6]}", f"mike-{uuid.uuid4().hex[:6]}"
    alice = server.client(tok(alice_id))
    mike = server.client(tok(mike_id, orgs={ORG: "member"}))
    personal = mutate(alice, "createTown", {"name": "Alice town"})["id"]
    personal_rig = mutate(alice, "createRig", {"townId": personal, "name": "web", "gitUrl": RIG_URL})["id"]
    org_town = mutate(mike, "createOrgTown", {"organizationId": ORG, "name": "Org town"})["id"]
    org_rig = mutate(mike, "createOrgRig", {"organizationId": ORG, "townId": org_town, "name": "web", "gitUrl": RIG_URL})["id"]
    mutate(alice, "createBead", {"rigId": personal_rig, "title": "work"})
    mutate(alice, "forkTown", {"sourceTownId": personal, "newTownName": "a fork", "idempotencyKey": "k1"})

    before = files(server.data_dir)
    assert any(name.startswith("GastownUserDO/") for name in before)

    # Callers who have never written anything: each of them must still have no object after.
    stranger = server.client(tok(f"sam-{uuid.uuid4().hex[:6]}", orgs={OTHER_ORG: "member"}))
    billing = server.client(tok(f"bill-{uuid.uuid4().hex[:6]}", orgs={ORG: "billing_manager"}))
    admin = server.client(tok(f"root-{uuid.uuid4().hex[:6]}", is_admin=True, orgs={OTHER_ORG: "owner"}))
    newcomer = server.client(tok(f"new-{uuid.uuid4().hex[:6]}"))
    real = [
        {"townId": personal, "rigId": personal_rig, "sourceTownId": personal},
        {"townId": org_town, "rigId": org_rig, "sourceTownId": org_town, "organizationId": ORG},
    ]
    unknown_town = {"townId": str(uuid.uuid4()), "sourceTownId": str(uuid.uuid4()), "organizationId": ORG}
    unknown_rig = {"townId": personal, "rigId": str(uuid.uuid4()), "sourceTownId": personal}
    ran = 0
    for ids in real:
        ran += sweep(stranger, ids, mutations=True, skip={"gastown.createTown", "gastown.createOrgTown"})
        ran += sweep(billing, ids, mutations=True, skip={"gastown.createTown"})
        # Admins read everything and change nothing but through the admin tools (which here
        # name beads and agents that do not exist).
        ran += sweep(admin, ids, mutations=True, skip={"gastown.createTown", "gastown.createOrgTown"}
                     | {p.path for p in all_procedures() if p.path.startswith("gastown.admin")})
        ran += sweep(newcomer, ids, mutations=False)
    for ids in (unknown_town, unknown_rig):
        # Owners probing ids that do not exist (a rig of their own town), and everyone else too.
        for client in (alice, mike):
            ran += sweep(client, ids, mutations=True, skip={"gastown.createTown", "gastown.createOrgTown"},
                         via_rig=ids is unknown_rig)
        for client in (stranger, billing, admin, newcomer):
            ran += sweep(client, ids, mutations=False)
    # Owners reading their own towns write nothing either.
    ran += sweep(alice, real[0], mutations=False)
    ran += sweep(mike, real[1], mutations=False)
    assert ran > 500

    assert files(server.data_dir) == before
    # And the server still writes: the first write of a new caller creates its object.
    mutate(newcomer, "createTown", {"name": "first"})
    assert len(files(server.data_dir) - before) >= 2  # the user object and the town (+ container)
