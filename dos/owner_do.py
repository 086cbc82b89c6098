"""GastownUserDO and GastownOrgDO: the owner objects (which towns and rigs a user/org has).

A town is visible exactly when its owner object has its row, so these rows are written last
in every create flow and removed first in every delete flow.

Fork idempotency records (GastownUserDO, with the fork's final status) and publish markers
(the target owner object) are kept for a retention window: `GASTOWN_IDEMPOTENCY_TTL_SECONDS`,
7 days by default (fork.md asks for at least 24 h). Past it a key reads as never used, and
`sweep_fork_keys` (dos/retention.py runs it at startup and periodically) deletes them.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Final, TypeVar

import msgspec

from dos.kv import kv_delete, kv_get, kv_items, kv_put
from dos.runtime import DurableObject, memoized_read
from town import owners
from town.clock import iso, now_iso
from town.schema import ORG_MIGRATIONS, USER_MIGRATIONS

TownT = TypeVar("TownT", owners.Town, owners.OrgTown)

TTL_ENV: Final = "GASTOWN_IDEMPOTENCY_TTL_SECONDS"
DEFAULT_TTL_SECONDS: Final = 7 * 24 * 3600
_PUBLISHED_PREFIX: Final = "fork:published:"
_IDEM_PREFIX: Final = "fork:idempotency:"


def ttl_seconds() -> float:
    """The retention window of idempotency records and publish markers."""
    raw = os.environ.get(TTL_ENV)
    return float(raw) if raw else float(DEFAULT_TTL_SECONDS)


def retention_cutoff() -> str:
    """Records and markers stamped before this moment (ISO, as now_iso writes) are expired."""
    return iso(datetime.now(UTC) - timedelta(seconds=ttl_seconds()))


def _expired(stamp: Any, cutoff: str) -> bool:
    # now_iso stamps all have one format, so they order as strings; no stamp: expired.
    return not isinstance(stamp, str) or stamp < cutoff


def _published_key(caller_id: str, key: str) -> str:
    # JSON keeps the pair unambiguous whatever characters ids and keys contain.
    return _PUBLISHED_PREFIX + msgspec.json.encode([caller_id, key]).decode()


def _idem_key(key: str) -> str:
    return _IDEM_PREFIX + key


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
        """The result of a fork published here under (caller, idempotency key), if any and
        not expired. (A bare string is a marker from before markers were stamped.)"""
        value = kv_get(self.conn, _published_key(caller_id, key))
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and not _expired(value.get("at"), retention_cutoff()):
            result = value.get("result")
            return result if isinstance(result, str) else None
        return None

    def sweep_fork_keys(self, cutoff: str) -> int:
        """Delete the expired publish markers (and, for users, idempotency records) kept here;
        unstamped markers get stamped now, so they expire one window later. Returns how many
        were deleted."""
        removed = self._sweep(_PUBLISHED_PREFIX, cutoff, "at")
        for key, value in kv_items(self.conn, _PUBLISHED_PREFIX):
            if isinstance(value, str):
                kv_put(self.conn, key, {"result": value, "at": now_iso()})
        return removed + self._sweep_records(cutoff)

    def _sweep_records(self, cutoff: str) -> int:
        return 0  # only users hold idempotency records

    def _sweep(self, prefix: str, cutoff: str, stamp_field: str) -> int:
        expired = [
            key
            for key, value in kv_items(self.conn, prefix)
            if isinstance(value, dict) and _expired(value.get(stamp_field), cutoff)
        ]
        for key in expired:
            kv_delete(self.conn, key)
        return len(expired)

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
            kv_put(self.conn, _published_key(caller_id, key), {"result": result_json, "at": now_iso()})

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

    # Idempotency records of the forks this user asked for (fork.md §5), by key; stamped by
    # `created_at` (when the attempt started, then when it finished).
    def fork_record(self, key: str) -> dict[str, Any] | None:
        value = kv_get(self.conn, _idem_key(key))
        if not isinstance(value, dict) or _expired(value.get("created_at"), retention_cutoff()):
            return None
        return value

    def _sweep_records(self, cutoff: str) -> int:
        return self._sweep(_IDEM_PREFIX, cutoff, "created_at")

    def put_fork_record(self, key: str, record: dict[str, Any]) -> None:
        kv_put(self.conn, _idem_key(key), record)

    def claim_fork_record(
        self, key: str, attempt: dict[str, Any], *, now: float, lease_until: float, take_over_pending: bool
    ) -> tuple[str, dict[str, Any] | None]:
        """Take the key for a new attempt, atomically (one call, one transaction), so that two
        replicas racing one key cannot both run the fork. Answers (outcome, record found):
        "conflict" (the key was used with another input), "done", "running" (a pending attempt
        whose lease is still being renewed), or "claimed": the attempt is recorded as pending,
        and the record found, if pending, is an attempt that crashed (its lease ran out, or,
        with `take_over_pending`, any pending one: the local backend has one process)."""
        found = self.fork_record(key)
        if found is not None and found.get("state") != "failed":
            if found.get("input") != attempt.get("input"):
                return "conflict", found
            if found.get("state") == "done":
                return "done", found
            lease = found.get("lease_until")
            if not take_over_pending and isinstance(lease, (int, float)) and lease > now:
                return "running", found
        kv_put(self.conn, _idem_key(key), {**attempt, "state": "pending", "lease_until": lease_until})
        return "claimed", found

    def renew_fork_lease(self, key: str, town_id: str, lease_until: float) -> bool:
        """Extend a running attempt's lease; False if the key is no longer that attempt's."""
        found = self.fork_record(key)
        if found is None or found.get("state") != "pending" or found.get("town_id") != town_id:
            return False
        kv_put(self.conn, _idem_key(key), {**found, "lease_until": lease_until})
        return True


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
