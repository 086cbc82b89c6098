"""Access matrix of the procedures beyond the core (rpc.md §3, §4), through the real server.

Every procedure × every caller × a personal and an org town, with the outcome its access level
gives (derived from upstream's router and rpc.md §3, written out here, not read from the
server's tables):

| level     | personal town            | org town                                  |
|-----------|--------------------------|-------------------------------------------|
| read      | alice; root              | olga, mike, mary; root                    |
| write     | alice (root FORBIDDEN)   | olga, mike, mary (root FORBIDDEN)         |
| configure | alice (root FORBIDDEN)   | olga, mike (creator); mary, root FORBIDDEN |
| admin     | root; everyone else FORBIDDEN, whatever the town                      |

Callers who may not read a town get NOT_FOUND (existence is not revealed); procedures that need
the agent runtime answer PRECONDITION_FAILED to the callers who pass access. Deliberate
differences from upstream: our writes exclude admins even where upstream's
verifyTownOwnership lets one through, and checkAdminAccess needs read access.

Calls that are refused run first, against the real targets of the allowed calls (a whole town's
open beads, a real agent, …); the town files are compared before and after them.
"""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest

from rpc.access import AdminRule, TownRule
from tests.access_matrix import CONFIGURERS, READERS, WASTELAND_ID
from tests.fork_fixtures import logical_dump
from tests.surface_world import CALLERS, TOWN_KEYS, SeededTown, SurfaceWorld, build_world, call
from tests.trpc import mutate

Level = Literal["read", "write", "configure", "admin"]
Outcome = Literal["OK", "NOT_FOUND", "FORBIDDEN", "PRECONDITION_FAILED"]

# rpc.md §2 / trpc-wire.md §6
WIRE_CODES = {
    "NOT_FOUND": (-32004, 404),
    "FORBIDDEN": (-32003, 403),
    "PRECONDITION_FAILED": (-32012, 412),
    "BAD_REQUEST": (-32600, 400),
}


def expected_outcome(level: Level, town: str, caller: str, runtime: bool) -> Outcome:
    if level == "admin":
        allowed = caller == "root"
    elif caller == "root":
        if level != "read":
            return "FORBIDDEN"
        allowed = True
    elif caller not in READERS[town]:
        return "NOT_FOUND"
    elif level == "configure" and caller not in CONFIGURERS[town]:
        return "FORBIDDEN"
    else:
        allowed = True
    if not allowed:
        return "FORBIDDEN"
    return "PRECONDITION_FAILED" if runtime else "OK"


# -- targets ----------------------------------------------------------------------------------


@dataclass
class Targets:
    """Rows of one town the calls act on, picked so that allowed calls never consume what a
    later call needs (each allowed deleteAgent / startConvoy takes its own agent / convoy)."""

    agent: tuple[str, str]  # (agent id, rig id): a polecat of the main rig
    spare_agents: list[tuple[str, str]]
    held_bead: str
    member_bead: str  # added to / removed from the member convoy
    close_bead: str
    fail_bead: str
    convoy_close: str
    convoy_members: str  # also the refused startConvoy's target (staged, never started)
    staged_pool: list[str]
    deleted_agents: list[str] = field(default_factory=list)


def discover(world: SurfaceWorld, key: str) -> Targets:
    town = world.towns[key]
    agents = world.sql(
        key,
        "SELECT b.bead_id, b.rig_id, m.role FROM beads b JOIN agent_metadata m USING (bead_id)"
        " WHERE b.type = 'agent' AND b.rig_id IS NOT NULL ORDER BY b.bead_id",
    )
    main = next((a, r) for a, r, role in agents if r == town.rig and role == "polecat")
    spares = [(a, r) for a, r, _ in agents if a != main[0]]
    owner = world.owner_of(key)

    def new_bead(title: str, held: bool) -> str:
        bead = mutate(owner, "createBead", {"rigId": town.rig, "title": title, "startImmediately": not held})
        return str(bead["bead_id"])

    convoys = [
        r[0]
        for r in world.sql(
            key,
            "SELECT b.bead_id FROM beads b JOIN convoy_metadata m USING (bead_id)"
            " WHERE b.status NOT IN ('closed', 'failed') AND m.staged = 1 ORDER BY b.bead_id",
        )
    ]
    assert len(convoys) >= 5 and len(spares) >= 3, (len(convoys), len(spares))
    return Targets(
        agent=main,
        spare_agents=spares,
        held_bead=new_bead("held until started", held=True),
        member_bead=new_bead("convoy member to be", held=False),
        close_bead=new_bead("to be force-closed", held=False),
        fail_bead=new_bead("to be force-failed", held=False),
        convoy_close=convoys[0],
        convoy_members=convoys[1],
        staged_pool=convoys[2:],
    )


@dataclass
class Cell:
    world: SurfaceWorld
    town: SeededTown
    t: Targets
    caller: str
    allowed: bool  # the call passes access (OK or PRECONDITION_FAILED expected)

    @property
    def tid(self) -> str:
        return self.town.id

    def rig_input(self, **extra: Any) -> dict[str, Any]:
        return {"rigId": self.town.rig, "townId": self.tid, **extra}


# -- the procedures ---------------------------------------------------------------------------


def _town(c: Cell) -> dict[str, Any]:
    return {"townId": c.tid}


def _delete_agent(c: Cell) -> dict[str, Any]:
    agent, rig = c.t.spare_agents.pop() if c.allowed else c.t.agent
    if c.allowed:
        c.t.deleted_agents.append(agent)
    return {"rigId": rig, "agentId": agent, "townId": c.tid}


def _start_convoy(c: Cell) -> dict[str, Any]:
    return {"townId": c.tid, "convoyId": c.t.staged_pool.pop() if c.allowed else c.t.convoy_members}


def _delete_by_status(c: Cell) -> dict[str, Any]:
    # Allowed: convoy beads have no rig, so this rig's open convoys are none. Refused: every open
    # bead of the rig (the dump comparison shows none went).
    return c.rig_input(status="open", type="convoy") if c.allowed else c.rig_input(status="open")


def _admin_delete_by_status(c: Cell) -> dict[str, Any]:
    # Allowed: the failed molecules (none of the other targets is one or descends from one).
    return (
        {"townId": c.tid, "status": "failed", "type": "molecule"}
        if c.allowed
        else {"townId": c.tid, "status": "open"}
    )


def _bulk_delete(c: Cell) -> dict[str, Any]:
    if not c.allowed:
        return {"townId": c.tid, "beadIds": [c.t.close_bead, c.t.held_bead]}
    owner = c.world.owner_of(c.town.key)
    doomed = mutate(owner, "createBead", {"rigId": c.town.rig, "title": "to be bulk deleted"})["bead_id"]
    return {"townId": c.tid, "beadIds": [doomed]}


@dataclass(frozen=True)
class Spec:
    name: str
    kind: Kind
    level: Level
    make: Callable[[Cell], dict[str, Any]]
    runtime: bool = False  # needs the agent runtime: PRECONDITION_FAILED once access passes


Kind = Literal["query", "mutation"]
Q: Kind = "query"
M: Kind = "mutation"
SPECS: list[Spec] = [
    # status reads and the two writes next to them (rpc/procedures/status.py)
    Spec("getDrainStatus", Q, "read", _town),
    Spec("checkAdminAccess", Q, "read", _town),  # upstream answers false without a check
    Spec("getMayorStatus", Q, "read", _town),
    Spec("getAlarmStatus", Q, "read", _town),
    Spec("getBillingStatus", Q, "read", _town),
    Spec("setContainerRunPolicy", M, "configure", lambda c: {"townId": c.tid, "policy": "automatic"}),
    Spec("getMergeQueueData", Q, "read", lambda c: {"townId": c.tid, "rigId": c.town.rig, "limit": 20}),
    Spec("refreshContainerToken", M, "write", _town),
    # agents (via the rig, townId as the hint the front end sends)
    Spec("listAgents", Q, "read", lambda c: c.rig_input()),
    Spec("deleteAgent", M, "write", _delete_agent),
    Spec(
        "resetAgentDispatchAttempts",
        M,
        "write",
        lambda c: {"rigId": c.t.agent[1], "agentId": c.t.agent[0], "townId": c.tid},
    ),
    # bead actions
    Spec("startBead", M, "write", lambda c: c.rig_input(beadId=c.t.held_bead)),
    Spec("deleteBeadsByStatus", M, "write", _delete_by_status),
    # convoys
    Spec("listConvoys", Q, "read", _town),
    Spec("getConvoy", Q, "read", lambda c: {"townId": c.tid, "convoyId": c.t.convoy_members}),
    Spec("closeConvoy", M, "write", lambda c: {"townId": c.tid, "convoyId": c.t.convoy_close}),
    Spec("startConvoy", M, "write", _start_convoy),
    Spec(
        "convoyAddBead",
        M,
        "write",
        lambda c: {"townId": c.tid, "convoyId": c.t.convoy_members, "beadId": c.t.member_bead},
    ),
    Spec(
        "convoyRemoveBead",
        M,
        "write",
        lambda c: {"townId": c.tid, "convoyId": c.t.convoy_members, "beadId": c.t.member_bead},
    ),
    # wasteland
    Spec("getTownWastelandConnection", Q, "read", _town),
    Spec(
        "connectTownToWasteland",
        M,
        "write",
        lambda c: {
            "townId": c.tid,
            "wastelandId": WASTELAND_ID,
            "upstream": "acme/wl",
            "rigHandle": "h",
            "dolthubOrg": "acme",
        },
    ),
    Spec("disconnectTownFromWasteland", M, "write", lambda c: {"townId": c.tid, "wastelandId": WASTELAND_ID}),
    # the agent runtime (rpc/procedures/agent_runtime.py)
    Spec("sling", M, "write", lambda c: c.rig_input(title="slung"), runtime=True),  # creates a bead: write
    # sendMessage, ensureMayor and the PTY pair follow upstream (verifyTownOwnership: any reader,
    # admins included); see the report: rpc.md's "admins read-only" would make them writes.
    Spec("sendMessage", M, "read", lambda c: {"townId": c.tid, "message": "hello mayor"}, runtime=True),
    Spec("ensureMayor", M, "read", _town, runtime=True),
    Spec("getAgentStreamUrl", Q, "read", lambda c: {"townId": c.tid, "agentId": c.t.agent[0]}, runtime=True),
    Spec("createPtySession", M, "read", lambda c: {"townId": c.tid, "agentId": c.t.agent[0]}, runtime=True),
    Spec(
        "resizePtySession",
        M,
        "read",
        lambda c: {"townId": c.tid, "agentId": c.t.agent[0], "ptyId": "pty_1", "cols": 80, "rows": 24},
        runtime=True,
    ),
    Spec("forceRestartContainer", M, "configure", _town, runtime=True),
    Spec("destroyContainer", M, "configure", _town, runtime=True),
    Spec("adminForceRestartContainer", M, "admin", _town, runtime=True),
    Spec("enrichBead", M, "read", lambda c: {"townId": c.tid, "body": "Add a rate limiter to the API"}),
    # admin tools
    Spec("adminListBeads", Q, "admin", lambda c: {"townId": c.tid, "status": "open", "limit": 10}),
    Spec("adminListAgents", Q, "admin", _town),
    Spec("adminForceResetAgent", M, "admin", lambda c: {"townId": c.tid, "agentId": c.t.agent[0]}),
    Spec("adminForceCloseBead", M, "admin", lambda c: {"townId": c.tid, "beadId": c.t.close_bead}),
    Spec("adminForceFailBead", M, "admin", lambda c: {"townId": c.tid, "beadId": c.t.fail_bead}),
    Spec("adminGetAlarmStatus", Q, "admin", _town),
    Spec("adminGetTownEvents", Q, "admin", lambda c: {"townId": c.tid, "limit": 5}),
    Spec("adminGetBead", Q, "admin", lambda c: {"townId": c.tid, "beadId": c.t.held_bead}),
    Spec("adminBulkDeleteBeads", M, "admin", _bulk_delete),
    Spec("adminDeleteBeadsByStatus", M, "admin", _admin_delete_by_status),
    Spec("debugAgentMetadata", Q, "admin", _town),
]
SPEC_BY_NAME = {s.name: s for s in SPECS}
NEW_PROCEDURE_MODULES = ("agents", "status", "convoys", "wasteland", "agent_runtime", "admin")


# -- running the matrix -----------------------------------------------------------------------


@dataclass
class Result:
    status: int
    body: Any

    @property
    def outcome(self) -> str:
        if isinstance(self.body, dict) and "error" in self.body:
            return str(self.body["error"]["data"]["code"])
        return "OK"


@dataclass
class Matrix:
    world: SurfaceWorld
    targets: dict[str, Targets]
    expected: dict[tuple[str, str, str], Outcome] = field(default_factory=dict)
    results: dict[tuple[str, str, str], Result] = field(default_factory=dict)
    dumps_before: dict[str, Any] = field(default_factory=dict)
    dumps_after_refused: dict[str, Any] = field(default_factory=dict)


def _dumps(world: SurfaceWorld) -> dict[str, Any]:
    return {key: logical_dump(town.file) for key, town in world.towns.items()}


def _run(m: Matrix, spec: Spec, key: str, caller: str) -> None:
    outcome = m.expected[(spec.name, key, caller)]
    cell = Cell(
        m.world, m.world.towns[key], m.targets[key], caller, allowed=outcome in ("OK", "PRECONDITION_FAILED")
    )
    response: httpx.Response = call(m.world.client(caller), spec.kind, spec.name, spec.make(cell))
    m.results[(spec.name, key, caller)] = Result(response.status_code, response.json())


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SurfaceWorld]:
    root: Path = tmp_path_factory.mktemp("access-surface")
    yield from build_world(root / "data")


@pytest.fixture(scope="module")
def matrix(world: SurfaceWorld) -> Matrix:
    m = Matrix(world, {key: discover(world, key) for key in TOWN_KEYS})
    cells = [(spec, key, caller) for spec in SPECS for key in TOWN_KEYS for caller in CALLERS]
    for spec, key, caller in cells:
        m.expected[(spec.name, key, caller)] = expected_outcome(spec.level, key, caller, spec.runtime)
    m.dumps_before = _dumps(world)
    for spec, key, caller in cells:  # everything that must not change data, first
        if m.expected[(spec.name, key, caller)] != "OK":
            _run(m, spec, key, caller)
    m.dumps_after_refused = _dumps(world)
    for spec, key, caller in cells:
        if m.expected[(spec.name, key, caller)] == "OK":
            _run(m, spec, key, caller)
    return m


# -- the assertions ---------------------------------------------------------------------------


def test_the_matrix_covers_every_new_procedure_with_its_declared_rule() -> None:
    declared = {}
    for module in NEW_PROCEDURE_MODULES:
        for proc in importlib.import_module(f"rpc.procedures.{module}").PROCEDURES:
            declared[proc.path.removeprefix("gastown.")] = proc
    beads = importlib.import_module("rpc.procedures.beads").PROCEDURES
    declared.update(
        {
            p.path.removeprefix("gastown."): p
            for p in beads
            if p.path in ("gastown.startBead", "gastown.deleteBeadsByStatus")
        }
    )
    assert set(declared) == set(SPEC_BY_NAME)
    for name, proc in declared.items():
        spec = SPEC_BY_NAME[name]
        assert proc.kind == spec.kind, name
        if spec.level == "admin":
            assert isinstance(proc.access, AdminRule), name
        else:
            assert isinstance(proc.access, TownRule) and proc.access.level == spec.level, (name, proc.access)


def test_matrix_size(matrix: Matrix) -> None:
    assert len(matrix.results) == len(SPECS) * len(TOWN_KEYS) * len(CALLERS) == 43 * 2 * 7
    outcomes = Counter(r.outcome for r in matrix.results.values())
    assert outcomes == {"NOT_FOUND": 248, "FORBIDDEN": 177, "OK": 135, "PRECONDITION_FAILED": 42}


@pytest.mark.parametrize("name", [s.name for s in SPECS])
def test_access(matrix: Matrix, name: str) -> None:
    wrong = {
        (key, caller): (matrix.results[(name, key, caller)].outcome, matrix.expected[(name, key, caller)])
        for key in TOWN_KEYS
        for caller in CALLERS
        if matrix.results[(name, key, caller)].outcome != matrix.expected[(name, key, caller)]
    }
    assert not wrong, f"(town, caller): (got, expected) {wrong}"


def test_every_answer_is_a_proper_envelope(matrix: Matrix) -> None:
    for (name, key, caller), result in matrix.results.items():
        where = (name, key, caller)
        body = result.body
        if result.outcome == "OK":
            assert result.status == 200 and set(body) == {"result"}, where
            continue
        assert set(body) == {"error"}, where
        error = body["error"]
        assert set(error) == {"message", "code", "data"}, where
        assert set(error["data"]) == {"code", "httpStatus", "path"}, where
        code = error["data"]["code"]
        assert code != "INTERNAL_SERVER_ERROR", (where, error)
        assert (error["code"], error["data"]["httpStatus"]) == WIRE_CODES[code], where
        assert result.status == error["data"]["httpStatus"], where
        assert error["data"]["path"] == f"gastown.{name}", where
        assert isinstance(error["message"], str) and error["message"], where
        assert "Traceback" not in error["message"], where


def test_refusals_say_why_without_revealing_the_town(matrix: Matrix) -> None:
    for (name, key, caller), result in matrix.results.items():
        message = result.body.get("error", {}).get("message", "")
        if result.outcome == "NOT_FOUND":
            assert "not found" in message, (name, key, caller, message)
            assert matrix.world.towns[key].id in message or "Rig" in message, message
        if result.outcome == "PRECONDITION_FAILED":
            assert "agent runtime is not available" in message and f"gastown.{name}" in message
        if result.outcome == "FORBIDDEN" and caller == "root" and SPEC_BY_NAME[name].level != "admin":
            assert "read-only" in message, message
        if result.outcome == "FORBIDDEN" and SPEC_BY_NAME[name].level == "admin":
            assert message == "Admin access required"


def test_refused_calls_leave_the_towns_unchanged(matrix: Matrix) -> None:
    """Every refused call (NOT_FOUND, FORBIDDEN, PRECONDITION_FAILED) ran against live targets:
    bill's and root's deleteBeadsByStatus asked for every open bead of the rig, sam's
    adminBulkDeleteBeads named real beads, mary's deleteAgent a real agent, …"""
    for key in TOWN_KEYS:
        assert matrix.dumps_after_refused[key] == matrix.dumps_before[key], key
    # the comparison sees changes: the allowed calls that ran afterwards made some
    assert all(dump != matrix.dumps_before[key] for key, dump in _dumps(matrix.world).items())


def test_allowed_calls_did_their_work(matrix: Matrix) -> None:
    r = matrix.results
    for key in TOWN_KEYS:
        for caller in sorted(READERS[key]):
            assert r[("checkAdminAccess", key, caller)].body["result"]["data"] == {
                "isAdminViewing": False,
                "ownerUserId": None,
                "ownerOrgId": None,
            }
            assert r[("enrichBead", key, caller)].body["result"]["data"] is None
            assert r[("deleteBeadsByStatus", key, caller)].body["result"]["data"] == {"deleted": 0}
            assert r[("startConvoy", key, caller)].body["result"]["data"]["staged"] is False
        admin_view = r[("checkAdminAccess", key, "root")].body["result"]["data"]
        assert admin_view["isAdminViewing"] is True
        assert r[("adminBulkDeleteBeads", key, "root")].body["result"]["data"] == {"deleted": 1}
        assert r[("adminDeleteBeadsByStatus", key, "root")].body["result"]["data"]["deleted"] > 0
        failed_molecules = "SELECT count(*) FROM beads WHERE type = 'molecule' AND status = 'failed'"
        assert matrix.world.scalar(key, failed_molecules) == 0
        assert r[("adminForceCloseBead", key, "root")].body["result"]["data"]["status"] == "closed"
        assert r[("adminForceFailBead", key, "root")].body["result"]["data"]["status"] == "failed"
        assert (
            r[("closeConvoy", key, matrix.world.towns[key].owner)].body["result"]["data"]["status"]
            == "landed"
        )
        # each allowed deleteAgent took its own agent: they are gone, the main agent is not
        targets = matrix.targets[key]
        left = {a for (a,) in matrix.world.sql(key, "SELECT bead_id FROM agent_metadata")}
        assert targets.agent[0] in left
        assert len(targets.deleted_agents) == len(READERS[key]) and not left & set(targets.deleted_agents)


def test_billing_manager_and_admin_delete_nothing_by_status(world: SurfaceWorld, matrix: Matrix) -> None:
    town = world.towns["org"]
    count = "SELECT count(*) FROM beads WHERE rig_id = ? AND status = 'open'"
    before = world.scalar("org", count, (town.rig,))
    assert before > 0
    ask = {"rigId": town.rig, "townId": town.id, "status": "open"}
    for caller, code in (
        ("bill", "NOT_FOUND"),
        ("sam", "NOT_FOUND"),
        ("alice", "NOT_FOUND"),
        ("root", "FORBIDDEN"),
    ):
        result = call(world.client(caller), "mutation", "deleteBeadsByStatus", ask)
        assert result.json()["error"]["data"]["code"] == code, caller
        assert world.scalar("org", count, (town.rig,)) == before, caller
    bulk = {"townId": town.id, "status": "open"}
    for caller in ("bill", "olga", "mike"):
        result = call(world.client(caller), "mutation", "adminDeleteBeadsByStatus", bulk)
        assert result.json()["error"]["data"]["code"] == "FORBIDDEN", caller
    assert world.scalar("org", count, (town.rig,)) == before


def test_admin_reaches_a_rig_only_with_the_town_hint(world: SurfaceWorld) -> None:
    town = world.towns["personal"]
    admin = world.client("root")
    without = call(admin, "query", "listAgents", {"rigId": town.rig})
    assert without.json()["error"]["data"]["code"] == "NOT_FOUND"
    with_hint = call(admin, "query", "listAgents", {"rigId": town.rig, "townId": town.id})
    assert with_hint.status_code == 200 and with_hint.json()["result"]["data"]
    # a hint naming another town does not open the rig either
    other = call(admin, "query", "listAgents", {"rigId": town.rig, "townId": world.towns["org"].id})
    assert other.json()["error"]["data"]["code"] == "NOT_FOUND"


def test_a_rig_through_the_wrong_town_hint_is_not_found(world: SurfaceWorld) -> None:
    org = world.towns["org"]
    for caller in ("olga", "mary"):
        wrong = call(
            world.client(caller),
            "query",
            "listAgents",
            {"rigId": org.rig, "townId": world.towns["personal"].id},
        )
        assert wrong.json()["error"]["data"]["code"] == "NOT_FOUND", caller


def test_admin_tools_on_a_town_that_does_not_exist(world: SurfaceWorld) -> None:
    ghost = {"townId": "00000000-0000-4000-8000-000000000000"}
    assert (
        call(world.client("root"), "query", "adminListAgents", ghost).json()["error"]["data"]["code"]
        == "NOT_FOUND"
    )
    # non-admins are refused before any town is looked up
    assert (
        call(world.client("alice"), "query", "adminListAgents", ghost).json()["error"]["data"]["code"]
        == "FORBIDDEN"
    )
    assert (
        call(world.client("root"), "query", "getDrainStatus", ghost).json()["error"]["data"]["code"]
        == "NOT_FOUND"
    )
