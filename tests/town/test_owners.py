from __future__ import annotations

import apsw
import msgspec
import pytest

from town.errors import NotFound
from town.owners import (
    ForkedFrom,
    delete_owner_rig,
    delete_owner_town,
    get_org_town,
    get_owner_rig,
    get_user_town,
    insert_org_town,
    insert_owner_rig,
    insert_user_town,
    list_org_towns,
    list_owner_rigs,
    list_user_towns,
)


def test_user_towns_and_rigs(user_db: apsw.Connection) -> None:
    t1 = insert_user_town(
        user_db, town_id="t1", name="One", owner_user_id="u", now="2026-01-01T00:00:00.000Z"
    )
    insert_user_town(
        user_db, town_id="t2", name="Two", owner_user_id="u", now="2026-01-02T00:00:00.000Z"
    )
    assert get_user_town(user_db, "t1") == t1 and get_user_town(user_db, "x") is None
    assert [t.id for t in list_user_towns(user_db)] == ["t2", "t1"]
    assert msgspec.to_builtins(t1) == {
        "id": "t1",
        "name": "One",
        "owner_user_id": "u",
        "created_at": "2026-01-01T00:00:00.000Z",
        "updated_at": "2026-01-01T00:00:00.000Z",
        "forked_from": None,
    }
    r1 = insert_owner_rig(
        user_db,
        rig_id="r1",
        town_id="t1",
        name="a",
        git_url="g",
        default_branch="main",
        platform_integration_id=None,
        now="2026-01-01T00:00:00.000Z",
    )
    insert_owner_rig(
        user_db,
        rig_id="r2",
        town_id="t1",
        name="b",
        git_url="g",
        default_branch="dev",
        platform_integration_id="p",
        now="2026-01-03T00:00:00.000Z",
    )
    insert_owner_rig(
        user_db,
        rig_id="r3",
        town_id="t2",
        name="c",
        git_url="g",
        default_branch="main",
        platform_integration_id=None,
        now="2026-01-03T00:00:00.000Z",
    )
    assert get_owner_rig(user_db, "r1") == r1
    assert [r.id for r in list_owner_rigs(user_db, "t1")] == ["r2", "r1"]
    with pytest.raises(NotFound, match="t9"):
        insert_owner_rig(
            user_db,
            rig_id="r9",
            town_id="t9",
            name="x",
            git_url="g",
            default_branch="main",
            platform_integration_id=None,
            now="2026-01-01T00:00:00.000Z",
        )
    assert delete_owner_rig(user_db, "r1") is True and delete_owner_rig(user_db, "r1") is False
    assert delete_owner_town(user_db, "user", "t1") is True
    assert get_user_town(user_db, "t1") is None and list_owner_rigs(user_db, "t1") == []
    assert [r.id for r in list_owner_rigs(user_db, "t2")] == ["r3"]
    assert delete_owner_town(user_db, "user", "t1") is False


def test_org_towns(org_db: apsw.Connection) -> None:
    town = insert_org_town(
        org_db,
        town_id="t1",
        name="Org",
        owner_org_id="o",
        created_by_user_id="u",
        now="2026-01-01T00:00:00.000Z",
    )
    assert get_org_town(org_db, "t1") == town and list_org_towns(org_db) == [town]
    insert_owner_rig(
        org_db,
        rig_id="r1",
        town_id="t1",
        name="a",
        git_url="g",
        default_branch="main",
        platform_integration_id=None,
        now="2026-01-01T00:00:00.000Z",
    )
    forked = msgspec.structs.replace(
        town, forked_from=ForkedFrom(town_id="s", forked_at="f", by_user_id="u")
    )
    assert msgspec.to_builtins(forked)["forked_from"] == {
        "town_id": "s",
        "forked_at": "f",
        "by_user_id": "u",
    }
    assert delete_owner_town(org_db, "org", "t1") is True
    assert list_org_towns(org_db) == [] and get_owner_rig(org_db, "r1") is None
