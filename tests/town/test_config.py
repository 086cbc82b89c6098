from __future__ import annotations

import apsw
import msgspec
import pytest
from msgspec import UNSET

from dos.kv import kv_get, kv_put
from town.config import (
    ContainerConfig,
    CustomInstructionsUpdate,
    GitAuth,
    RefineryUpdate,
    RoleModels,
    TownConfig,
    TownConfigUpdate,
    get_config,
    is_masked,
    mask_config,
    set_ownership,
    update_config,
)
from town.errors import BadRequest


def test_first_read_seeds_new_town_defaults(town: apsw.Connection) -> None:
    config = get_config(town)
    assert config.merge_strategy == "pr"
    assert config.staged_convoys_default is True
    assert config.refinery is not UNSET
    assert msgspec.to_builtins(config.refinery) == {
        "gates": [],
        "auto_merge": True,
        "require_clean_merge": True,
        "code_review": True,
        "review_mode": "comments",
        "auto_resolve_pr_feedback": True,
        "auto_resolve_merge_conflicts": True,
        "auto_merge_delay_minutes": 5,
    }
    assert kv_get(town, "town:config:newDefaultsSeeded") is True
    stored = kv_get(town, "town:config")
    assert stored["merge_strategy"] == "pr" and stored["env_vars"] == {}
    assert "default_model" not in stored and "kilocode_token" not in stored
    assert get_config(town) == config


def test_stored_config_is_not_reseeded(town: apsw.Connection) -> None:
    kv_put(town, "town:config", {"merge_strategy": "direct", "some_future_field": 1})
    config = get_config(town)
    assert config.merge_strategy == "direct" and config.refinery is UNSET
    assert kv_get(town, "town:config:newDefaultsSeeded") is None


def test_plain_fields_merge_shallowly(town: apsw.Connection) -> None:
    update_config(town, TownConfigUpdate(role_models=RoleModels(mayor="m1", polecat="p1")))
    config = update_config(
        town, TownConfigUpdate(role_models=RoleModels(refinery="r2"), max_polecats_per_rig=7)
    )
    assert config.role_models == RoleModels(refinery="r2")
    assert config.max_polecats_per_rig == 7
    assert config.merge_strategy == "pr"  # untouched
    assert get_config(town) == config


def test_env_vars_are_replaced_whole_but_masks_keep_stored_values(town: apsw.Connection) -> None:
    update_config(town, TownConfigUpdate(env_vars={"A": "alpha-secret", "B": "bravo", "C": "c"}))
    masked = mask_config(get_config(town)).env_vars
    assert masked == {"A": "****cret", "B": "****ravo", "C": "****"}
    config = update_config(
        town, TownConfigUpdate(env_vars={"A": masked["A"], "C": "new", "D": "****zzzz"})
    )
    assert config.env_vars == {"A": "alpha-secret", "C": "new"}


def test_git_auth_merges_per_key_with_mask_rule(town: apsw.Connection) -> None:
    update_config(
        town,
        TownConfigUpdate(
            git_auth=GitAuth(
                github_token="ghp_abcdefgh1234",
                gitlab_token="glpat-xyz9876",
                gitlab_instance_url="https://gitlab.example.com",
                platform_integration_id="inst-1",
            )
        ),
    )
    config = update_config(
        town,
        TownConfigUpdate(
            git_auth=GitAuth(
                github_token="****1234",
                gitlab_token="glpat-new",
                gitlab_instance_url="****.com",
            )
        ),
    )
    assert config.git_auth == GitAuth(
        github_token="ghp_abcdefgh1234",
        gitlab_token="glpat-new",
        gitlab_instance_url="https://gitlab.example.com",
        platform_integration_id="inst-1",
    )
    config = update_config(
        town, TownConfigUpdate(git_auth=GitAuth(platform_integration_id="inst-2"))
    )
    assert config.git_auth.github_token == "ghp_abcdefgh1234"
    assert config.git_auth.platform_integration_id == "inst-2"


def test_cli_pat_and_kilocode_token_masks_keep_stored(town: apsw.Connection) -> None:
    update_config(town, TownConfigUpdate(github_cli_pat="pat-secret-9999"))
    set_ownership(town, kilocode_token="kilo-token-5555")
    echoed = mask_config(get_config(town))
    config = update_config(
        town,
        TownConfigUpdate(
            github_cli_pat=echoed.github_cli_pat, kilocode_token=echoed.kilocode_token
        ),
    )
    assert config.github_cli_pat == "pat-secret-9999"
    assert config.kilocode_token == "kilo-token-5555"
    assert update_config(town, TownConfigUpdate(github_cli_pat="other")).github_cli_pat == "other"


def test_refinery_container_and_instructions_merge_field_by_field(town: apsw.Connection) -> None:
    update_config(
        town,
        TownConfigUpdate(
            container=ContainerConfig(sleep_after_minutes=30),
            custom_instructions=CustomInstructionsUpdate(polecat="be brief", mayor="be kind"),
        ),
    )
    config = update_config(
        town,
        TownConfigUpdate(
            refinery=RefineryUpdate(review_mode="rework", gates=["make test"]),
            container=ContainerConfig(),
            custom_instructions=CustomInstructionsUpdate(polecat=None, refinery="strict"),
        ),
    )
    assert config.refinery is not UNSET
    assert config.refinery.review_mode == "rework"
    assert config.refinery.gates == ["make test"]
    assert config.refinery.auto_merge_delay_minutes == 5  # kept from the seeded defaults
    assert config.refinery.auto_resolve_pr_feedback is True
    assert config.container == ContainerConfig(sleep_after_minutes=30)
    assert msgspec.to_builtins(config.custom_instructions) == {
        "refinery": "strict",
        "mayor": "be kind",
    }
    disabled = update_config(
        town, TownConfigUpdate(refinery=RefineryUpdate(auto_merge_delay_minutes=None))
    )
    assert disabled.refinery is not UNSET and disabled.refinery.auto_merge_delay_minutes is None


def test_empty_default_model_unsets_it(town: apsw.Connection) -> None:
    assert update_config(town, TownConfigUpdate(default_model="m")).default_model == "m"
    assert update_config(town, TownConfigUpdate(default_model="")).default_model is UNSET
    assert "default_model" not in kv_get(town, "town:config")


def test_ownership_fields_are_ignored_by_updates(town: apsw.Connection) -> None:
    set_ownership(
        town,
        owner_user_id="u1",
        owner_type="org",
        owner_id="o1",
        created_by_user_id="u1",
        organization_id="o1",
    )
    config = update_config(
        town,
        TownConfigUpdate(
            owner_user_id="attacker",
            owner_type="user",
            owner_id="x",
            created_by_user_id="x",
            organization_id=None,
            git_author_name="Bot",
        ),
    )
    assert (config.owner_user_id, config.owner_type, config.owner_id) == ("u1", "org", "o1")
    assert (config.created_by_user_id, config.organization_id) == ("u1", "o1")
    assert config.git_author_name == "Bot"


def test_update_decoded_from_the_whole_masked_config_is_accepted(town: apsw.Connection) -> None:
    set_ownership(town, owner_user_id="u1", kilocode_token="tok-123456")
    update_config(town, TownConfigUpdate(env_vars={"K": "secret-value"}))
    wire = msgspec.json.encode(mask_config(get_config(town)))
    update = msgspec.json.decode(wire, type=TownConfigUpdate)
    config = update_config(town, update)
    assert config.env_vars == {"K": "secret-value"} and config.kilocode_token == "tok-123456"
    with pytest.raises(msgspec.ValidationError, match="bogus"):
        msgspec.json.decode(b'{"bogus": 1}', type=TownConfigUpdate)


def test_invalid_values_are_bad_request_naming_the_field(town: apsw.Connection) -> None:
    before = kv_get(town, "town:config") or msgspec.to_builtins(get_config(town))
    with pytest.raises(BadRequest, match=r"\$\.max_polecats_per_rig"):
        update_config(town, TownConfigUpdate(max_polecats_per_rig=99))
    with pytest.raises(BadRequest, match=r"\$\.container\.sleep_after_minutes"):
        update_config(town, TownConfigUpdate(container=ContainerConfig(sleep_after_minutes=1)))
    with pytest.raises(BadRequest, match=r"\$\.custom_instructions\.polecat"):
        update_config(
            town, TownConfigUpdate(custom_instructions=CustomInstructionsUpdate(polecat="x" * 2001))
        )
    assert kv_get(town, "town:config") == before


def test_mask_config_masks_every_secret_and_nothing_else() -> None:
    config = TownConfig(
        env_vars={"LONG": "abcdefgh", "SHORT": "abc"},
        git_auth=GitAuth(
            github_token="ghp_1234567890",
            gitlab_token="gl",
            gitlab_instance_url="https://gl.example",
        ),
        kilocode_token="kilo-abcd",
        github_cli_pat="pat-wxyz",
        git_author_name="Name",
    )
    masked = mask_config(config)
    assert masked.env_vars == {"LONG": "****efgh", "SHORT": "****"}
    assert masked.git_auth == GitAuth(
        github_token="****7890", gitlab_token="****", gitlab_instance_url="https://gl.example"
    )
    assert (masked.kilocode_token, masked.github_cli_pat) == ("****abcd", "****wxyz")
    assert masked.git_author_name == "Name"
    assert config.env_vars["LONG"] == "abcdefgh"  # the input is not modified


def test_is_masked() -> None:
    assert is_masked("****") and is_masked("****abcd") and is_masked("****a")
    assert not is_masked("****abcde") and not is_masked("***abcd") and not is_masked("secret")
