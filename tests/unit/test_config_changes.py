"""Provider configuration on create and update: JSON merge patch, masked secrets, credential-bound fields."""

import copy
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from tests.unit.builders import ROLE_ARN
from vmx.connections.config_changes import merge_patch, merged_config, new_config
from vmx.connections.models import MASK
from vmx.errors import InvalidInput
from vmx.providers.catalog import provider_by_id

OPENAI = provider_by_id("openai")
BEDROCK = provider_by_id("aws-bedrock")


def revealed(secrets: dict[str, SecretStr]) -> dict[str, str]:
    return {name: secret.get_secret_value() for name, secret in secrets.items()}


# RFC 7396, Appendix A. merge_patch works on objects; the examples whose target or patch is not an
# object are applied one level down, to a member "k", which is how they occur inside a configuration.
RFC_7396_EXAMPLES = [
    pytest.param({"a": "b"}, {"a": "c"}, {"a": "c"}, id="replace"),
    pytest.param({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}, id="add"),
    pytest.param({"a": "b"}, {"a": None}, {}, id="remove"),
    pytest.param({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}, id="remove-one-of-two"),
    pytest.param({"a": ["b"]}, {"a": "c"}, {"a": "c"}, id="array-replaced-by-string"),
    pytest.param({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}, id="string-replaced-by-array"),
    pytest.param({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}, id="nested-merge"),
    pytest.param({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}, id="arrays-replaced-whole"),
    pytest.param({"k": ["a", "b"]}, {"k": ["c", "d"]}, {"k": ["c", "d"]}, id="array-by-array"),
    pytest.param({"k": {"a": "b"}}, {"k": ["c"]}, {"k": ["c"]}, id="object-by-array"),
    pytest.param({"k": {"a": "foo"}}, {"k": None}, {}, id="object-by-null"),
    pytest.param({"k": {"a": "foo"}}, {"k": "bar"}, {"k": "bar"}, id="object-by-string"),
    pytest.param({"e": None}, {"a": 1}, {"e": None, "a": 1}, id="target-nulls-kept"),
    pytest.param(
        {"k": [1, 2]},
        {"k": {"a": "b", "c": None}},
        {"k": {"a": "b"}},
        id="array-by-object-with-null",
    ),
    pytest.param(
        {},
        {"a": {"bb": {"ccc": None}}},
        {"a": {"bb": {}}},
        id="new-member-with-nested-null",
    ),
]


@pytest.mark.parametrize(("target", "patch", "expected"), RFC_7396_EXAMPLES)
def test_merge_patch_follows_the_rfc_7396_examples(
    target: dict[str, Any], patch: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert merge_patch(target, patch) == expected


json_scalars = st.one_of(st.booleans(), st.integers(), st.text(max_size=5))
json_values = st.recursive(
    st.one_of(st.none(), json_scalars),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    max_leaves=10,
)
json_objects = st.dictionaries(st.text(max_size=3), json_values, max_size=4)
# Stored configurations hold no nulls (they are dumped with exclude_none).
stored_objects = st.dictionaries(
    st.text(max_size=3),
    st.recursive(
        json_scalars,
        lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)),
        max_leaves=10,
    ),
    max_size=4,
)


def contains_null_member(value: Any) -> bool:
    if isinstance(value, dict):
        return any(member is None or contains_null_member(member) for member in value.values())
    return False


@settings(max_examples=80, deadline=None)
@given(stored_objects, json_objects)
def test_merge_patch_members_are_replaced_removed_or_kept(target: dict[str, Any], patch: dict[str, Any]) -> None:
    target_before, patch_before = copy.deepcopy(target), copy.deepcopy(patch)

    merged = merge_patch(target, patch)

    assert (target, patch) == (target_before, patch_before)
    for name in target.keys() - patch.keys():
        assert merged[name] == target[name]
    for name, value in patch.items():
        if value is None:
            assert name not in merged
        elif not isinstance(value, dict):
            assert merged[name] == value


@settings(max_examples=80, deadline=None)
@given(stored_objects, json_objects)
@example(target={}, patch={"a": {"b": None}})
def test_merge_patch_leaves_no_null_members_and_is_idempotent(target: dict[str, Any], patch: dict[str, Any]) -> None:
    merged = merge_patch(target, patch)

    assert not contains_null_member(merged)
    assert merge_patch(merged, patch) == merged


@pytest.mark.parametrize(
    ("provider_id", "config", "secret"),
    [
        ("openai", {"apiKey": MASK}, "apiKey"),
        ("aws-bedrock", {"region": "us-east-1", "accessKeyId": "AKIA1", "secretAccessKey": MASK}, "secretAccessKey"),
        (
            "aws-bedrock",
            {"region": "us-east-1", "accessKeyId": "AKIA1", "secretAccessKey": "s", "sessionToken": MASK},
            "sessionToken",
        ),
    ],
)
def test_a_new_config_refuses_the_mask_for_a_secret(provider_id: str, config: dict[str, Any], secret: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        new_config(provider_by_id(provider_id), config)

    assert [detail.field for detail in caught.value.details] == [f"config.{secret}"]


def test_a_new_config_splits_settings_from_secrets() -> None:
    change = new_config(
        BEDROCK,
        {
            "region": "eu-west-1",
            "accessKeyId": "AKIA1",
            "secretAccessKey": "s3cr3t",
            "guardrailConfig": {"guardrailIdentifier": "gr1", "guardrailVersion": "DRAFT"},
        },
    )

    assert change.settings == {
        "region": "eu-west-1",
        "guardrailConfig": {"guardrailIdentifier": "gr1", "guardrailVersion": "DRAFT", "trace": "enabled"},
    }
    assert revealed(change.new_secrets) == {"accessKeyId": "AKIA1", "secretAccessKey": "s3cr3t"}
    assert change.kept == frozenset()
    assert change.touches_credentials


def test_an_invalid_new_config_names_the_field_under_config() -> None:
    with pytest.raises(InvalidInput) as caught:
        new_config(OPENAI, {"apiKey": "sk-1", "baseUrl": "http://api.example.com"})

    assert [detail.field for detail in caught.value.details] == ["config.baseUrl"]
    assert caught.value.message.startswith("config.baseUrl: must use https")


@pytest.mark.parametrize("config_patch", [{}, {"apiKey": MASK}], ids=["left-out", "masked"])
def test_a_stored_secret_left_out_or_masked_is_kept(config_patch: dict[str, Any]) -> None:
    change = merged_config(OPENAI, {"baseUrl": "https://api.example.com"}, frozenset({"apiKey"}), config_patch)

    assert change.settings == {"baseUrl": "https://api.example.com"}
    assert change.kept == {"apiKey"}
    assert change.new_secrets == {}
    assert not change.touches_credentials


def test_a_secret_sent_replaces_the_stored_one() -> None:
    change = merged_config(OPENAI, {}, frozenset({"apiKey"}), {"apiKey": "sk-rotated"})

    assert revealed(change.new_secrets) == {"apiKey": "sk-rotated"}
    assert change.kept == frozenset()
    assert change.touches_credentials


def test_the_mask_for_a_secret_that_is_not_stored_is_refused() -> None:
    # Given a bedrock connection that uses a role, so no access keys are stored
    settings = {"region": "us-east-1", "iamRoleArn": ROLE_ARN}

    # When a PATCH switches to keys but sends the mask for one of them
    with pytest.raises(InvalidInput) as caught:
        merged_config(
            BEDROCK, settings, frozenset(), {"iamRoleArn": None, "accessKeyId": MASK, "secretAccessKey": "s3cr3t"}
        )

    # Then it is told to send the secret itself
    assert [detail.field for detail in caught.value.details] == ["config.accessKeyId"]
    assert "send the secret itself" in caught.value.message


def test_null_removes_a_member_so_bedrock_can_switch_from_a_role_to_keys() -> None:
    change = merged_config(
        BEDROCK,
        {"region": "us-east-1", "iamRoleArn": ROLE_ARN},
        frozenset(),
        {"iamRoleArn": None, "accessKeyId": "AKIA1", "secretAccessKey": "s3cr3t"},
    )

    assert change.settings == {"region": "us-east-1"}
    assert revealed(change.new_secrets) == {"accessKeyId": "AKIA1", "secretAccessKey": "s3cr3t"}


def test_bedrock_can_switch_from_keys_to_a_role_dropping_the_keys() -> None:
    change = merged_config(
        BEDROCK,
        {"region": "us-east-1"},
        frozenset({"accessKeyId", "secretAccessKey", "sessionToken"}),
        {"iamRoleArn": ROLE_ARN, "accessKeyId": None, "secretAccessKey": None, "sessionToken": None},
    )

    assert change.settings == {"region": "us-east-1", "iamRoleArn": ROLE_ARN}
    assert (change.new_secrets, change.kept) == ({}, frozenset())


def test_switching_to_a_role_without_removing_the_keys_is_refused() -> None:
    with pytest.raises(InvalidInput, match="not both"):
        merged_config(
            BEDROCK, {"region": "us-east-1"}, frozenset({"accessKeyId", "secretAccessKey"}), {"iamRoleArn": ROLE_ARN}
        )


def test_null_removes_one_secret_and_keeps_the_others() -> None:
    change = merged_config(
        BEDROCK,
        {"region": "us-east-1"},
        frozenset({"accessKeyId", "secretAccessKey", "sessionToken"}),
        {"sessionToken": None},
    )

    assert change.kept == {"accessKeyId", "secretAccessKey"}
    assert change.new_secrets == {}


def test_a_nested_setting_is_merged_member_by_member() -> None:
    stored = {
        "region": "us-east-1",
        "iamRoleArn": ROLE_ARN,
        "guardrailConfig": {"guardrailIdentifier": "gr1", "guardrailVersion": "1", "trace": "enabled"},
    }

    change = merged_config(BEDROCK, stored, frozenset(), {"guardrailConfig": {"guardrailVersion": "2"}})

    assert change.settings["guardrailConfig"] == {
        "guardrailIdentifier": "gr1",
        "guardrailVersion": "2",
        "trace": "enabled",
    }


def test_a_null_inside_a_new_nested_setting_falls_back_to_its_default() -> None:
    change = merged_config(
        BEDROCK,
        {"region": "us-east-1", "iamRoleArn": ROLE_ARN},
        frozenset(),
        {"guardrailConfig": {"guardrailIdentifier": "gr1", "guardrailVersion": "1", "trace": None}},
    )

    assert change.settings["guardrailConfig"]["trace"] == "enabled"


@pytest.mark.parametrize(
    ("stored", "config_patch"),
    [
        ({"baseUrl": "https://a.example.com"}, {"baseUrl": "https://b.example.com"}),
        ({}, {"baseUrl": "https://b.example.com"}),
        ({"baseUrl": "https://a.example.com"}, {"baseUrl": None}),
        ({"baseUrl": "https://a.example.com"}, {"baseUrl": "https://b.example.com", "apiKey": MASK}),
    ],
    ids=["changed", "added", "removed", "changed-with-mask"],
)
def test_changing_the_base_url_without_resending_the_api_key_is_refused(
    stored: dict[str, Any], config_patch: dict[str, Any]
) -> None:
    with pytest.raises(InvalidInput) as caught:
        merged_config(OPENAI, stored, frozenset({"apiKey"}), config_patch)

    assert [detail.field for detail in caught.value.details] == ["config.baseUrl"]
    assert "resend apiKey" in caught.value.message


def test_changing_the_base_url_with_the_api_key_is_accepted() -> None:
    change = merged_config(
        OPENAI,
        {"baseUrl": "https://a.example.com"},
        frozenset({"apiKey"}),
        {"baseUrl": "https://b.example.com/v1/", "apiKey": "sk-for-b"},
    )

    assert change.settings == {"baseUrl": "https://b.example.com/v1"}
    assert revealed(change.new_secrets) == {"apiKey": "sk-for-b"}


def test_keeping_the_base_url_keeps_the_api_key() -> None:
    change = merged_config(
        OPENAI, {"baseUrl": "https://a.example.com"}, frozenset({"apiKey"}), {"baseUrl": "https://a.example.com"}
    )

    assert change.kept == {"apiKey"}


def test_a_merged_config_is_validated_as_a_whole() -> None:
    with pytest.raises(InvalidInput) as caught:
        merged_config(BEDROCK, {"region": "us-east-1", "iamRoleArn": ROLE_ARN}, frozenset(), {"region": "Mars"})

    assert [detail.field for detail in caught.value.details] == ["config.region"]


def test_a_merged_config_refuses_unknown_fields() -> None:
    with pytest.raises(InvalidInput) as caught:
        merged_config(OPENAI, {}, frozenset({"apiKey"}), {"organization": "org-1"})

    assert [detail.field for detail in caught.value.details] == ["config.organization"]


def test_a_merged_config_error_does_not_echo_a_secret() -> None:
    canary = "sk-CANARY-8c1e"

    with pytest.raises(InvalidInput) as caught:
        merged_config(OPENAI, {}, frozenset({"apiKey"}), {"apiKey": canary * 500})

    assert canary not in str(caught.value)
    assert canary not in repr([detail.model_dump() for detail in caught.value.details])
