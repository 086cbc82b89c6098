"""GastownUserDO and GastownOrgDO: the owner objects (which towns and rigs a user/org has).

A town is visible exactly when its owner object has its row, so these rows are written last
in every create flow and removed first in every delete flow.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import msgspec

from dos.kv import kv_delete, kv_get, kv_put
from dos.runtime import DurableObject, memoized_read
from town import owners
from town.clock import now_iso
from town.schema import ORG_MIGRATIONS, USER_MIGRATIONS

TownT = TypeVar("TownT", owners.Town, owners.OrgTown)


def _published_key(caller_id: str, key: str) -> str:
    # JSON keeps the pair unambiguous whatever characters ids and keys contain.
    return "fork:published:" + msgspec.json.encode([caller_id, key]).decode()


def _idem_key(key: str) -> str:
    return f"fork:idempotency:{key}"


def _forked_from_key(town_id: str) -> str:
    return f"town:{town_id}:forked_from"


class OwnerDO(DurableObject):
    """What both owner objects share: rigs, town deletion, the lineage note kept beside each
    town row and fork markers. Callers that work for either kind call `OwnerDO.<method>`."""

    KIND: ClassVar[owners.OwnerKind]

    def delete_town(self, town_id: str) -> bool:
        self._forget(town_id)
        return owners.delete_owner_town(self.conn, self.KIND, town_id)

    def forked_from(self, town_id: str) -> dict[str, Any] | None:
        value = kv_get(self.conn, _forked_from_key(town_id))
        return value if isinstance(value, dict) else None

    def _with_lineage(self, town: TownT) -> TownT:
        value = kv_get(self.conn, _forked_from_key(town.id))
        if value is None:
            return town
        return msgspec.structs.replace(town, forked_from=msgspec.convert(value, owners.ForkedFrom))

    def _set_forked_from(self, town_id: str, forked_from: dict[str, Any] | None) -> None:
        if forked_from is not None:
            kv_put(self.conn, _forked_from_key(town_id), forked_from)

    def _forget(self, town_id: str) -> None:
        kv_delete(self.conn, _forked_from_key(town_id))

    def published_fork(self, caller_id: str, key: str) -> str | None:
        """The result of a fork published here under (caller, idempotency key), if any."""
        value = kv_get(self.conn, _published_key(caller_id, key))
        return value if isinstance(value, str) else None

    def _publish_rest(
        self,
        town_id: str,
        rigs: list[owners.Rig],
        forked_from: dict[str, Any],
        marker: tuple[str, str, str] | None,
    ) -> None:
        for rig in rigs:
            owners.insert_owner_rig(
                self.conn,
                rig_id=rig.id,
                town_id=town_id,
                name=rig.name,
                git_url=rig.git_url,
                default_branch=rig.default_branch,
                platform_integration_id=rig.platform_integration_id,
                now=rig.created_at,
            )
        self._set_forked_from(town_id, forked_from)
        if marker is not None:
            caller_id, key, result_json = marker
            kv_put(self.conn, _published_key(caller_id, key), result_json)

    def add_rig(
        self,
        *,
        rig_id: str,
        town_id: str,
        name: str,
        git_url: str,
        default_branch: str,
        platform_integration_id: str | None,
    ) -> owners.Rig:
        return owners.insert_owner_rig(
            self.conn,
            rig_id=rig_id,
            town_id=town_id,
            name=name,
            git_url=git_url,
            default_branch=default_branch,
            platform_integration_id=platform_integration_id,
            now=now_iso(),
        )

    @memoized_read
    def get_rig(self, rig_id: str) -> owners.Rig | None:
        return owners.get_owner_rig(self.conn, rig_id)

    def list_rigs(self, town_id: str) -> list[owners.Rig]:
        return owners.list_owner_rigs(self.conn, town_id)

    def delete_rig(self, rig_id: str) -> bool:
        return owners.delete_owner_rig(self.conn, rig_id)


class GastownUserDO(OwnerDO):
    MIGRATIONS = USER_MIGRATIONS
    KIND = "user"

    def add_town(
        self, *, town_id: str, name: str, forked_from: dict[str, Any] | None = None
    ) -> owners.Town:
        town = owners.insert_user_town(
            self.conn, town_id=town_id, name=name, owner_user_id=self.id, now=now_iso()
        )
        self._set_forked_from(town_id, forked_from)
        return self._with_lineage(town)

    @memoized_read
    def get_town(self, town_id: str) -> owners.Town | None:
        town = owners.get_user_town(self.conn, town_id)
        return None if town is None else self._with_lineage(town)

    def list_towns(self) -> list[owners.Town]:
        return [self._with_lineage(t) for t in owners.list_user_towns(self.conn)]

    def publish_fork(
        self,
        *,
        town: owners.Town,
        rigs: list[owners.Rig],
        forked_from: dict[str, Any],
        marker: tuple[str, str, str] | None,
    ) -> None:
        """Make a forked town visible: town row, rigs, lineage and the idempotency marker at once."""
        owners.insert_user_town(
            self.conn, town_id=town.id, name=town.name, owner_user_id=self.id, now=town.created_at
        )
        self._publish_rest(town.id, rigs, forked_from, marker)

    # Idempotency records of the forks this user asked for (fork.md §5), by key.
    def fork_record(self, key: str) -> dict[str, Any] | None:
        value = kv_get(self.conn, _idem_key(key))
        return value if isinstance(value, dict) else None

    def put_fork_record(self, key: str, record: dict[str, Any]) -> None:
        kv_put(self.conn, _idem_key(key), record)

    def drop_fork_record(self, key: str) -> None:
        kv_delete(self.conn, _idem_key(key))


class GastownOrgDO(OwnerDO):
    MIGRATIONS = ORG_MIGRATIONS
    KIND = "org"

    def add_town(
        self,
        *,
        town_id: str,
        name: str,
        created_by_user_id: str,
        forked_from: dict[str, Any] | None = None,
    ) -> owners.OrgTown:
        town = owners.insert_org_town(
            self.conn,
            town_id=town_id,
            name=name,
            owner_org_id=self.id,
            created_by_user_id=created_by_user_id,
            now=now_iso(),
        )
        self._set_forked_from(town_id, forked_from)
        return self._with_lineage(town)

    @memoized_read
    def get_town(self, town_id: str) -> owners.OrgTown | None:
        town = owners.get_org_town(self.conn, town_id)
        return None if town is None else self._with_lineage(town)

    def list_towns(self) -> list[owners.OrgTown]:
        return [self._with_lineage(t) for t in owners.list_org_towns(self.conn)]

    def publish_fork(
        self,
        *,
        town: owners.OrgTown,
        rigs: list[owners.Rig],
        forked_from: dict[str, Any],
        marker: tuple[str, str, str] | None,
    ) -> None:
        owners.insert_org_town(
            self.conn,
            town_id=town.id,
            name=town.name,
            owner_org_id=self.id,
            created_by_user_id=town.created_by_user_id,
            now=town.created_at,
        )
        self._publish_rest(town.id, rigs, forked_from, marker)
