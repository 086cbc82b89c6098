"""The full access matrix: every procedure of the table × every kind of caller → the code.

The expectations are written out here from rpc.md §3 (and upstream's rules for the procedures
beyond the core, as tests/e2e/test_access_surface.py explains), not read from the server's
table; `declared_rule_agrees` checks the two separately. The world is tests/surface_world.py's
(a personal town of alice's and an org town created by mike, with agents and convoys).

Each caller kind acts on "its" town: the personal owner, the stranger, the admin and the token
rows on alice's personal town; the org roles on the org town. Procedures that are about an org
(`createOrgRig`, `listOrgRigs`, `deleteOrgTown`, `forkOrgTown`'s target) use the org town and
the org for every caller.

`python -m tests.access_matrix` builds a world, runs the matrix and prints the table.
"""

from __future__ import annotations

import base64
import contextlib
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import httpx

from rpc.auth import mint_token
from tests.surface_world import SurfaceWorld, build_world
from tests.trpc import mutate

Level = Literal[
    "caller", "own-fork", "read", "write", "configure", "delete", "org-read", "org-write", "fork", "fork-org", "admin"
]
Kind = Literal["query", "mutation", "subscription"]

# caller kind -> (user of surface_world, the town it acts on)
PEOPLE: dict[str, tuple[str, str]] = {
    "personal owner": ("alice", "personal"),
    "org owner": ("olga", "org"),
    "org member": ("mary", "org"),
    "town creator": ("mike", "org"),  # an org member who created the org town
    "billing_manager": ("bill", "org"),
    "admin": ("root", "personal"),
    "stranger": ("sam", "personal"),
}
TOKEN_ROWS = ("no token", "expired token", "other secret", "alg none", "gastownAccess false")
CALLER_KINDS = (*PEOPLE, *TOKEN_ROWS)
WASTELAND_ID = "7d0c3a4e-2f6b-4b8e-9a51-0c1d2e3f4a5b"
OTHER_SECRET = "another-secret-that-is-32-bytes-long!!"

READERS = {"personal": {"alice"}, "org": {"olga", "mike", "mary"}}
CONFIGURERS = {"personal": {"alice"}, "org": {"olga", "mike"}}
DELETERS = {"personal": {"alice"}, "org": {"olga"}}
ORG_MEMBERS = {"olga", "mike", "mary"}  # owner or member: bill is a billing manager


def expected_code(level: Level, user: str, town: str, runtime: bool = False) -> str:
    """rpc.md §3 for one caller on one town (the caller has a valid token with access)."""
    if level == "caller":
        return "OK"
    if level == "own-fork":  # fork statuses are keyed by the caller: alice's key is alice's only
        return "OK" if user == "alice" else "NOT_FOUND"
    if level == "admin":
        ok = user == "root"
        return ("PRECONDITION_FAILED" if runtime else "OK") if ok else "FORBIDDEN"
    if level == "org-read":
        return "OK" if user in ORG_MEMBERS or user == "root" else "FORBIDDEN"
    if level == "org-write":
        return "OK" if user in ORG_MEMBERS else "FORBIDDEN"
    if user == "root":  # admins read every town and change none
        return ("PRECONDITION_FAILED" if runtime else "OK") if level == "read" else "FORBIDDEN"
    if user not in READERS[town]:
        return "NOT_FOUND"  # existence is not revealed
    if level == "fork-org" and user not in ORG_MEMBERS:
        return "FORBIDDEN"
    if level == "configure" and user not in CONFIGURERS[town]:
        return "FORBIDDEN"
    if level == "delete" and user not in DELETERS[town]:
        return "FORBIDDEN"
    return "PRECONDITION_FAILED" if runtime else "OK"


def expected_token_code(row: str) -> str:
    return "FORBIDDEN" if row == "gastownAccess false" else "UNAUTHORIZED"


# -- inputs -----------------------------------------------------------------------------------


@dataclass
class Pools:
    """Rows of one town that allowed calls consume (each allowed call takes its own)."""

    agent: tuple[str, str]  # (agent id, rig id): read and reset, never deleted
    spare_agents: list[tuple[str, str]]  # each allowed deleteAgent takes one
    convoy: str  # read, and the convoy beads are added to and removed from
    convoy_to_close: str  # closing a landed convoy again answers its detail
    staged_convoys: list[str]  # each allowed startConvoy takes one
    spent: list[Any] = field(default_factory=list)


@dataclass
class Cell:
    world: SurfaceWorld
    town_key: str
    user: str | None
    pools: Pools
    fork_key: str
    expected: str
    notes: dict[Any, Any] = field(default_factory=dict)

    @property
    def allowed(self) -> bool:
        return self.expected in ("OK", "PRECONDITION_FAILED")

    @property
    def tid(self) -> str:
        return self.world.towns[self.town_key].id

    @property
    def rig(self) -> str:
        return self.world.towns[self.town_key].rig

    @property
    def org(self) -> str:
        return self.world.org_id

    def rig_input(self, **extra: Any) -> dict[str, Any]:
        return {"rigId": self.rig, "townId": self.tid, **extra}

    def owner(self) -> httpx.Client:
        return self.world.owner_of(self.town_key)

    def fresh_bead(self, held: bool = False) -> str:
        bead = mutate(self.owner(), "createBead", {"rigId": self.rig, "title": "matrix", "startImmediately": not held})
        return str(bead["bead_id"])

    def fresh_rig(self) -> str:
        rig = mutate(self.owner(), "createRig", {"townId": self.tid, "name": _name("rig"), "gitUrl": "https://github.com/acme/x.git"})
        return str(rig["id"])

    def fresh_town(self) -> str:
        if self.town_key == "personal":
            return str(mutate(self.owner(), "createTown", {"name": _name("town")})["id"])
        return str(mutate(self.owner(), "createOrgTown", {"organizationId": self.org, "name": _name("town")})["id"])

    def take(self, pool: list[Any]) -> Any:
        """An allowed call consumes a row of the pool; a refused one aims at the next one."""
        if self.allowed:
            self.pools.spent.append(pool.pop())
            return self.pools.spent[-1]
        return pool[-1] if pool else self.pools.spent[-1]


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


Make = Callable[[Cell], Any]


def _town(c: Cell) -> dict[str, Any]:
    return {"townId": c.tid}


def _convoy_bead(c: Cell) -> dict[str, Any]:
    # convoyAddBead runs before convoyRemoveBead: the same caller removes the bead it added.
    key = ("convoy-bead", c.town_key, c.user)
    if key not in c.notes:
        c.notes[key] = c.fresh_bead()
    bead = c.notes[key]
    return {"townId": c.tid, "convoyId": c.pools.convoy, "beadId": bead}


def _agent(c: Cell) -> dict[str, Any]:
    agent, rig = c.pools.agent
    return {"rigId": rig, "agentId": agent, "townId": c.tid}


def _delete_agent(c: Cell) -> dict[str, Any]:
    agent, rig = c.take(c.pools.spare_agents)
    return {"rigId": rig, "agentId": agent, "townId": c.tid}


@dataclass(frozen=True)
class Spec:
    name: str
    kind: Kind
    level: Level
    make: Make
    runtime: bool = False  # needs the agent runtime: PRECONDITION_FAILED once access passes
    org_town: bool = False  # about the org (and its town) whoever calls


Q: Kind = "query"
M: Kind = "mutation"
S: Kind = "subscription"
SPECS: list[Spec] = [
    # towns and org towns
    Spec("createTown", M, "caller", lambda c: {"name": _name("town")}),
    Spec("listTowns", Q, "caller", lambda c: None),
    Spec("getTown", Q, "read", _town),
    Spec("deleteTown", M, "delete", lambda c: {"townId": c.fresh_town()}),
    Spec("createOrgTown", M, "org-write", lambda c: {"organizationId": c.org, "name": _name("town")}),
    Spec("listOrgTowns", Q, "org-read", lambda c: {"organizationId": c.org}),
    Spec("deleteOrgTown", M, "delete", lambda c: {"organizationId": c.org, "townId": c.fresh_town()}, org_town=True),
    Spec("getTownConfig", Q, "read", _town),
    Spec("updateTownConfig", M, "configure", lambda c: {"townId": c.tid, "config": {"max_polecats_per_rig": 3}}),
    Spec("listForks", Q, "read", _town),
    # rigs
    Spec("createRig", M, "write", lambda c: {"townId": c.tid, "name": _name("rig"), "gitUrl": "https://github.com/acme/x.git"}),
    Spec(
        "createOrgRig",
        M,
        "write",
        lambda c: {"organizationId": c.org, "townId": c.tid, "name": _name("rig"), "gitUrl": "https://github.com/acme/x.git"},
        org_town=True,
    ),
    Spec("listRigs", Q, "read", _town),
    Spec("listOrgRigs", Q, "read", lambda c: {"organizationId": c.org, "townId": c.tid}, org_town=True),
    Spec("getRig", Q, "read", lambda c: c.rig_input()),
    Spec("updateRigConfig", M, "configure", lambda c: c.rig_input(config={})),
    Spec("deleteRig", M, "delete", lambda c: {"rigId": c.fresh_rig(), "townId": c.tid}),
    # beads and events
    Spec("createBead", M, "write", lambda c: c.rig_input(title="matrix bead")),
    Spec("updateBead", M, "write", lambda c: c.rig_input(beadId=c.fresh_bead(), title="renamed")),
    Spec("deleteBead", M, "write", lambda c: c.rig_input(beadId=c.fresh_bead())),
    Spec("listBeads", Q, "read", lambda c: c.rig_input(limit=5)),
    Spec("getBeadEvents", Q, "read", lambda c: c.rig_input(limit=5)),
    Spec("getTownEvents", Q, "read", lambda c: {"townId": c.tid, "limit": 5}),
    Spec("startBead", M, "write", lambda c: c.rig_input(beadId=c.fresh_bead(held=True))),
    # convoy beads have no rig: an allowed call deletes nothing
    Spec("deleteBeadsByStatus", M, "write", lambda c: c.rig_input(status="open", type="convoy")),
    Spec("watchTownEvents", S, "read", _town),
    # convoys
    Spec("listConvoys", Q, "read", _town),
    Spec("getConvoy", Q, "read", lambda c: {"townId": c.tid, "convoyId": c.pools.convoy}),
    Spec("closeConvoy", M, "write", lambda c: {"townId": c.tid, "convoyId": c.pools.convoy_to_close}),
    Spec("startConvoy", M, "write", lambda c: {"townId": c.tid, "convoyId": c.take(c.pools.staged_convoys)}),
    Spec("convoyAddBead", M, "write", _convoy_bead),
    Spec("convoyRemoveBead", M, "write", _convoy_bead),
    # agents
    Spec("listAgents", Q, "read", lambda c: c.rig_input()),
    Spec("deleteAgent", M, "write", _delete_agent),
    Spec("resetAgentDispatchAttempts", M, "write", _agent),
    # status
    Spec("getDrainStatus", Q, "read", _town),
    Spec("checkAdminAccess", Q, "read", _town),
    Spec("getMayorStatus", Q, "read", _town),
    Spec("getAlarmStatus", Q, "read", _town),
    Spec("getBillingStatus", Q, "read", _town),
    Spec("setContainerRunPolicy", M, "configure", lambda c: {"townId": c.tid, "policy": "automatic"}),
    Spec("getMergeQueueData", Q, "read", lambda c: {"townId": c.tid, "rigId": c.rig, "limit": 5}),
    Spec("refreshContainerToken", M, "write", _town),
    # wasteland
    Spec("getTownWastelandConnection", Q, "read", _town),
    Spec(
        "connectTownToWasteland",
        M,
        "write",
        lambda c: {"townId": c.tid, "wastelandId": WASTELAND_ID, "upstream": "acme/wl", "rigHandle": "h", "dolthubOrg": "acme"},
    ),
    Spec("disconnectTownFromWasteland", M, "write", lambda c: {"townId": c.tid, "wastelandId": WASTELAND_ID}),
    # the agent runtime (upstream's verifyTownOwnership: any reader for the mayor and the PTYs)
    Spec("sling", M, "write", lambda c: c.rig_input(title="slung"), runtime=True),
    Spec("sendMessage", M, "read", lambda c: {"townId": c.tid, "message": "hello mayor"}, runtime=True),
    Spec("ensureMayor", M, "read", _town, runtime=True),
    Spec("getAgentStreamUrl", Q, "read", lambda c: {"townId": c.tid, "agentId": c.pools.agent[0]}, runtime=True),
    Spec("createPtySession", M, "read", lambda c: {"townId": c.tid, "agentId": c.pools.agent[0]}, runtime=True),
    Spec(
        "resizePtySession",
        M,
        "read",
        lambda c: {"townId": c.tid, "agentId": c.pools.agent[0], "ptyId": "pty_1", "cols": 80, "rows": 24},
        runtime=True,
    ),
    Spec("forceRestartContainer", M, "configure", _town, runtime=True),
    Spec("destroyContainer", M, "configure", _town, runtime=True),
    Spec("enrichBead", M, "read", lambda c: {"townId": c.tid, "body": "Add a rate limiter"}),
    # admin tools
    Spec("adminForceRestartContainer", M, "admin", _town, runtime=True),
    Spec("adminListBeads", Q, "admin", lambda c: {"townId": c.tid, "limit": 5}),
    Spec("adminListAgents", Q, "admin", _town),
    Spec("adminForceResetAgent", M, "admin", lambda c: {"townId": c.tid, "agentId": c.pools.agent[0]}),
    Spec("adminForceCloseBead", M, "admin", lambda c: {"townId": c.tid, "beadId": c.fresh_bead()}),
    Spec("adminForceFailBead", M, "admin", lambda c: {"townId": c.tid, "beadId": c.fresh_bead()}),
    Spec("adminGetAlarmStatus", Q, "admin", _town),
    Spec("adminGetTownEvents", Q, "admin", lambda c: {"townId": c.tid, "limit": 5}),
    Spec("adminGetBead", Q, "admin", lambda c: {"townId": c.tid, "beadId": c.fresh_bead()}),
    Spec("adminBulkDeleteBeads", M, "admin", lambda c: {"townId": c.tid, "beadIds": [c.fresh_bead()]}),
    Spec("adminDeleteBeadsByStatus", M, "admin", lambda c: {"townId": c.tid, "status": "failed", "type": "molecule"}),
    Spec("debugAgentMetadata", Q, "admin", _town),
    # forks (dry runs: the source must be readable by a non-admin; an org target needs a role)
    Spec("forkTown", M, "fork", lambda c: {"sourceTownId": c.tid, "newTownName": _name("fork"), "dryRun": True}),
    Spec(
        "forkOrgTown",
        M,
        "fork-org",
        lambda c: {"sourceTownId": c.tid, "newTownName": _name("fork"), "dryRun": True, "organizationId": c.org},
    ),
    Spec("getForkStatus", Q, "own-fork", lambda c: {"idempotencyKey": c.fork_key}),
    Spec("forkProgress", S, "own-fork", lambda c: {"idempotencyKey": c.fork_key, "waitMs": 0}),
]
SPEC_BY_NAME = {s.name: s for s in SPECS}


def declared_rule_agrees(spec: Spec, proc: Any) -> bool:
    """The server's declared rule for a procedure says what `spec.level` says."""
    from rpc.access import AdminRule, Authenticated, OrgRule, TownRule
    from rpc.procedures.fork import ForkRule

    rule = proc.access
    match spec.level:
        case "caller" | "own-fork":
            return isinstance(rule, Authenticated)
        case "admin":
            return isinstance(rule, AdminRule)
        case "org-read" | "org-write":
            return isinstance(rule, OrgRule) and rule.level == spec.level.removeprefix("org-")
        case "fork" | "fork-org":
            return isinstance(rule, ForkRule)
        case _:
            return isinstance(rule, TownRule) and rule.level == spec.level


# -- running ----------------------------------------------------------------------------------


def alg_none_token(user: str) -> str:
    def b64(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    now = int(time.time())
    claims = {"kiloUserId": user, "gastownAccess": True, "isAdmin": True, "iat": now, "exp": now + 3600}
    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."


def token_row_tokens(world: SurfaceWorld) -> dict[str, str | None]:
    secret = world.server.secret
    return {
        "no token": None,
        "expired token": mint_token(secret, "alice", ttl_seconds=-10),
        "other secret": mint_token(OTHER_SECRET, "alice"),
        "alg none": alg_none_token("alice"),
        "gastownAccess false": world.server.token("alice", gastown_access=False),
    }


@dataclass
class Answer:
    code: str  # "OK" or the error's data.code
    status: int
    body: Any


def call(client: httpx.Client, kind: Kind, name: str, input: Any) -> Answer:
    path = f"/trpc/gastown.{name}"
    query_string = "" if input is None else "?input=" + quote(json.dumps(input))
    if kind == "subscription":
        return _first_event(client, path + query_string)
    if kind == "query":
        response = client.get(path + query_string)
    else:
        content = b"" if input is None else json.dumps(input).encode()
        response = client.post(path, content=content, headers={"content-type": "application/json"})
    body = response.json()
    code = body["error"]["data"]["code"] if "error" in body else "OK"
    return Answer(code, response.status_code, body)


def _first_event(client: httpx.Client, url: str) -> Answer:
    """The first event after `connected`: a data event is OK, a serialized-error its code."""
    with client.stream("GET", url, headers={"accept": "text/event-stream"}) as response:
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            body = json.loads(response.read())
            return Answer(body["error"]["data"]["code"], response.status_code, body)
        event, data = "message", None
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data:"):
                data = line.removeprefix("data:").strip()
            elif line == "" and data is not None:
                if event == "serialized-error":
                    body = {"error": json.loads(data)}
                    return Answer(body["error"]["data"]["code"], response.status_code, body)
                if event == "message":
                    return Answer("OK", response.status_code, {"result": {"data": json.loads(data)}})
                event, data = "message", None  # connected, ping
    raise AssertionError(f"{url}: the stream ended without an event")


@dataclass
class Matrix:
    expected: dict[tuple[str, str], str] = field(default_factory=dict)
    answers: dict[tuple[str, str], Answer] = field(default_factory=dict)

    def wrong(self) -> dict[tuple[str, str], tuple[str, str]]:
        return {
            cell: (self.answers[cell].code, want)
            for cell, want in self.expected.items()
            if self.answers[cell].code != want
        }


def pools_of(world: SurfaceWorld, key: str) -> Pools:
    agents = world.sql(
        key,
        "SELECT b.bead_id, b.rig_id FROM beads b JOIN agent_metadata m USING (bead_id)"
        " WHERE b.type = 'agent' AND b.rig_id IS NOT NULL ORDER BY b.bead_id",
    )
    convoys = world.sql(
        key,
        "SELECT b.bead_id, m.staged FROM beads b JOIN convoy_metadata m USING (bead_id)"
        " WHERE b.status NOT IN ('closed', 'failed') ORDER BY b.bead_id",
    )
    staged = [str(c) for c, s in convoys if s]
    pairs = [(str(a), str(r)) for a, r in agents]
    main = next(p for p in pairs if p[1] == world.towns[key].rig)
    return Pools(
        agent=main,
        spare_agents=[p for p in pairs if p != main],
        convoy=staged[0],
        convoy_to_close=staged[1],
        staged_convoys=staged[2:],
    )


def run_matrix(world: SurfaceWorld) -> Matrix:
    owner = world.client("alice")
    fork_key = f"matrix-{uuid.uuid4()}"
    source = world.towns["personal"].id
    mutate(owner, "forkTown", {"sourceTownId": source, "newTownName": "matrix fork", "idempotencyKey": fork_key})
    pools = {key: pools_of(world, key) for key in world.towns}
    notes: dict[Any, Any] = {}
    token_clients = {row: world.server.client(tok) for row, tok in token_row_tokens(world).items()}
    m = Matrix()
    try:
        for spec in SPECS:
            for kind in CALLER_KINDS:
                if kind in PEOPLE:
                    user, town = PEOPLE[kind]
                    client = world.client(user)
                else:
                    user, town = None, "personal"
                    client = token_clients[kind]
                if spec.org_town:
                    town = "org"
                want = (
                    expected_code(spec.level, user, town, spec.runtime)
                    if user is not None
                    else expected_token_code(kind)
                )
                cell = Cell(world, town, user, pools[town], fork_key, want, notes)
                m.expected[(spec.name, kind)] = want
                m.answers[(spec.name, kind)] = call(client, spec.kind, spec.name, spec.make(cell))
    finally:
        for client in token_clients.values():
            client.close()
    return m


# -- the table --------------------------------------------------------------------------------

SHORT = {"OK": "ok", "NOT_FOUND": "404", "FORBIDDEN": "403", "UNAUTHORIZED": "401", "PRECONDITION_FAILED": "412"}
LEVEL_TITLES: dict[tuple[Level, bool], str] = {
    ("caller", False): "any caller",
    ("read", False): "read",
    ("read", True): "read, agent runtime",
    ("write", False): "write",
    ("write", True): "write, agent runtime",
    ("configure", False): "configure",
    ("configure", True): "configure, agent runtime",
    ("delete", False): "delete",
    ("org-read", False): "org read",
    ("org-write", False): "org write",
    ("fork", False): "fork (dry run)",
    ("fork-org", False): "fork into the org (dry run)",
    ("admin", False): "admin tools",
    ("admin", True): "admin tools, agent runtime",
    ("own-fork", False): "own fork's status (alice's key)",
}


def render_table(m: Matrix) -> str:
    """One row per access level (its procedures listed) plus the token rows, as Markdown.
    Each cell is the code every procedure of the row answered (`!` marks a cell not as expected)."""
    groups: dict[tuple[Level, bool, bool], list[Spec]] = {}
    for spec in SPECS:
        groups.setdefault((spec.level, spec.runtime, spec.org_town), []).append(spec)
    wrong = m.wrong()
    lines = [
        "| access level (procedures) | " + " | ".join(PEOPLE) + " |",
        "|---|" + "---|" * len(PEOPLE),
    ]
    order = list(LEVEL_TITLES)
    for (level, runtime, org_town), specs in sorted(groups.items(), key=lambda g: (order.index(g[0][:2]), g[0][2])):
        cells = []
        for kind in PEOPLE:
            got = {m.answers[(s.name, kind)].code for s in specs}
            want = {m.expected[(s.name, kind)] for s in specs}
            mark = "" if got == want and not wrong.keys() & {(s.name, kind) for s in specs} else "!"
            cells.append("/".join(SHORT.get(c, c) for c in sorted(got)) + mark)
        title = LEVEL_TITLES[(level, runtime)] + (", org town" if org_town else "")
        names = ", ".join(s.name for s in specs)
        lines.append(f"| **{title}**: {names} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("| token (all " + str(len(SPECS)) + " procedures) | code |")
    lines.append("|---|---|")
    for row in TOKEN_ROWS:
        got = {m.answers[(s.name, row)].code for s in SPECS}
        mark = "" if got == {expected_token_code(row)} else "!"
        lines.append(f"| {row} | " + "/".join(sorted(got)) + mark + " |")
    return "\n".join(lines)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp, contextlib.contextmanager(build_world)(Path(tmp) / "data") as world:
        started = time.monotonic()
        m = run_matrix(world)
        print(render_table(m))
        print(f"\n{len(m.answers)} cells in {time.monotonic() - started:.1f}s, {len(m.wrong())} not as expected")
        for cell, (got, want) in sorted(m.wrong().items()):
            print(f"  {cell}: got {got}, expected {want}")
    return 0 if not m.wrong() else 1


if __name__ == "__main__":
    sys.exit(main())
