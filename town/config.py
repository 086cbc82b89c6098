"""Town configuration (KV `town:config`, model.md §4): read with new-town seeding, merge-update,
ownership for the create flow, and masking of secrets.

Optional fields default to UNSET so they vanish from the stored and returned JSON, while fields
with a schema default (merge_strategy, env_vars, …) are always present, as upstream's parsed
config is.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import apsw
import msgspec
from msgspec import UNSET, Meta, UnsetType

from dos.kv import kv_get, kv_put
from town.bounds import MAX_COUNT, EnvVars, Secret, Short
from town.errors import BadRequest

CONFIG_KEY = "town:config"
SEEDED_FLAG_KEY = "town:config:newDefaultsSeeded"

MergeStrategy = Literal["direct", "pr"]
ReviewMode = Literal["rework", "comments"]
ConvoyMergeMode = Literal["review-then-land", "review-and-merge"]
OwnerType = Literal["user", "org"]

MaxPolecats = Annotated[int, Meta(ge=1, le=50)]
AlarmActive = Annotated[int, Meta(ge=5, le=600)]
AlarmIdle = Annotated[int, Meta(ge=30, le=3600)]
SleepAfter = Annotated[int, Meta(ge=5, le=120)]
DelayMinutes = Annotated[int, Meta(ge=0, le=MAX_COUNT)]
Instructions = Annotated[str, Meta(max_length=2000)]
Gates = Annotated[list[Secret], Meta(max_length=100)]

_MASK = re.compile(r"\*{4}.{0,4}", re.DOTALL)


class GitAuth(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    github_token: Secret | UnsetType = UNSET
    gitlab_token: Secret | UnsetType = UNSET
    gitlab_instance_url: Secret | UnsetType = UNSET
    platform_integration_id: Short | UnsetType = UNSET


class RoleModels(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    mayor: Short | UnsetType = UNSET
    refinery: Short | UnsetType = UNSET
    polecat: Short | UnsetType = UNSET


class RefineryConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    gates: list[str] = []
    auto_merge: bool = True
    require_clean_merge: bool = True
    code_review: bool = True
    review_mode: ReviewMode = "rework"
    auto_resolve_pr_feedback: bool = False
    auto_resolve_merge_conflicts: bool = True
    # None = auto-merge disabled, 0 = immediate.
    auto_merge_delay_minutes: DelayMinutes | None = None


class ContainerConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    sleep_after_minutes: SleepAfter | UnsetType = UNSET


class CustomInstructions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    polecat: Instructions | UnsetType = UNSET
    refinery: Instructions | UnsetType = UNSET
    mayor: Instructions | UnsetType = UNSET


class TownConfig(msgspec.Struct, kw_only=True):
    """The stored config. Unknown top-level keys are dropped on read, as upstream's schema does."""

    env_vars: dict[str, str] = {}
    git_auth: GitAuth = msgspec.field(default_factory=GitAuth)
    owner_user_id: str | UnsetType = UNSET
    owner_type: OwnerType = "user"
    owner_id: str | UnsetType = UNSET
    created_by_user_id: str | UnsetType = UNSET
    organization_id: str | UnsetType = UNSET
    kilocode_token: str | UnsetType = UNSET
    default_model: str | UnsetType = UNSET
    role_models: RoleModels | UnsetType = UNSET
    small_model: str | UnsetType = UNSET
    max_polecats_per_rig: MaxPolecats | UnsetType = UNSET
    merge_strategy: MergeStrategy = "direct"
    refinery: RefineryConfig | UnsetType = UNSET
    alarm_interval_active: AlarmActive | UnsetType = UNSET
    alarm_interval_idle: AlarmIdle | UnsetType = UNSET
    container: ContainerConfig | UnsetType = UNSET
    staged_convoys_default: bool = False
    convoy_merge_mode: ConvoyMergeMode = "review-then-land"
    github_cli_pat: str | UnsetType = UNSET
    git_author_name: str | UnsetType = UNSET
    git_author_email: str | UnsetType = UNSET
    disable_ai_coauthor: bool = False
    custom_instructions: CustomInstructions | UnsetType = UNSET


class RefineryUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    gates: Gates | UnsetType = UNSET
    auto_merge: bool | UnsetType = UNSET
    require_clean_merge: bool | UnsetType = UNSET
    code_review: bool | UnsetType = UNSET
    review_mode: ReviewMode | UnsetType = UNSET
    auto_resolve_pr_feedback: bool | UnsetType = UNSET
    auto_resolve_merge_conflicts: bool | UnsetType = UNSET
    auto_merge_delay_minutes: DelayMinutes | UnsetType | None = UNSET


class CustomInstructionsUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Per role: a present key replaces the stored text; null clears it."""

    polecat: Instructions | UnsetType | None = UNSET
    refinery: Instructions | UnsetType | None = UNSET
    mayor: Instructions | UnsetType | None = UNSET


class TownConfigUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Input of updateTownConfig. Ownership fields are accepted (the front end sends the whole
    config back) but never applied."""

    env_vars: EnvVars | UnsetType = UNSET
    git_auth: GitAuth | UnsetType = UNSET
    owner_user_id: Short | UnsetType | None = UNSET
    owner_type: OwnerType | UnsetType | None = UNSET
    owner_id: Short | UnsetType | None = UNSET
    created_by_user_id: Short | UnsetType | None = UNSET
    organization_id: Short | UnsetType | None = UNSET
    kilocode_token: Secret | UnsetType = UNSET
    default_model: Short | UnsetType = UNSET
    role_models: RoleModels | UnsetType = UNSET
    small_model: Short | UnsetType = UNSET
    max_polecats_per_rig: MaxPolecats | UnsetType = UNSET
    merge_strategy: MergeStrategy | UnsetType = UNSET
    refinery: RefineryUpdate | UnsetType = UNSET
    alarm_interval_active: AlarmActive | UnsetType = UNSET
    alarm_interval_idle: AlarmIdle | UnsetType = UNSET
    container: ContainerConfig | UnsetType = UNSET
    staged_convoys_default: bool | UnsetType = UNSET
    convoy_merge_mode: ConvoyMergeMode | UnsetType = UNSET
    github_cli_pat: Secret | UnsetType = UNSET
    git_author_name: Short | UnsetType = UNSET
    git_author_email: Short | UnsetType = UNSET
    disable_ai_coauthor: bool | UnsetType = UNSET
    custom_instructions: CustomInstructionsUpdate | UnsetType = UNSET


OWNERSHIP_FIELDS = frozenset(
    {"owner_user_id", "owner_type", "owner_id", "created_by_user_id", "organization_id"}
)
# Handled by dedicated rules in update_config rather than a plain replace.
_SPECIAL_FIELDS = frozenset(
    {
        "env_vars",
        "git_auth",
        "kilocode_token",
        "github_cli_pat",
        "default_model",
        "refinery",
        "container",
        "custom_instructions",
    }
)


def new_town_defaults() -> TownConfig:
    """What a new town's first config read stores (model.md §4)."""
    return TownConfig(
        merge_strategy="pr",
        staged_convoys_default=True,
        refinery=RefineryConfig(
            gates=[],
            auto_merge=True,
            require_clean_merge=True,
            code_review=True,
            review_mode="comments",
            auto_resolve_pr_feedback=True,
            auto_merge_delay_minutes=5,
        ),
    )


def is_masked(value: str) -> bool:
    """True for what mask_value produces: four asterisks and at most four more characters."""
    return _MASK.fullmatch(value) is not None


def mask_value(value: str) -> str:
    return "****" if len(value) <= 4 else "****" + value[-4:]


def _validated(value: Any) -> TownConfig:
    try:
        return msgspec.convert(msgspec.to_builtins(value), TownConfig)
    except msgspec.ValidationError as exc:
        raise BadRequest(str(exc)) from exc


def _store(conn: apsw.Connection, config: TownConfig) -> TownConfig:
    checked = _validated(config)
    kv_put(conn, CONFIG_KEY, checked)
    return checked


def get_config(conn: apsw.Connection) -> TownConfig:
    """The stored config; the first read of a town seeds and stores the new-town defaults."""
    stored = kv_get(conn, CONFIG_KEY)
    if stored is None:
        config = _store(conn, new_town_defaults())
        kv_put(conn, SEEDED_FLAG_KEY, True)
        return config
    return msgspec.convert(stored, TownConfig)


def _keep_if_masked(incoming: str | UnsetType, stored: str | UnsetType) -> str | UnsetType:
    """An echoed mask means "unchanged"; anything else replaces (UNSET keeps the stored value)."""
    if incoming is UNSET:
        return stored
    return stored if is_masked(incoming) else incoming


def _merge_fields(base: msgspec.Struct, update: msgspec.Struct) -> dict[str, Any]:
    """Field-wise merge of two Structs: the update's set fields over the base's."""
    merged = msgspec.structs.asdict(base)
    for name, value in msgspec.structs.asdict(update).items():
        if value is not UNSET:
            merged[name] = value
    return merged


def update_config(conn: apsw.Connection, update: TownConfigUpdate) -> TownConfig:
    """Merge `update` over the stored config (model.md §4 rules), validate, store, return it."""
    current = get_config(conn)
    merged = msgspec.structs.asdict(current)
    for name, value in msgspec.structs.asdict(update).items():
        if value is UNSET or name in OWNERSHIP_FIELDS or name in _SPECIAL_FIELDS:
            continue
        merged[name] = value

    if update.env_vars is not UNSET:
        stored_env = current.env_vars
        # A mask with nothing stored behind it is dropped: it is never a real value.
        merged["env_vars"] = {
            key: stored_env[key] if is_masked(value) else value
            for key, value in update.env_vars.items()
            if not is_masked(value) or key in stored_env
        }
    if update.git_auth is not UNSET:
        old, new = current.git_auth, update.git_auth
        merged["git_auth"] = GitAuth(
            github_token=_keep_if_masked(new.github_token, old.github_token),
            gitlab_token=_keep_if_masked(new.gitlab_token, old.gitlab_token),
            gitlab_instance_url=_keep_if_masked(new.gitlab_instance_url, old.gitlab_instance_url),
            platform_integration_id=(
                old.platform_integration_id
                if new.platform_integration_id is UNSET
                else new.platform_integration_id
            ),
        )
    # kilocode_token is a secret too: a masked echo must not overwrite the real token.
    merged["kilocode_token"] = _keep_if_masked(update.kilocode_token, current.kilocode_token)
    merged["github_cli_pat"] = _keep_if_masked(update.github_cli_pat, current.github_cli_pat)
    if update.default_model is not UNSET:
        merged["default_model"] = update.default_model or UNSET
    if update.refinery is not UNSET:
        base = current.refinery if current.refinery is not UNSET else RefineryConfig()
        merged["refinery"] = RefineryConfig(**_merge_fields(base, update.refinery))
    if update.container is not UNSET:
        base_c = current.container if current.container is not UNSET else ContainerConfig()
        merged["container"] = ContainerConfig(**_merge_fields(base_c, update.container))
    if update.custom_instructions is not UNSET:
        base_ci = (
            current.custom_instructions
            if current.custom_instructions is not UNSET
            else CustomInstructions()
        )
        roles = _merge_fields(base_ci, update.custom_instructions)
        merged["custom_instructions"] = CustomInstructions(
            **{role: UNSET if text is None else text for role, text in roles.items()}
        )
    return _store(conn, TownConfig(**merged))


def set_ownership(
    conn: apsw.Connection,
    *,
    owner_user_id: str | None = None,
    owner_type: OwnerType | None = None,
    owner_id: str | None = None,
    created_by_user_id: str | None = None,
    organization_id: str | None = None,
    kilocode_token: str | None = None,
) -> TownConfig:
    """Record ownership (and the town's API token) for createTown/createOrgTown/fork.

    The only writer of ownership fields; None leaves a field as stored.
    """
    config = get_config(conn)
    changes: dict[str, Any] = {
        name: value
        for name, value in (
            ("owner_user_id", owner_user_id),
            ("owner_type", owner_type),
            ("owner_id", owner_id),
            ("created_by_user_id", created_by_user_id),
            ("organization_id", organization_id),
            ("kilocode_token", kilocode_token),
        )
        if value is not None
    }
    return _store(conn, msgspec.structs.replace(config, **changes))


def mask_config(config: TownConfig) -> TownConfig:
    """The config as shown to callers who may not see secrets."""

    def mask(value: str | UnsetType) -> str | UnsetType:
        return UNSET if value is UNSET else mask_value(value)

    git_auth = msgspec.structs.replace(
        config.git_auth,
        github_token=mask(config.git_auth.github_token),
        gitlab_token=mask(config.git_auth.gitlab_token),
    )
    return msgspec.structs.replace(
        config,
        env_vars={key: mask_value(value) for key, value in config.env_vars.items()},
        git_auth=git_auth,
        kilocode_token=mask(config.kilocode_token),
        github_cli_pat=mask(config.github_cli_pat),
    )
