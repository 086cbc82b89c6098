"""Fork orchestration (fork.md): export the source, build the new town, publish it last.

Order and why:
1. the source's rigs are read, given their new ids, and the new owner's git credentials fetched
   for them (network, outside any transaction);
2. the new TownDO's database is created whole (`Namespace.create`): the rows file of the
   source's snapshot (one read txn there) streamed in as its file, then its id, ownership and a
   fresh kilocode_token, its rigs configured with those credentials, its indexes and lineage;
   it appears complete or not at all;
3. meanwhile (started before step 1), a fresh TownContainerDO and the lineage index entry;
4. one owner-object transaction publishes the town row, its rigs, its lineage and the
   idempotency marker together. Before step 4 the town is invisible; any failure destroys it
   and a crash leaves an orphan that startup sweeps. After step 4 the fork is done.

A fork with an idempotencyKey reports its progress (dos/fork_progress.py) to its caller, and
its final status (done or failed) is kept in the caller's idempotency record.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from dos import lifecycle
from dos.container_do import TownContainerDO
from dos.fork_build import BuildProgress, ForkBuild
from dos.fork_progress import ForkProgress, Tracker
from dos.fork_status import ForkStatus, done_from_result, failure_of, stored_status, stored_view
from dos.fork_transfer import transfer_for
from dos.git_tokens import GitCredentials, GitTokenProvider
from dos.lineage_do import record_fork
from dos.owner_do import GastownOrgDO, GastownUserDO, OwnerDO
from dos.runtime import ObjectRuntime
from dos.town_do import TownDO
from town import owners
from town.clock import new_id, now_iso
from town.errors import Conflict
from town.fork_export import ExportOptions
from town.fork_import import CopiedCounts, ImportReport
from town.fork_payload import SkippedCounts
from town.lineage import ForkEntry

log = logging.getLogger("gastown.fork")

Fault = Callable[[str], None]  # test-only crash points; a no-op in production


class ForkWarning(msgspec.Struct, kw_only=True, omit_defaults=True):
    code: str
    message: str
    keys: list[str] | UnsetType = UNSET
    rigIds: list[str] | UnsetType = UNSET


class ForkedFromInfo(msgspec.Struct, kw_only=True):
    town_id: str
    forked_at: str


class ForkResult(msgspec.Struct, kw_only=True):
    town: owners.Town | owners.OrgTown | None
    rigs: list[owners.Rig]
    rigIdMapping: dict[str, str]
    copied: CopiedCounts
    skipped: SkippedCounts
    warnings: list[ForkWarning]
    forked_from: ForkedFromInfo


@dataclass(frozen=True)
class ForkPlan:
    caller_id: str
    source_town_id: str
    target: lifecycle.Owner
    new_town_name: str
    include_git_author: bool
    include_env_vars: bool  # as requested
    may_copy_secrets: bool  # the caller may see the source's secrets unmasked
    dry_run: bool
    idempotency_key: str | None
    input_fingerprint: str


def fingerprint(kind: str, fields: dict[str, Any]) -> str:
    """Stable hash of a fork input (without its idempotency key), to detect key reuse."""
    data = msgspec.json.encode({"kind": kind, **{k: v for k, v in fields.items() if k != "idempotencyKey"}}, order="sorted")
    return hashlib.sha256(data).hexdigest()


# Forks running in this process, by (caller, key): a concurrent retry waits for the first.
# Across processes (Ray Serve replicas) the guard is the claim in the caller's GastownUserDO,
# held by a lease the running attempt renews (`GASTOWN_FORK_LEASE_SECONDS`).
LEASE_ENV = "GASTOWN_FORK_LEASE_SECONDS"
WAIT_POLL_SECONDS = 0.1


def lease_seconds() -> float:
    return float(os.environ.get(LEASE_ENV, "30"))


_in_flight: dict[tuple[str, str], asyncio.Future[msgspec.Raw]] = {}


class ForkService:
    def __init__(
        self, runtime: ObjectRuntime, git_tokens: GitTokenProvider, mint: Callable[[str], str], fault: Fault
    ) -> None:
        self.runtime = runtime
        self.git_tokens = git_tokens
        self.mint = mint
        self.fault = fault
        self.progress = ForkProgress()
        self.transfer = transfer_for(runtime)  # how the rows get into the new town
        # Other processes share these objects (Ray): a pending fork record may be theirs.
        self._shared = bool(getattr(runtime, "shared_by_replicas", False))

    async def fork(self, plan: ForkPlan) -> msgspec.Raw | ForkResult:
        if plan.dry_run:
            # A dry run records nothing, but a key already spent on a real fork is still that
            # fork's: reusing it with this (different) input is CONFLICT like any other reuse.
            if plan.idempotency_key is not None:
                await self._check_same_input(plan)
            return await self._dry_run(plan)
        if plan.idempotency_key is None:
            return msgspec.Raw(await self._fork_once(plan, new_id()))
        flight = (plan.caller_id, plan.idempotency_key)
        running = _in_flight.get(flight)
        if running is not None:
            result = await asyncio.shield(running)
            await self._check_same_input(plan)
            return result
        future: asyncio.Future[msgspec.Raw] = asyncio.get_running_loop().create_future()
        _in_flight[flight] = future
        tracker = self.progress.begin(flight)
        try:
            result = await self._fork_idempotent(plan, tracker)
            future.set_result(result)
            return result
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters (if any) re-raise it themselves
            raise
        finally:
            _in_flight.pop(flight, None)
            self.progress.end(flight, tracker)

    # -- progress -------------------------------------------------------------------------------
    async def status(self, caller_id: str, key: str) -> ForkStatus:
        """The status of the caller's fork with this key (NotFound if the caller has none)."""
        return await self.progress.status((caller_id, key), lambda running: self._stored_status(caller_id, key, running))

    def watch(self, caller_id: str, key: str, *, wait: float) -> AsyncIterator[ForkStatus]:
        """Each status of the caller's fork with this key, ending after done or failed."""
        return self.progress.watch((caller_id, key), lambda running: self._stored_status(caller_id, key, running), wait)

    async def _stored_status(self, caller_id: str, key: str, running: bool) -> ForkStatus | None:
        return await stored_status(self.runtime, caller_id, key, running=running)

    def _import_progress(self, tracker: Tracker | None) -> BuildProgress:
        faulted = False

        def progress(phase: str, done: int, total: int) -> None:
            nonlocal faulted
            if phase == "import" and not faulted:
                faulted = True
                # Here, in the import thread: a crash at this point lands with rows half-written.
                self.fault("import_part")
            if tracker is not None:
                tracker.from_thread(phase, done, total)

        return progress

    # -- idempotency --------------------------------------------------------------------------
    def _caller(self) -> Any:
        return self.runtime.namespace(GastownUserDO)

    async def _check_same_input(self, plan: ForkPlan) -> None:
        assert plan.idempotency_key is not None
        record = _live_record(
            await self._caller().get(plan.caller_id).call(GastownUserDO.fork_record, plan.idempotency_key)
        )
        if record is not None and record.get("input") != plan.input_fingerprint:
            raise Conflict(f"idempotencyKey {plan.idempotency_key!r} was used with a different input")

    async def _fork_idempotent(self, plan: ForkPlan, tracker: Tracker) -> msgspec.Raw:
        key = plan.idempotency_key
        assert key is not None
        me = self._caller().get(plan.caller_id)
        lease = lease_seconds()
        record = _live_record(await me.call(GastownUserDO.fork_record, key))
        if record is not None and record.get("input") != plan.input_fingerprint:
            raise Conflict(f"idempotencyKey {key!r} was used with a different input")
        if record is not None and record.get("state") == "done":
            tracker.finish(stored_view(record.get("status")) or done_from_result(key, record["result"], record.get("created_at")))
            return msgspec.Raw(record["result"].encode())
        town_id = new_id()
        attempt = {
            "input": plan.input_fingerprint,
            "town_id": town_id,
            "target": [plan.target.kind, plan.target.id],
            "created_at": now_iso(),
        }
        tracker.start(town_id)  # before the record says pending: a poll then reads this
        while True:
            # One atomic claim in the caller's object: of two replicas racing this key, one
            # runs the fork, the other waits for its record (in-process waiters never get here).
            outcome, found = await me.call(
                GastownUserDO.claim_fork_record,
                key,
                attempt,
                now=time.time(),
                lease_until=time.time() + lease,
                take_over_pending=not self._shared,
            )
            if outcome == "conflict":
                raise Conflict(f"idempotencyKey {key!r} was used with a different input")
            if outcome == "done":
                assert found is not None
                tracker.finish(stored_view(found.get("status")) or done_from_result(key, found["result"], found.get("created_at")))
                return msgspec.Raw(found["result"].encode())
            if outcome == "claimed":
                break
            waited = await self._wait_for_other(me, key, found, lease, tracker)  # "running" elsewhere
            if waited is not None:
                return waited
        if found is not None and found.get("state") == "pending":
            # An earlier attempt crashed. If it got as far as publishing, its result is in the
            # target owner object; else its half-made town is discarded and we start over.
            published = await self._owner_stub(plan.target).call(OwnerDO.published_fork, plan.caller_id, key)
            if published is not None:
                done = done_from_result(key, published, now_iso())
                await me.call(
                    GastownUserDO.put_fork_record,
                    key,
                    {**found, "state": "done", "result": published, "status": msgspec.to_builtins(done)},
                )
                tracker.finish(done)
                return msgspec.Raw(published.encode())
            await self._discard(found.get("town_id"))
        heartbeat = asyncio.ensure_future(self._renew_lease(me, key, town_id, lease))
        try:
            result = await self._fork_once(plan, town_id, tracker)
        except BaseException as exc:
            heartbeat.cancel()
            # Nothing of the attempt is kept but its status; a retry with the key starts over.
            failed = tracker.failed(failure_of(exc))
            await me.call(
                GastownUserDO.put_fork_record,
                key,
                {**attempt, "state": "failed", "town_id": None, "status": msgspec.to_builtins(failed)},
            )
            tracker.finish(failed)
            raise
        heartbeat.cancel()
        self.fault("published")
        done = tracker.done()
        await me.call(
            GastownUserDO.put_fork_record,
            key,
            {**attempt, "state": "done", "result": result.decode(), "created_at": now_iso(), "status": msgspec.to_builtins(done)},
        )
        tracker.finish(done)
        return msgspec.Raw(result)

    async def _renew_lease(self, me: Any, key: str, town_id: str, lease: float) -> None:
        """Keep the attempt's lease alive while it runs (a replica that dies stops renewing)."""
        while True:
            await asyncio.sleep(lease / 3)
            if not await me.call(GastownUserDO.renew_fork_lease, key, town_id, time.time() + lease):
                log.warning("fork lease of key %r was lost (the attempt ran past its lease)", key)
                return

    async def _wait_for_other(
        self, me: Any, key: str, running: dict[str, Any] | None, lease: float, tracker: Tracker
    ) -> msgspec.Raw | None:
        """Wait while another replica runs the fork with this key: its result once done, or
        None to claim again (it failed, or its lease ran out: it crashed)."""
        while True:
            await asyncio.sleep(WAIT_POLL_SECONDS)
            record = _live_record(await me.call(GastownUserDO.fork_record, key))
            if record is None:
                return None
            if record.get("state") == "done":
                tracker.finish(stored_view(record.get("status")) or done_from_result(key, record["result"], record.get("created_at")))
                return msgspec.Raw(record["result"].encode())
            stamp = record.get("lease_until")
            if not isinstance(stamp, (int, float)) or stamp <= time.time():
                return None

    async def _discard(self, town_id: Any) -> None:
        """Remove what an interrupted attempt left (never a published town: it has no row)."""
        if isinstance(town_id, str) and town_id:
            await self.runtime.namespace(TownDO).get(town_id).destroy()
            await self.runtime.namespace(TownContainerDO).get(town_id).destroy()

    def _owner_stub(self, owner: lifecycle.Owner) -> Any:
        return lifecycle.owner_namespace(self.runtime, owner.kind).get(owner.id)

    # -- the fork itself ------------------------------------------------------------------------
    def _options(self, plan: ForkPlan) -> ExportOptions:
        return ExportOptions(
            source_town_id=plan.source_town_id,
            include_env_vars=plan.include_env_vars and plan.may_copy_secrets,
            include_git_author=plan.include_git_author,
        )

    async def _credentials(self, plan: ForkPlan, rigs: list[Any]) -> list[GitCredentials | None]:
        """The new owner's git token for each rig (network; never inside a transaction)."""
        owner_user = plan.target.created_by_user_id
        return list(
            await asyncio.gather(
                *(self.git_tokens.token_for(r.git_url, user_id=owner_user, org_id=_org_of(plan.target)) for r in rigs)
            )
        )

    async def _dry_run(self, plan: ForkPlan) -> ForkResult:
        report: ImportReport = await self.transfer.counts(plan.source_town_id, self._options(plan))
        # The provider is not asked (that would mint tokens): rigs it cannot serve at all are
        # certain to lack credentials; they are named by their source ids (no new ids exist).
        missing = [r.id for r in report.source_rigs if not self.git_tokens.can_serve(r.git_url)]
        return _result(plan, None, [], report, _warnings(plan, report, missing), now_iso(), mapping={})

    async def _fork_once(self, plan: ForkPlan, town_id: str, tracker: Tracker | None = None) -> bytes:
        towns = self.runtime.namespace(TownDO)
        published = False
        side_writes: list[asyncio.Future[None]] = []
        try:
            forked_at = now_iso()
            # Written while the rest goes on: the fresh container object (created whole) and
            # the lineage index entry for listForks (an entry whose town never becomes visible
            # is not shown, and is pruned at startup: dos/lineage_do.py).
            containers = self.runtime.namespace(TownContainerDO)
            entry = ForkEntry(town_id=town_id, owner_kind=plan.target.kind, owner_id=plan.target.id, forked_at=forked_at)
            side_writes += [
                asyncio.ensure_future(containers.create(town_id, _fresh_container)),
                asyncio.ensure_future(record_fork(self.runtime, plan.source_town_id, entry)),
            ]
            # The source's rigs get their new ids and the new owner's git credentials first,
            # so the new town's file is written whole in one build, rigs configured.
            source_rigs = await towns.get(plan.source_town_id).call(TownDO.list_rigs)  # opens and migrates it; reads only
            mapping = {r.id: new_id() for r in source_rigs}
            creds = dict(zip((mapping[r.id] for r in source_rigs), await self._credentials(plan, source_rigs)))
            owner_user = plan.target.created_by_user_id
            token = self.mint(owner_user)
            build = ForkBuild(
                rows=await self.transfer.rows_of(plan.source_town_id),
                options=msgspec.structs.replace(self._options(plan), rig_id_mapping=mapping),
                ownership=lifecycle.ownership_fields(plan.target, token),
                owner_user_id=owner_user,
                kilocode_token=token,
                credentials=creds,
                lineage={"town_id": plan.source_town_id, "forked_at": forked_at, "by_user_id": plan.caller_id},
                progress=self._import_progress(tracker),
                fault=self.fault,
            )
            built = await towns.create(town_id, build)
            # (A build run elsewhere kept its progress there: its rows are reported whole here.
            # Reports of a phase already passed are ignored.)
            build.progress("import", built.report.copied.rows, built.report.copied.rows)
            build.progress("rigs", 0, 0)
            town_rigs, lineage, mapping = built.rigs, build.lineage, built.report.rig_id_mapping
            self.fault("imported")
            late = [r for r in town_rigs if r.id not in creds]
            if late:
                creds.update(zip((r.id for r in late), await self._credentials(plan, late)))
                await towns.get(town_id).call(TownDO.configure_fork_rigs, owner_user, token, [(r, creds[r.id]) for r in late])
            for write in side_writes:
                await write
            self.fault("lineage")
            town_row = _town_row(plan, town_id, forked_at, lineage)
            # The rig is bound to the integration the provider used for the new owner, if any.
            rig_rows = [
                owners.Rig(
                    id=r.id, town_id=town_id, name=r.name, git_url=r.git_url, default_branch=r.default_branch,
                    platform_integration_id=None if c is None or c.installationId is None else str(c.installationId),
                    created_at=forked_at, updated_at=forked_at,
                )
                for r in town_rigs
                for c in (creds[r.id],)
            ]
            missing = [r.id for r in town_rigs if creds[r.id] is None]
            report = built.report
            result = _result(plan, town_row, rig_rows, report, _warnings(plan, report, missing), forked_at, mapping)
            encoded = msgspec.json.encode(result)
            marker = None if plan.idempotency_key is None else (plan.caller_id, plan.idempotency_key, encoded.decode())
            owner_cls = GastownUserDO if plan.target.kind == "user" else GastownOrgDO
            if tracker is not None:
                tracker.report("publish")
            await self._owner_stub(plan.target).call(
                owner_cls.publish_fork, town=town_row, rigs=rig_rows, forked_from=lineage, marker=marker
            )
            published = True
            return encoded
        finally:
            if not published:
                # Let them finish (or fail) first, so the discard below leaves nothing behind.
                await asyncio.gather(*side_writes, return_exceptions=True)
                await self._discard(town_id)


def _fresh_container(container: TownContainerDO) -> None:
    container.put("container:registry", [])


def _live_record(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """The idempotency record that binds the key: a failed attempt's record only keeps its
    status, and neither blocks nor changes a retry."""
    if record is None or record.get("state") == "failed":
        return None
    return record


def _org_of(owner: lifecycle.Owner) -> str | None:
    return owner.id if owner.kind == "org" else None


def _town_row(plan: ForkPlan, town_id: str, now: str, lineage: dict[str, Any]) -> owners.Town | owners.OrgTown:
    forked_from = owners.ForkedFrom(**lineage)
    if plan.target.kind == "user":
        return owners.Town(
            id=town_id, name=plan.new_town_name, owner_user_id=plan.target.id, created_at=now, updated_at=now, forked_from=forked_from
        )
    return owners.OrgTown(
        id=town_id,
        name=plan.new_town_name,
        owner_org_id=plan.target.id,
        created_by_user_id=plan.caller_id,
        owner_user_id=plan.caller_id,
        created_at=now,
        updated_at=now,
        forked_from=forked_from,
    )


def _result(
    plan: ForkPlan,
    town: owners.Town | owners.OrgTown | None,
    rigs: list[owners.Rig],
    report: ImportReport,
    warnings: list[ForkWarning],
    forked_at: str,
    mapping: dict[str, str],
) -> ForkResult:
    return ForkResult(
        town=town,
        rigs=rigs,
        rigIdMapping=mapping,
        copied=report.copied,
        skipped=report.skipped,
        warnings=warnings,
        forked_from=ForkedFromInfo(town_id=plan.source_town_id, forked_at=forked_at),
    )


def _warnings(plan: ForkPlan, report: ImportReport, missing: list[str]) -> list[ForkWarning]:
    out: list[ForkWarning] = []
    keys = report.env_var_keys
    if keys and report.env_vars_copied:
        out.append(ForkWarning(code="ENV_VARS_COPIED", message="Environment variables were copied; they may hold secrets.", keys=keys))
    elif keys:
        why = "not requested" if not plan.include_env_vars else "the caller may not see the source's secrets"
        out.append(ForkWarning(code="ENV_VARS_NOT_COPIED", message=f"Environment variables were not copied ({why}).", keys=keys))
    if report.secrets_not_copied:
        out.append(
            ForkWarning(
                code="SECRETS_NOT_COPIED",
                message="Secrets are never copied; the new owner must set them.",
                keys=report.secrets_not_copied,
            )
        )
    if missing:
        out.append(
            ForkWarning(
                code="GIT_CREDENTIALS_MISSING",
                message="No git token could be obtained for these rigs; they will not work until credentials are configured.",
                rigIds=missing,
            )
        )
    if report.parents_detached:
        out.append(
            ForkWarning(code="PARENT_DETACHED", message=f"{report.parents_detached} copied bead(s) lost a parent that was not copied.")
        )
    if report.rig_refs_unmapped:
        out.append(
            ForkWarning(code="RIG_UNMAPPED", message=f"{report.rig_refs_unmapped} rig reference(s) named a rig that no longer exists; cleared.")
        )
    return out

