"""What the procedures beyond the core do, through the real server, on a seeded world (two
towns with the demo generator's agents, convoys and history; tests/surface_world.py), and the
same procedure table answering JSON-RPC 2.0 on POST /rpc.

Each test takes its own targets (its own convoy, agent or freshly created beads), so the tests
share one world without depending on their order.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.server import TEST_SECRET
from tests.surface_world import SurfaceWorld, build_world
from tests.trpc import error_of, mutate, query

UNKNOWN = "00000000-0000-4000-8000-00000000dead"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SurfaceWorld]:
    root: Path = tmp_path_factory.mktemp("surface-behaviour")
    yield from build_world(root / "data")


def ids(rows: list[tuple[Any, ...]]) -> list[str]:
    return [str(r[0]) for r in rows]


def staged_convoys(world: SurfaceWorld, key: str) -> list[str]:
    """The town's unfinished (hence staged) convoys that have unfinished members, oldest id first."""
    return ids(
        world.sql(
            key,
            "SELECT b.bead_id FROM beads b JOIN convoy_metadata m USING (bead_id)"
            " WHERE b.status NOT IN ('closed', 'failed') AND m.staged = 1 AND EXISTS ("
            "  SELECT 1 FROM bead_dependencies d JOIN beads x ON x.bead_id = d.bead_id"
            "  WHERE d.depends_on_bead_id = b.bead_id AND d.dependency_type = 'tracks'"
            "  AND x.status NOT IN ('closed', 'failed'))"
            " ORDER BY b.bead_id",
        )
    )


def new_bead(client: httpx.Client, rig: str, title: str, **extra: Any) -> dict[str, Any]:
    return mutate(client, "createBead", {"rigId": rig, "title": title, **extra})


def doomed_by(world: SurfaceWorld, key: str, where: str, params: tuple[Any, ...]) -> set[str]:
    """The beads a delete of `where` takes: the matches and all their descendants."""
    return set(
        ids(
            world.sql(
                key,
                "WITH RECURSIVE tree(id) AS ("
                f" SELECT bead_id FROM beads WHERE {where} UNION"
                " SELECT b.bead_id FROM beads b JOIN tree ON b.parent_bead_id = tree.id"
                ") SELECT id FROM tree",
                params,
            )
        )
    )


# -- status reads -----------------------------------------------------------------------------


def test_drain_status_defaults_to_not_draining(world: SurfaceWorld) -> None:
    for key, town in world.towns.items():
        assert query(world.owner_of(key), "getDrainStatus", {"townId": town.id}) == {
            "draining": False,
            "drainStartedAt": None,
        }


def test_check_admin_access_names_the_owner_for_an_admin_only(world: SurfaceWorld) -> None:
    personal, org = world.towns["personal"], world.towns["org"]
    admin = world.client("root")
    assert query(admin, "checkAdminAccess", {"townId": personal.id}) == {
        "isAdminViewing": True,
        "ownerUserId": "alice",
        "ownerOrgId": None,
    }
    assert query(admin, "checkAdminAccess", {"townId": org.id}) == {
        "isAdminViewing": True,
        "ownerUserId": "mike",
        "ownerOrgId": world.org_id,
    }
    nobody = {"isAdminViewing": False, "ownerUserId": None, "ownerOrgId": None}
    assert query(world.client("alice"), "checkAdminAccess", {"townId": personal.id}) == nobody
    for caller in ("olga", "mike", "mary"):
        assert query(world.client(caller), "checkAdminAccess", {"townId": org.id}) == nobody


def test_mayor_status_has_no_session(world: SurfaceWorld) -> None:
    town = world.towns["org"]
    assert query(world.client("mary"), "getMayorStatus", {"townId": town.id}) == {
        "configured": True,
        "townId": town.id,
        "session": None,
    }


def test_alarm_status_counts_what_the_town_holds(world: SurfaceWorld) -> None:
    town = world.towns["personal"]
    status = query(world.client("alice"), "getAlarmStatus", {"townId": town.id})
    agents = dict(world.sql("personal", "SELECT status, count(*) FROM agent_metadata GROUP BY status"))
    assert status["agents"]["total"] == sum(agents.values())
    assert status["agents"]["working"] == agents.get("working", 0)
    open_work = world.scalar(
        "personal", "SELECT count(*) FROM beads WHERE status = 'open' AND type NOT IN ('agent', 'message')"
    )
    assert status["beads"]["open"] == open_work
    assert status["alarm"]["nextFireAt"] is None
    assert 0 < len(status["recentEvents"]) <= 20
    # the admin snapshot is the same minus billing
    admin = query(world.client("root"), "adminGetAlarmStatus", {"townId": town.id})
    assert "billing" not in admin and admin["agents"] == status["agents"]


def test_merge_queue_is_narrowed_to_the_rig(world: SurfaceWorld) -> None:
    town = world.towns["personal"]
    whole = query(world.client("alice"), "getMergeQueueData", {"townId": town.id})
    data = query(
        world.client("alice"), "getMergeQueueData", {"townId": town.id, "rigId": town.rig, "limit": 5}
    )
    failed = world.scalar(
        "personal",
        "SELECT count(*) FROM beads b JOIN review_metadata r USING (bead_id)"
        " WHERE b.type = 'merge_request' AND b.status = 'failed' AND b.rig_id = ?",
        (town.rig,),
    )
    assert len(data["needsAttention"]["failedReviews"]) == failed
    for bucket in data["needsAttention"].values():
        assert all(item["mrBead"]["rig_id"] == town.rig and item["rigName"] == "web" for item in bucket)
    assert len(data["activityLog"]) <= 5
    assert sum(len(b) for b in whole["needsAttention"].values()) >= sum(
        len(b) for b in data["needsAttention"].values()
    )


# -- run policy and the container token ---------------------------------------------------------


def test_run_policy_round_trips_through_billing_and_alarm_status(world: SurfaceWorld) -> None:
    town = world.towns["org"]
    mike, mary = world.client("mike"), world.client("mary")  # the creator may, a member reads
    paused = mutate(mike, "setContainerRunPolicy", {"townId": town.id, "policy": "paused_by_user"})
    assert (paused["enabled"], paused["state"], paused["runPolicy"]) == (False, "paused", "paused_by_user")
    assert query(mary, "getBillingStatus", {"townId": town.id}) == paused
    assert query(mary, "getAlarmStatus", {"townId": town.id})["billing"] == paused
    automatic = mutate(
        world.client("olga"), "setContainerRunPolicy", {"townId": town.id, "policy": "automatic"}
    )
    assert (automatic["enabled"], automatic["state"], automatic["runPolicy"]) == (False, "idle", "automatic")
    assert query(mike, "getBillingStatus", {"townId": town.id}) == automatic
    assert query(mary, "getAlarmStatus", {"townId": town.id})["billing"] == automatic
    # the other town is untouched
    assert (
        query(world.client("alice"), "getBillingStatus", {"townId": world.towns["personal"].id}) == automatic
    )


def _token_of(client: httpx.Client, town_id: str) -> str:
    return str(query(client, "getTownConfig", {"townId": town_id})["kilocode_token"])


def test_refresh_container_token_mints_a_new_token_for_the_owner(world: SurfaceWorld) -> None:
    personal, org = world.towns["personal"], world.towns["org"]
    alice = world.client("alice")
    before = _token_of(alice, personal.id)
    assert mutate(alice, "refreshContainerToken", {"townId": personal.id}) is None
    after = _token_of(alice, personal.id)
    assert after != before
    assert jwt.decode(after, TEST_SECRET, algorithms=["HS256"])["kiloUserId"] == "alice"

    # an org member who is not the creator refreshes; the token acts for the creator
    mike, mary = world.client("mike"), world.client("mary")
    org_before = _token_of(mike, org.id)
    assert mutate(mary, "refreshContainerToken", {"townId": org.id}) is None
    org_after = _token_of(mike, org.id)
    assert org_after != org_before
    assert jwt.decode(org_after, TEST_SECRET, algorithms=["HS256"])["kiloUserId"] == "mike"
    assert _token_of(world.client("olga"), org.id) == org_after
    assert _token_of(mary, org.id) == "****" + org_after[-4:]  # masked for a member
    assert _token_of(world.client("root"), org.id) == "****" + org_after[-4:]

    log = world.server.log_text()
    assert "refreshContainerToken" in log  # the calls are logged…
    for token in (before, after, org_before, org_after):
        assert token not in log  # …the tokens never


# -- agents -------------------------------------------------------------------------------------


def test_delete_agent_reopens_its_unfinished_beads(world: SurfaceWorld) -> None:
    key, town = "personal", world.towns["personal"]
    agent, rig = world.sql(
        key,
        "SELECT a.bead_id, a.rig_id FROM beads a JOIN agent_metadata m USING (bead_id)"
        " WHERE a.type = 'agent' AND a.rig_id IS NOT NULL"
        " AND EXISTS (SELECT 1 FROM beads x WHERE x.assignee_agent_bead_id = a.bead_id AND x.status NOT IN ('closed', 'failed'))"
        " AND EXISTS (SELECT 1 FROM beads x WHERE x.assignee_agent_bead_id = a.bead_id AND x.status IN ('closed', 'failed'))"
        " ORDER BY a.bead_id LIMIT 1",
    )[0]
    assigned = dict(
        world.sql(key, "SELECT bead_id, status FROM beads WHERE assignee_agent_bead_id = ?", (agent,))
    )
    alice, admin = world.client("alice"), world.client("root")
    total = query(alice, "getAlarmStatus", {"townId": town.id})["agents"]["total"]
    other_rig = next(r for r in town.rigs.values() if r != rig)

    # through another rig it is not found, and nothing changes
    err = error_of(mutate, alice, "deleteAgent", {"rigId": other_rig, "agentId": agent, "townId": town.id})
    assert err.code == "NOT_FOUND"
    assert agent in [a["id"] for a in query(alice, "listAgents", {"rigId": rig})]

    assert mutate(alice, "deleteAgent", {"rigId": rig, "agentId": agent}) is None
    for bead_id, status in assigned.items():
        bead = query(admin, "adminGetBead", {"townId": town.id, "beadId": bead_id})
        assert bead["assignee_agent_bead_id"] is None
        assert bead["status"] == (status if status in ("closed", "failed") else "open"), (
            status,
            bead["status"],
        )
    assert agent not in [a["id"] for a in query(alice, "listAgents", {"rigId": rig})]
    assert agent not in [row["bead_id"] for row in query(admin, "debugAgentMetadata", {"townId": town.id})]
    assert query(alice, "getAlarmStatus", {"townId": town.id})["agents"]["total"] == total - 1
    assert error_of(mutate, alice, "deleteAgent", {"rigId": rig, "agentId": agent}).code == "NOT_FOUND"
    # an id that is not an agent is not found either, and the bead stays
    issue = next(iter(b for b, s in assigned.items()))
    assert error_of(mutate, alice, "deleteAgent", {"rigId": rig, "agentId": issue}).code == "NOT_FOUND"
    assert query(admin, "adminGetBead", {"townId": town.id, "beadId": issue}) is not None


def _hooked_agents(world: SurfaceWorld, key: str) -> list[tuple[Any, ...]]:
    """(agent, rig, hooked bead) of the rig agents holding a hook, most dispatch attempts first."""
    return world.sql(
        key,
        "SELECT m.bead_id, b.rig_id, m.current_hook_bead_id FROM agent_metadata m JOIN beads b USING (bead_id)"
        " WHERE m.current_hook_bead_id IS NOT NULL AND b.rig_id IS NOT NULL"
        " ORDER BY m.dispatch_attempts DESC, m.bead_id",
    )


def test_reset_dispatch_attempts_clears_the_agent_and_its_hook(world: SurfaceWorld) -> None:
    key, town = "org", world.towns["org"]
    agent, rig, hook = _hooked_agents(world, key)[0]
    mary = world.client("mary")
    before = next(a for a in query(mary, "listAgents", {"rigId": rig}) if a["id"] == agent)
    assert before["dispatch_attempts"] > 0 and before["current_hook_bead_id"] == hook
    assert world.scalar(key, "SELECT dispatch_attempts FROM beads WHERE bead_id = ?", (hook,)) > 0
    assert (
        mutate(mary, "resetAgentDispatchAttempts", {"rigId": rig, "agentId": agent, "townId": town.id})
        is None
    )
    after = next(a for a in query(mary, "listAgents", {"rigId": rig}) if a["id"] == agent)
    assert after == {**before, "dispatch_attempts": 0}  # the hook itself stays
    assert world.sql(
        key, "SELECT dispatch_attempts, last_dispatch_attempt_at FROM beads WHERE bead_id = ?", (hook,)
    ) == [(0, None)]
    other_rig = next(r for r in town.rigs.values() if r != rig)
    assert (
        error_of(mutate, mary, "resetAgentDispatchAttempts", {"rigId": other_rig, "agentId": agent}).code
        == "NOT_FOUND"
    )


def test_admin_force_reset_unhooks_and_idles_an_agent(world: SurfaceWorld) -> None:
    key, town = "org", world.towns["org"]
    agent, _, hook = _hooked_agents(world, key)[-1]
    admin = world.client("root")
    before = next(a for a in query(admin, "adminListAgents", {"townId": town.id}) if a["id"] == agent)
    assert before["status"] != "idle" and before["current_hook_bead_id"] == hook
    assert mutate(admin, "adminForceResetAgent", {"townId": town.id, "agentId": agent}) is None
    listed = next(a for a in query(admin, "adminListAgents", {"townId": town.id}) if a["id"] == agent)
    assert (listed["status"], listed["current_hook_bead_id"]) == ("idle", None)
    events = query(admin, "adminGetTownEvents", {"townId": town.id, "beadId": hook, "limit": 5})
    assert events[0]["event_type"] == "unhooked" and events[0]["agent_id"] == agent


def test_get_rig_has_its_agents_and_beads_in_progress(world: SurfaceWorld) -> None:
    town = world.towns["org"]
    for rig in town.rigs.values():
        detail = query(world.client("mary"), "getRig", {"rigId": rig})
        assert detail["id"] == rig and "config" in detail
        assert detail["agents"] == query(world.client("mary"), "listAgents", {"rigId": rig})
        assert detail["agents"] and all(a["rig_id"] == rig for a in detail["agents"])
        in_progress = set(
            ids(
                world.sql(
                    "org", "SELECT bead_id FROM beads WHERE rig_id = ? AND status = 'in_progress'", (rig,)
                )
            )
        )
        assert in_progress and {b["bead_id"] for b in detail["beads"]} == in_progress


# -- beads --------------------------------------------------------------------------------------


def test_start_bead_drops_the_held_label(world: SurfaceWorld) -> None:
    town = world.towns["personal"]
    alice = world.client("alice")
    bead = new_bead(alice, town.rig, "held work", labels=["ui"])
    assert bead["labels"] == ["ui", "gt:held"]
    started = mutate(alice, "startBead", {"rigId": town.rig, "beadId": bead["bead_id"], "townId": town.id})
    assert started["labels"] == ["ui"] and started["status"] == "open"
    listed = query(alice, "listBeads", {"rigId": town.rig, "limit": 500})
    assert next(b for b in listed if b["bead_id"] == bead["bead_id"])["labels"] == ["ui"]
    events = query(alice, "getBeadEvents", {"rigId": town.rig, "beadId": bead["bead_id"]})
    assert events[0]["event_type"] == "fields_updated"
    # a held bead of the demo history
    held_id, labels = world.sql(
        "personal",
        "SELECT bead_id, labels FROM beads WHERE rig_id = ? AND labels LIKE '%\"gt:held\"%' LIMIT 1",
        (town.rig,),
    )[0]
    started = mutate(alice, "startBead", {"rigId": town.rig, "beadId": held_id})
    assert "gt:held" not in started["labels"] and "gt:held" in labels
    # through another rig it is not found
    other = town.rigs["api"]
    assert error_of(mutate, alice, "startBead", {"rigId": other, "beadId": held_id}).code == "NOT_FOUND"


def test_delete_beads_by_status_counts_descendants_and_stays_in_its_rig(world: SurfaceWorld) -> None:
    key, town = "personal", world.towns["personal"]
    alice, api = world.client("alice"), town.rigs["api"]
    where = "rig_id = ? AND status = 'failed'"
    doomed = doomed_by(world, key, where, (api,))
    web_failed = world.scalar(
        key, "SELECT count(*) FROM beads WHERE rig_id = ? AND status = 'failed'", (town.rig,)
    )
    assert doomed and web_failed
    assert mutate(alice, "deleteBeadsByStatus", {"rigId": api, "status": "failed"}) == {
        "deleted": len(doomed)
    }
    left = {r[0] for r in world.sql(key, "SELECT bead_id FROM beads")}
    assert not doomed & left
    assert (
        world.scalar(key, "SELECT count(*) FROM beads WHERE rig_id = ? AND status = 'failed'", (town.rig,))
        == web_failed
    )
    assert mutate(alice, "deleteBeadsByStatus", {"rigId": api, "status": "failed"}) == {"deleted": 0}
    # with a type
    typed = doomed_by(world, key, "rig_id = ? AND status = 'closed' AND type = 'merge_request'", (town.rig,))
    assert typed
    result = mutate(
        alice, "deleteBeadsByStatus", {"rigId": town.rig, "status": "closed", "type": "merge_request"}
    )
    assert result == {"deleted": len(typed)}
    assert (
        world.scalar(
            key,
            "SELECT count(*) FROM beads WHERE type = 'merge_request' AND status = 'closed' AND rig_id = ?",
            (town.rig,),
        )
        == 0
    )


def test_town_events_carry_the_rig_of_rig_beads(world: SurfaceWorld) -> None:
    town = world.towns["org"]
    names = {rig_id: name for name, rig_id in town.rigs.items()}
    rig_of = dict(world.sql("org", "SELECT bead_id, rig_id FROM beads"))
    events = query(world.client("mary"), "getTownEvents", {"townId": town.id, "limit": 300})
    with_rig = [e for e in events if rig_of.get(e["bead_id"])]
    without = [e for e in events if not rig_of.get(e["bead_id"])]
    assert with_rig and without
    for event in with_rig:
        assert event["rig_id"] == rig_of[event["bead_id"]]
        if event["rig_id"] in names:
            assert event["rig_name"] == names[event["rig_id"]]
        else:  # the demo history has beads of a rig deleted since: its name is gone
            assert "rig_name" not in event
    assert any(e["rig_id"] in names for e in with_rig)
    for event in without:
        assert "rig_id" not in event and "rig_name" not in event


# -- convoys ------------------------------------------------------------------------------------


def test_close_convoy_lands_it_and_closes_its_members(world: SurfaceWorld) -> None:
    town = world.towns["personal"]
    convoy = staged_convoys(world, "personal")[0]
    alice = world.client("alice")
    before = query(alice, "getConvoy", {"townId": town.id, "convoyId": convoy})
    assert before["status"] == "active" and any(
        b["status"] not in ("closed", "failed") for b in before["beads"]
    )
    landed = mutate(alice, "closeConvoy", {"townId": town.id, "convoyId": convoy})
    assert landed["status"] == "landed" and landed["landed_at"] is not None
    assert landed["closed_beads"] == landed["total_beads"]
    was = {b["bead_id"]: b["status"] for b in before["beads"]}
    for member in landed["beads"]:
        assert member["status"] == ("failed" if was[member["bead_id"]] == "failed" else "closed")
    assert convoy not in [c["id"] for c in query(alice, "listConvoys", {"townId": town.id})]
    assert query(alice, "getConvoy", {"townId": town.id, "convoyId": convoy}) == landed
    assert mutate(alice, "closeConvoy", {"townId": town.id, "convoyId": UNKNOWN}) is None


def test_start_convoy_unstages_it_once(world: SurfaceWorld) -> None:
    town = world.towns["personal"]
    convoy = staged_convoys(world, "personal")[1]
    alice = world.client("alice")
    listed = {c["id"]: c for c in query(alice, "listConvoys", {"townId": town.id})}
    assert listed[convoy]["staged"] is True
    started = mutate(alice, "startConvoy", {"townId": town.id, "convoyId": convoy})
    assert started["staged"] is False and started["status"] == listed[convoy]["status"]
    assert started["beads"] == listed[convoy]["beads"]
    assert {c["id"]: c for c in query(alice, "listConvoys", {"townId": town.id})}[convoy]["staged"] is False
    again = error_of(mutate, alice, "startConvoy", {"townId": town.id, "convoyId": convoy})
    assert again.code == "BAD_REQUEST" and "not staged" in again.message
    assert (
        error_of(mutate, alice, "startConvoy", {"townId": town.id, "convoyId": UNKNOWN}).code == "NOT_FOUND"
    )


def test_convoy_add_and_remove_bead_keep_the_total(world: SurfaceWorld) -> None:
    town = world.towns["org"]
    convoy = staged_convoys(world, "org")[0]
    mary = world.client("mary")
    total = query(mary, "getConvoy", {"townId": town.id, "convoyId": convoy})["total_beads"]
    first = new_bead(mary, town.rig, "first addition")["bead_id"]
    second = new_bead(mary, town.rig, "second addition")["bead_id"]
    add = {"townId": town.id, "convoyId": convoy}
    assert mutate(mary, "convoyAddBead", {**add, "beadId": first}) == {"total_beads": total + 1}
    assert mutate(mary, "convoyAddBead", {**add, "beadId": first}) == {"total_beads": total + 1}  # no-op
    assert mutate(mary, "convoyAddBead", {**add, "beadId": second, "depends_on": [first]}) == {
        "total_beads": total + 2
    }
    detail = query(mary, "getConvoy", add)
    assert {first, second} <= {b["bead_id"] for b in detail["beads"]}
    assert {"bead_id": second, "depends_on_bead_id": first} in detail["dependency_edges"]
    assert mutate(mary, "convoyRemoveBead", {**add, "beadId": first}) == {"total_beads": total + 1}
    assert mutate(mary, "convoyRemoveBead", {**add, "beadId": first}) == {"total_beads": total + 1}  # no-op
    detail = query(mary, "getConvoy", add)
    assert first not in {b["bead_id"] for b in detail["beads"]}
    assert {"bead_id": second, "depends_on_bead_id": first} not in detail["dependency_edges"]
    assert error_of(mutate, mary, "convoyAddBead", {**add, "beadId": UNKNOWN}).code == "NOT_FOUND"
    assert error_of(mutate, mary, "convoyAddBead", {**add, "beadId": convoy}).code == "BAD_REQUEST"


# -- wasteland ----------------------------------------------------------------------------------


def test_wasteland_connect_get_disconnect(world: SurfaceWorld) -> None:
    town = world.towns["org"]
    mary, olga = world.client("mary"), world.client("olga")
    wasteland = "5b8f1c2a-9d3e-4f70-8a6b-1c2d3e4f5a6b"
    assert query(mary, "getTownWastelandConnection", {"townId": town.id}) is None
    connected = mutate(
        mary,
        "connectTownToWasteland",
        {
            "townId": town.id,
            "wastelandId": wasteland,
            "upstream": "acme/wl",
            "rigHandle": "org-rig",
            "dolthubOrg": "acme",
        },
    )
    assert connected["status"] == "active"
    assert (
        connected["wasteland_id"],
        connected["upstream"],
        connected["rig_handle"],
        connected["dolthub_org"],
    ) == (
        wasteland,
        "acme/wl",
        "org-rig",
        "acme",
    )
    assert query(olga, "getTownWastelandConnection", {"townId": town.id}) == connected
    assert (
        query(world.client("alice"), "getTownWastelandConnection", {"townId": world.towns["personal"].id})
        is None
    )
    assert mutate(mary, "disconnectTownFromWasteland", {"townId": town.id, "wastelandId": wasteland}) == {
        "success": True
    }
    assert query(olga, "getTownWastelandConnection", {"townId": town.id}) is None


# -- admin tools --------------------------------------------------------------------------------


def test_admin_force_close_and_fail(world: SurfaceWorld) -> None:
    town = world.towns["personal"]
    alice, admin = world.client("alice"), world.client("root")
    to_close = new_bead(alice, town.rig, "force me closed", startImmediately=True)["bead_id"]
    to_fail = new_bead(alice, town.rig, "force me failed", startImmediately=True)["bead_id"]
    closed = mutate(admin, "adminForceCloseBead", {"townId": town.id, "beadId": to_close})
    assert closed["status"] == "closed" and closed["closed_at"] is not None
    failed = mutate(admin, "adminForceFailBead", {"townId": town.id, "beadId": to_fail})
    assert failed["status"] == "failed"
    event = query(admin, "adminGetTownEvents", {"townId": town.id, "beadId": to_fail, "limit": 1})[0]
    assert (event["event_type"], event["new_value"]) == ("status_changed", "failed")
    assert event["metadata"]["failure_reason"]["code"] == "admin_force_fail"
    # terminal beads stay as they are
    assert mutate(admin, "adminForceCloseBead", {"townId": town.id, "beadId": to_fail})["status"] == "failed"
    assert mutate(admin, "adminForceFailBead", {"townId": town.id, "beadId": to_close})["status"] == "closed"
    assert query(admin, "adminGetBead", {"townId": town.id, "beadId": to_close})["status"] == "closed"
    assert (
        error_of(mutate, admin, "adminForceCloseBead", {"townId": town.id, "beadId": UNKNOWN}).code
        == "NOT_FOUND"
    )
    assert query(admin, "adminGetBead", {"townId": town.id, "beadId": UNKNOWN}) is None
    listed = query(admin, "adminListBeads", {"townId": town.id, "status": "failed", "limit": 500})
    assert to_fail in {b["bead_id"] for b in listed} and all(b["status"] == "failed" for b in listed)


def test_admin_bulk_deletes(world: SurfaceWorld) -> None:
    key, town = "org", world.towns["org"]
    mike, admin = world.client("mike"), world.client("root")
    parent = new_bead(mike, town.rig, "parent")["bead_id"]
    child = new_bead(mike, town.rig, "child")["bead_id"]
    mutate(mike, "updateBead", {"rigId": town.rig, "beadId": child, "parent_bead_id": parent})
    loner = new_bead(mike, town.rig, "loner")["bead_id"]
    deleted = mutate(admin, "adminBulkDeleteBeads", {"townId": town.id, "beadIds": [parent, UNKNOWN]})
    assert deleted == {"deleted": 2}  # the parent and its child; the unknown id is skipped
    for gone in (parent, child):
        assert query(admin, "adminGetBead", {"townId": town.id, "beadId": gone}) is None
    assert query(admin, "adminGetBead", {"townId": town.id, "beadId": loner}) is not None
    assert mutate(admin, "adminBulkDeleteBeads", {"townId": town.id, "beadIds": []}) == {"deleted": 0}

    doomed = doomed_by(world, key, "status = 'in_review' AND type = 'issue'", ())
    assert doomed
    result = mutate(
        admin, "adminDeleteBeadsByStatus", {"townId": town.id, "status": "in_review", "type": "issue"}
    )
    assert result == {"deleted": len(doomed)}
    assert not doomed & {r[0] for r in world.sql(key, "SELECT bead_id FROM beads")}
    assert world.scalar(key, "SELECT count(*) FROM beads WHERE status = 'in_review' AND type = 'issue'") == 0


# -- enrichBead and input validation ------------------------------------------------------------


def test_enrich_bead_answers_null(world: SurfaceWorld) -> None:
    town = world.towns["personal"]
    assert (
        mutate(world.client("alice"), "enrichBead", {"townId": town.id, "body": "Add caching to the API"})
        is None
    )


@pytest.mark.parametrize(
    ("kind", "name", "make", "field"),
    [
        (
            "mutation",
            "resizePtySession",
            lambda t, a: {"townId": t, "agentId": a, "ptyId": "p1", "cols": 0, "rows": 24},
            "$.cols",
        ),
        (
            "mutation",
            "resizePtySession",
            lambda t, a: {"townId": t, "agentId": a, "ptyId": "p/1", "cols": 80, "rows": 24},
            "$.ptyId",
        ),
        ("mutation", "enrichBead", lambda t, a: {"townId": t, "body": "too short"}, "$.body"),
        ("query", "getMergeQueueData", lambda t, a: {"townId": t, "limit": 501}, "$.limit"),
        (
            "mutation",
            "adminBulkDeleteBeads",
            lambda t, a: {"townId": t, "beadIds": ["not-a-uuid"]},
            "$.beadIds[0]",
        ),
        ("mutation", "setContainerRunPolicy", lambda t, a: {"townId": t, "policy": "sometimes"}, "$.policy"),
        (
            "mutation",
            "connectTownToWasteland",
            lambda t, a: {"townId": t, "wastelandId": a, "upstream": "", "rigHandle": "h", "dolthubOrg": "o"},
            "$.upstream",
        ),
        ("mutation", "deleteBeadsByStatus", lambda t, a: {"rigId": a, "status": "done"}, "$.status"),
        ("query", "getConvoy", lambda t, a: {"townId": t, "convoyId": "nope"}, "$.convoyId"),
    ],
)
def test_invalid_input_is_a_bad_request_naming_the_field(
    world: SurfaceWorld, kind: str, name: str, make: Any, field: str
) -> None:
    town = world.towns["personal"]
    caller = world.client("root" if name.startswith("admin") else "alice")
    fn = query if kind == "query" else mutate
    err = error_of(fn, caller, name, make(town.id, town.rig))
    assert (err.code, err.status) == ("BAD_REQUEST", 400)
    assert field in err.message, err.message
    assert err.body["error"]["data"] == {"code": "BAD_REQUEST", "httpStatus": 400, "path": f"gastown.{name}"}


# -- the same table over JSON-RPC ----------------------------------------------------------------


def rpc(client: httpx.Client, payload: object) -> Any:
    response = client.post("/rpc", json=payload)
    assert response.status_code == 200, response.text
    return response.json()


def test_json_rpc_single_and_batch_answer_like_trpc(world: SurfaceWorld) -> None:
    town = world.towns["org"]
    mary = world.client("mary")
    single = rpc(
        mary, {"jsonrpc": "2.0", "id": "d", "method": "gastown.getDrainStatus", "params": {"townId": town.id}}
    )
    assert single == {"jsonrpc": "2.0", "result": {"draining": False, "drainStartedAt": None}, "id": "d"}
    convoy = staged_convoys(world, "org")[-1]
    calls = [
        ("getBillingStatus", {"townId": town.id}),
        ("listAgents", {"rigId": town.rig}),
        ("getMayorStatus", {"townId": town.id}),
        ("getConvoy", {"townId": town.id, "convoyId": convoy}),
        ("getTownWastelandConnection", {"townId": town.id}),
        ("checkAdminAccess", {"townId": town.id}),
    ]
    replies = rpc(
        mary,
        [
            {"jsonrpc": "2.0", "id": i, "method": f"gastown.{n}", "params": p}
            for i, (n, p) in enumerate(calls)
        ],
    )
    assert [r["id"] for r in replies] == list(range(len(calls)))
    for reply, (name, params) in zip(replies, calls, strict=True):
        assert reply["result"] == query(mary, name, params), name


def test_json_rpc_carries_the_trpc_code_of_a_precondition_failure(world: SurfaceWorld) -> None:
    town = world.towns["personal"]
    alice = world.client("alice")
    reply = rpc(
        alice,
        {"jsonrpc": "2.0", "id": 9, "method": "gastown.sling", "params": {"rigId": town.rig, "title": "go"}},
    )
    assert reply["id"] == 9 and "result" not in reply
    assert reply["error"]["code"] == -32012
    assert reply["error"]["data"] == {
        "code": "PRECONDITION_FAILED",
        "httpStatus": 412,
        "path": "gastown.sling",
    }
    assert "agent runtime" in reply["error"]["message"]
    # in a batch, next to a success and an access refusal
    batch = rpc(
        alice,
        [
            {"jsonrpc": "2.0", "id": 1, "method": "gastown.ensureMayor", "params": {"townId": town.id}},
            {"jsonrpc": "2.0", "id": 2, "method": "gastown.getDrainStatus", "params": {"townId": town.id}},
            {"jsonrpc": "2.0", "id": 3, "method": "gastown.adminListAgents", "params": {"townId": town.id}},
            {
                "jsonrpc": "2.0",
                "id": 4,
                "method": "gastown.enrichBead",
                "params": {"townId": town.id, "body": "short"},
            },
        ],
    )
    by_id = {r["id"]: r for r in batch}
    assert by_id[1]["error"]["code"] == -32012 and by_id[1]["error"]["data"]["path"] == "gastown.ensureMayor"
    assert by_id[2]["result"] == {"draining": False, "drainStartedAt": None}
    assert by_id[3]["error"]["code"] == -32003
    assert by_id[3]["error"]["data"] == {
        "code": "FORBIDDEN",
        "httpStatus": 403,
        "path": "gastown.adminListAgents",
    }
    assert by_id[4]["error"]["code"] == -32602 and "$.body" in by_id[4]["error"]["message"]
    # a refused destructive call over JSON-RPC changes nothing either
    count = world.scalar("personal", "SELECT count(*) FROM beads")
    denied = rpc(
        world.client("sam"),
        {
            "jsonrpc": "2.0",
            "id": 5,
            "method": "gastown.deleteBeadsByStatus",
            "params": {"rigId": town.rig, "status": "open"},
        },
    )
    assert denied["error"]["code"] == -32004
    assert world.scalar("personal", "SELECT count(*) FROM beads") == count


def test_trpc_style_envelopes_on_rpc(world: SurfaceWorld) -> None:
    town = world.towns["personal"]
    alice = world.client("alice")
    got = rpc(
        alice,
        {
            "id": 1,
            "method": "query",
            "params": {"path": "gastown.getBillingStatus", "input": {"townId": town.id}},
        },
    )
    assert got == {
        "id": 1,
        "result": {"type": "data", "data": query(alice, "getBillingStatus", {"townId": town.id})},
    }
    policy = {"townId": town.id, "policy": "automatic"}
    set_ = rpc(
        alice,
        {"id": 2, "method": "mutation", "params": {"path": "gastown.setContainerRunPolicy", "input": policy}},
    )
    assert set_["result"]["data"]["runPolicy"] == "automatic"
    failed = rpc(
        alice,
        {
            "id": 3,
            "method": "mutation",
            "params": {"path": "gastown.destroyContainer", "input": {"townId": town.id}},
        },
    )
    assert failed["id"] == 3
    assert failed["error"]["code"] == -32012
    assert failed["error"]["data"] == {
        "code": "PRECONDITION_FAILED",
        "httpStatus": 412,
        "path": "gastown.destroyContainer",
    }
    admin = rpc(
        world.client("root"),
        {
            "id": 4,
            "method": "query",
            "params": {"path": "gastown.debugAgentMetadata", "input": {"townId": town.id}},
        },
    )
    assert admin["result"]["data"] == query(world.client("root"), "debugAgentMetadata", {"townId": town.id})
