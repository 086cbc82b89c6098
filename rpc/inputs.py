"""Input Structs of every procedure: the upstream router's field names, exactly.

Like the upstream zod objects, unknown fields are ignored (the existing front end sends what
it sends); the fork inputs are stricter and reject them (fork.md §1).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from town.bounds import MAX_COUNT, MAX_SHORT, MAX_TEXT, Labels, NonEmptyShort, Short, Text
from town.config import TownConfigUpdate
from town.rigs import RigOverrideConfig

Name = Annotated[str, Meta(min_length=1, max_length=64)]
Title = Annotated[str, Meta(min_length=1, max_length=MAX_TEXT)]
Limit = Annotated[int, Meta(ge=1, le=500)]
Offset = Annotated[int, Meta(ge=0, le=MAX_COUNT)]
# A URL as zod's .url() accepts it: a scheme, ':' and something after it.
Url = Annotated[str, Meta(pattern=r"^[A-Za-z][A-Za-z0-9+.-]*://[^\s]+$", max_length=2048)]
BeadStatus = Literal["open", "in_progress", "in_review", "closed", "failed"]
BeadType = Literal["issue", "message", "escalation", "merge_request", "convoy", "molecule", "agent"]
Priority = Literal["low", "medium", "high", "critical"]
Uuids = Annotated[list[uuid.UUID], Meta(max_length=500)]
# Stored as JSON text, never bound as a value of its own; bounded in size by the body limit.
Metadata = Annotated[dict[Short, Any], Meta(max_length=MAX_SHORT)]


class Input(msgspec.Struct, kw_only=True):
    pass


class NoInput(Input, kw_only=True):
    pass


class TownIdInput(Input, kw_only=True):
    townId: uuid.UUID


class CreateTownInput(Input, kw_only=True):
    name: Name


class OrgInput(Input, kw_only=True):
    organizationId: uuid.UUID


class CreateOrgTownInput(Input, kw_only=True):
    organizationId: uuid.UUID
    name: Name


class OrgTownInput(Input, kw_only=True):
    organizationId: uuid.UUID
    townId: uuid.UUID


class CreateRigInput(Input, kw_only=True):
    townId: uuid.UUID
    name: Name
    gitUrl: Url
    defaultBranch: Annotated[str, Meta(min_length=1, max_length=255)] = "main"
    platformIntegrationId: uuid.UUID | None = None


class CreateOrgRigInput(CreateRigInput, kw_only=True):
    organizationId: uuid.UUID


class RigInput(Input, kw_only=True):
    rigId: uuid.UUID
    townId: uuid.UUID | None = None


class UpdateRigConfigInput(Input, kw_only=True):
    rigId: uuid.UUID
    townId: uuid.UUID | None = None
    config: RigOverrideConfig


class UpdateTownConfigInput(Input, kw_only=True):
    townId: uuid.UUID
    config: TownConfigUpdate


class CreateBeadInput(Input, kw_only=True):
    rigId: uuid.UUID
    townId: uuid.UUID | None = None
    title: Title
    body: Text | None = None
    labels: Labels | None = None
    startImmediately: bool = False


class UpdateBeadInput(Input, kw_only=True):
    rigId: uuid.UUID
    beadId: uuid.UUID
    townId: uuid.UUID | None = None
    title: Title | UnsetType = UNSET
    body: Text | None | UnsetType = UNSET
    status: BeadStatus | UnsetType = UNSET
    priority: Priority | UnsetType = UNSET
    labels: Labels | UnsetType = UNSET
    metadata: Metadata | UnsetType = UNSET
    rig_id: uuid.UUID | None | UnsetType = UNSET
    parent_bead_id: uuid.UUID | None | UnsetType = UNSET
    depends_on: Uuids | UnsetType = UNSET


class DeleteBeadInput(Input, kw_only=True):
    rigId: uuid.UUID
    beadId: uuid.UUID | Annotated[list[uuid.UUID], Meta(min_length=1, max_length=500)]
    townId: uuid.UUID | None = None


class ListBeadsInput(Input, kw_only=True):
    rigId: uuid.UUID | None = None
    townId: uuid.UUID | None = None
    status: BeadStatus | None = None
    type: BeadType | None = None
    limit: Limit = 100
    offset: Offset = 0


class GetBeadEventsInput(Input, kw_only=True):
    rigId: uuid.UUID
    townId: uuid.UUID | None = None
    beadId: uuid.UUID | None = None
    since: Short | None = None
    limit: Limit = 100


class GetTownEventsInput(Input, kw_only=True):
    townId: uuid.UUID
    since: Short | None = None
    limit: Limit = 100


class GetConvoyInput(Input, kw_only=True):
    townId: uuid.UUID
    convoyId: uuid.UUID


class WatchTownEventsInput(Input, kw_only=True):
    townId: uuid.UUID
    since: Short | None = None
    pollMs: Annotated[int, Meta(ge=100, le=60_000)] = 1000
    # The `tracked` id of the last event a reconnecting client received: resume after it.
    lastEventId: Short | None = None


IdempotencyKey = Annotated[str, Meta(min_length=1, max_length=128)]


class ForkTownInput(Input, kw_only=True, forbid_unknown_fields=True):
    sourceTownId: uuid.UUID
    newTownName: Name
    includeGitAuthor: bool = True
    includeEnvVars: bool = True
    dryRun: bool = False
    idempotencyKey: IdempotencyKey | None = None


class ForkOrgTownInput(ForkTownInput, kw_only=True, forbid_unknown_fields=True):
    organizationId: uuid.UUID


class GetForkStatusInput(Input, kw_only=True, forbid_unknown_fields=True):
    idempotencyKey: IdempotencyKey


class ForkProgressInput(Input, kw_only=True, forbid_unknown_fields=True):
    idempotencyKey: IdempotencyKey
    # How long to wait for a fork with the key to begin (the front end subscribes as it forks).
    waitMs: Annotated[int, Meta(ge=0, le=10_000)] = 10_000
    # The `tracked` id of the last status a reconnecting client received: resume after it.
    lastEventId: Short | None = None


# -- the rest of the upstream catalogue -----------------------------------------------------
RunPolicy = Literal["automatic", "paused_by_user"]
# adminListBeads filters on the statuses upstream's admin view knows (no in_review).
AdminBeadStatus = Literal["open", "in_progress", "closed", "failed"]
NonEmpty = NonEmptyShort


class RigBeadInput(Input, kw_only=True):
    rigId: uuid.UUID
    beadId: uuid.UUID
    townId: uuid.UUID | None = None


class RigAgentInput(Input, kw_only=True):
    rigId: uuid.UUID
    agentId: uuid.UUID
    townId: uuid.UUID | None = None


class DeleteBeadsByStatusInput(Input, kw_only=True):
    rigId: uuid.UUID
    status: BeadStatus
    type: BeadType | None = None
    townId: uuid.UUID | None = None


class ConvoyAddBeadInput(Input, kw_only=True):
    townId: uuid.UUID
    convoyId: uuid.UUID
    beadId: uuid.UUID
    depends_on: Uuids | None = None


class ConvoyBeadInput(Input, kw_only=True):
    townId: uuid.UUID
    convoyId: uuid.UUID
    beadId: uuid.UUID


class MergeQueueInput(Input, kw_only=True):
    townId: uuid.UUID
    rigId: uuid.UUID | None = None
    limit: Limit = 50
    since: Short | None = None


class RunPolicyInput(Input, kw_only=True):
    townId: uuid.UUID
    policy: RunPolicy


class ConnectWastelandInput(Input, kw_only=True):
    townId: uuid.UUID
    wastelandId: uuid.UUID
    upstream: NonEmpty
    rigHandle: NonEmpty
    dolthubOrg: NonEmpty


class DisconnectWastelandInput(Input, kw_only=True):
    townId: uuid.UUID
    wastelandId: uuid.UUID


class SlingInput(Input, kw_only=True):
    rigId: uuid.UUID
    title: Title
    body: Text | None = None
    model: Short = "kilo/kilo-auto/frontier"
    labels: Labels | None = None
    townId: uuid.UUID | None = None


class SendMessageInput(Input, kw_only=True):
    townId: uuid.UUID
    message: Title
    model: Short = "anthropic/claude-sonnet-4.6"
    rigId: uuid.UUID | None = None
    uiContext: Annotated[str, Meta(max_length=10_000)] | None = None


class TownAgentInput(Input, kw_only=True):
    townId: uuid.UUID
    agentId: uuid.UUID


class ResizePtyInput(Input, kw_only=True):
    townId: uuid.UUID
    agentId: uuid.UUID
    ptyId: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]+$", max_length=128)]
    cols: Annotated[int, Meta(ge=1, le=500)]
    rows: Annotated[int, Meta(ge=1, le=200)]


class EnrichBeadInput(Input, kw_only=True):
    body: Annotated[str, Meta(min_length=10, max_length=MAX_TEXT)]
    townId: uuid.UUID


class TownBeadInput(Input, kw_only=True):
    townId: uuid.UUID
    beadId: uuid.UUID


class AdminListBeadsInput(Input, kw_only=True):
    townId: uuid.UUID
    status: AdminBeadStatus | None = None
    type: BeadType | None = None
    limit: Annotated[int, Meta(ge=1, le=500)] = 200


class AdminTownEventsInput(Input, kw_only=True):
    townId: uuid.UUID
    beadId: uuid.UUID | None = None
    since: Short | None = None
    limit: Limit = 100


class AdminBulkDeleteInput(Input, kw_only=True):
    townId: uuid.UUID
    beadIds: Uuids


class AdminDeleteByStatusInput(Input, kw_only=True):
    townId: uuid.UUID
    status: BeadStatus
    type: BeadType | None = None
