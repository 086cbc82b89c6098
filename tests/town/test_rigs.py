from __future__ import annotations

import apsw
import msgspec
import pytest

from dos.kv import kv_get, kv_put
from tests.town.conftest import count
from town.beads import create_bead, get_bead
from town.errors import BadRequest, Conflict, NotFound
from town.rigs import (
    RigConfig,
    RigOverrideConfig,
    RigRoleModels,
    add_rig,
    delete_rig,
    get_rig,
    get_rig_runtime_config,
    list_rigs,
    put_rig_runtime_config,
    rig_override_config,
    set_rig_config,
)


def test_add_and_get_rig(town: apsw.Connection) -> None:
    rig = add_rig(
        town, rig_id="r1", name="app", git_url="https://github.com/a/app", default_branch="main"
    )
    assert (rig.id, rig.name, rig.config) == ("r1", "app", {})
    assert get_rig(town, "r1") == rig
    assert get_rig(town, "nope") is None
    assert [r.id for r in list_rigs(town)] == ["r1"]


def test_rig_name_is_unique_in_a_town(town: apsw.Connection) -> None:
    add_rig(town, rig_id="r1", name="app", git_url="u", default_branch="main")
    with pytest.raises(Conflict, match="'app'"):
        add_rig(town, rig_id="r2", name="app", git_url="u2", default_branch="main")
    assert count(town, "SELECT count(*) FROM rigs") == 1


def test_re_adding_a_rig_id_updates_it_and_keeps_config(town: apsw.Connection) -> None:
    add_rig(
        town,
        rig_id="r1",
        name="app",
        git_url="u",
        default_branch="main",
        config=RigOverrideConfig(default_model="m"),
    )
    rig = add_rig(town, rig_id="r1", name="app2", git_url="u2", default_branch="dev")
    assert (rig.name, rig.git_url, rig.default_branch, rig.config) == (
        "app2",
        "u2",
        "dev",
        {"default_model": "m"},
    )


def test_set_rig_config_replaces_whole_and_omits_unset(town: apsw.Connection) -> None:
    add_rig(
        town,
        rig_id="r1",
        name="app",
        git_url="u",
        default_branch="main",
        config=RigOverrideConfig(default_model="m", max_concurrent_polecats=3),
    )
    rig = set_rig_config(
        town,
        "r1",
        RigOverrideConfig(role_models=RigRoleModels(polecat="p"), auto_merge_delay_minutes=None),
    )
    assert rig.config == {"role_models": {"polecat": "p"}, "auto_merge_delay_minutes": None}
    assert rig_override_config(rig) == RigOverrideConfig(
        role_models=RigRoleModels(polecat="p"), auto_merge_delay_minutes=None
    )
    with pytest.raises(NotFound, match="ghost"):
        set_rig_config(town, "ghost", RigOverrideConfig())
    with pytest.raises(BadRequest, match="max_concurrent_polecats"):
        set_rig_config(town, "r1", RigOverrideConfig(max_concurrent_polecats=0))
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"unknown": 1}, RigOverrideConfig)


def test_damaged_rig_config_reads_as_empty(town: apsw.Connection) -> None:
    add_rig(town, rig_id="r1", name="app", git_url="u", default_branch="main")
    town.execute("UPDATE rigs SET config = 'not json'")
    rig = get_rig(town, "r1")
    assert rig is not None and rig.config == {}
    town.execute("""UPDATE rigs SET config = '{"merge_strategy": "bogus"}'""")
    assert rig_override_config(get_rig(town, "r1")) == RigOverrideConfig()  # type: ignore[arg-type]


def test_delete_rig_removes_its_beads_and_runtime_config(town: apsw.Connection) -> None:
    add_rig(town, rig_id="r1", name="app", git_url="u", default_branch="main")
    add_rig(town, rig_id="r2", name="other", git_url="u", default_branch="main")
    mine = create_bead(town, type="issue", title="mine", rig_id="r1")
    child_elsewhere = create_bead(
        town, type="issue", title="child", rig_id="r2", parent_bead_id=mine.bead_id
    )
    theirs = create_bead(town, type="issue", title="theirs", rig_id="r2")
    put_rig_runtime_config(
        town, RigConfig(townId="t", rigId="r1", gitUrl="u", defaultBranch="main", userId="u1")
    )
    assert delete_rig(town, "r1") is True
    assert get_rig(town, "r1") is None and kv_get(town, "rig:r1:config") is None
    assert get_bead(town, mine.bead_id) is None and get_bead(town, child_elsewhere.bead_id) is None
    assert get_bead(town, theirs.bead_id) is not None
    assert delete_rig(town, "r1") is False


def test_rig_runtime_config_round_trip(town: apsw.Connection) -> None:
    config = RigConfig(
        townId="t",
        rigId="r1",
        gitUrl="u",
        defaultBranch="main",
        userId="u1",
        platformIntegrationId="inst",
    )
    put_rig_runtime_config(town, config)
    assert kv_get(town, "rig:r1:config") == {
        "townId": "t",
        "rigId": "r1",
        "gitUrl": "u",
        "defaultBranch": "main",
        "userId": "u1",
        "platformIntegrationId": "inst",
    }
    assert get_rig_runtime_config(town, "r1") == config
    assert get_rig_runtime_config(town, "r2") is None
    kv_put(
        town,
        "rig:r3:config",
        {
            "townId": "t",
            "rigId": "r3",
            "gitUrl": "u",
            "defaultBranch": "main",
            "userId": "u",
            "kilocodeToken": "k",
            "merge_strategy": "pr",
        },
    )
    assert get_rig_runtime_config(town, "r3").merge_strategy == "pr"  # type: ignore[union-attr]
