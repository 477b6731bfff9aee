"""Providers and their configuration: what each accepts, what it refuses, and that secrets stay secret."""

import json
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from tests.unit.builders import ROLE_ARN
from vmx.connections.config_changes import new_config
from vmx.errors import InvalidInput
from vmx.providers.catalog import PROVIDERS, provider_by_id
from vmx.providers.config import ApiKeyConfig, BedrockConfig, ConfigModel

API_KEY_PROVIDERS = ["openai", "anthropic", "gemini", "groq", "perplexity"]
BEDROCK_PROVIDERS = ["aws-bedrock", "aws-bedrock-invoke"]
ALL_PROVIDERS = API_KEY_PROVIDERS + BEDROCK_PROVIDERS
CANARY = "CANARY-5f1d0c-do-not-echo"


def validate(provider_id: str, config: dict[str, Any]) -> ConfigModel:
    return provider_by_id(provider_id).config_model.model_validate(config)


def as_api_key_config(config: ConfigModel) -> ApiKeyConfig:
    assert isinstance(config, ApiKeyConfig)
    return config


def as_bedrock_config(config: ConfigModel) -> BedrockConfig:
    assert isinstance(config, BedrockConfig)
    return config


def error_locations(exc: ValidationError) -> set[tuple[str | int, ...]]:
    return {tuple(error["loc"]) for error in exc.errors()}


def test_the_catalog_offers_exactly_the_documented_providers() -> None:
    assert {provider.value for provider in PROVIDERS} == set(ALL_PROVIDERS)


@pytest.mark.parametrize(
    ("provider_id", "api_key"),
    [
        ("openai", "sk-..."),
        ("anthropic", "sk-ant-..."),
        ("gemini", "AIza..."),
        ("groq", "gsk_..."),
        ("perplexity", "pplx-..."),
    ],
)
def test_api_key_providers_accept_the_documented_config(provider_id: str, api_key: str) -> None:
    config = as_api_key_config(validate(provider_id, {"apiKey": api_key}))

    assert config.api_key.get_secret_value() == api_key
    assert config.base_url is None


@pytest.mark.parametrize("provider_id", BEDROCK_PROVIDERS)
def test_bedrock_accepts_a_role_with_performance_and_guardrail_settings(provider_id: str) -> None:
    config = as_bedrock_config(
        validate(
            provider_id,
            {
                "region": "us-east-1",
                "iamRoleArn": ROLE_ARN,
                "performanceConfig": {"latency": "optimized"},
                "guardrailConfig": {"guardrailIdentifier": "gr1abc2def3g", "guardrailVersion": "3"},
            },
        )
    )

    assert config.region == "us-east-1"
    assert config.iam_role_arn == ROLE_ARN
    assert config.performance_config is not None
    assert config.performance_config.latency == "optimized"
    assert config.guardrail_config is not None
    assert config.guardrail_config.guardrail_version == "3"
    assert config.guardrail_config.trace == "enabled"


@pytest.mark.parametrize("provider_id", BEDROCK_PROVIDERS)
@pytest.mark.parametrize("session_token", [None, "FwoGZXIvYXdzE..."])
def test_bedrock_accepts_the_legacy_access_keys(provider_id: str, session_token: str | None) -> None:
    raw = {"region": "us-east-1", "accessKeyId": "AKIAEXAMPLE", "secretAccessKey": "wJalrXUtnFEMI/K7MDENG"}
    if session_token is not None:
        raw["sessionToken"] = session_token

    config = as_bedrock_config(validate(provider_id, raw))

    assert config.access_key_id == SecretStr("AKIAEXAMPLE")
    assert config.secret_access_key == SecretStr("wJalrXUtnFEMI/K7MDENG")
    assert config.session_token == (None if session_token is None else SecretStr(session_token))


@pytest.mark.parametrize("latency", ["standard", "optimized"])
def test_bedrock_latency_is_standard_or_optimized(latency: str) -> None:
    config = as_bedrock_config(
        validate(
            "aws-bedrock", {"region": "us-east-1", "iamRoleArn": ROLE_ARN, "performanceConfig": {"latency": latency}}
        )
    )

    assert config.performance_config is not None
    assert config.performance_config.latency == latency


@pytest.mark.parametrize("latency", ["fast", "Standard", "", None])
def test_bedrock_refuses_other_latencies(latency: str | None) -> None:
    with pytest.raises(ValidationError) as caught:
        validate(
            "aws-bedrock", {"region": "us-east-1", "iamRoleArn": ROLE_ARN, "performanceConfig": {"latency": latency}}
        )

    assert ("performanceConfig", "latency") in error_locations(caught.value)


@pytest.mark.parametrize("provider_id", BEDROCK_PROVIDERS)
def test_bedrock_roles_take_an_external_id(provider_id: str) -> None:
    config = as_bedrock_config(
        validate(provider_id, {"region": "us-east-1", "iamRoleArn": ROLE_ARN, "externalId": "vmx:tenant-42/prod"})
    )

    assert config.external_id == "vmx:tenant-42/prod"


@pytest.mark.parametrize("external_id", ["x", "has space", "semi;colon", "a" * 1225])
def test_bedrock_refuses_malformed_external_ids(external_id: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate("aws-bedrock", {"region": "us-east-1", "iamRoleArn": ROLE_ARN, "externalId": external_id})

    assert ("externalId",) in error_locations(caught.value)


def test_an_external_id_needs_a_role() -> None:
    keys = {"accessKeyId": "AKIAEXAMPLE", "secretAccessKey": "secret"}
    with pytest.raises(ValidationError, match="externalId goes with iamRoleArn"):
        validate("aws-bedrock", {"region": "us-east-1", **keys, "externalId": "vmx-42"})


@pytest.mark.parametrize(
    "identifier",
    ["gr1abc2def3g", "arn:aws:bedrock:us-east-1:123456789012:guardrail/gr1abc2def3g"],
)
@pytest.mark.parametrize("version", ["1", "12", "DRAFT"])
def test_guardrails_take_an_id_or_arn_and_a_version_number_or_draft(identifier: str, version: str) -> None:
    config = as_bedrock_config(
        validate(
            "aws-bedrock",
            {
                "region": "us-east-1",
                "iamRoleArn": ROLE_ARN,
                "guardrailConfig": {
                    "guardrailIdentifier": identifier,
                    "guardrailVersion": version,
                    "trace": "disabled",
                },
            },
        )
    )

    assert config.guardrail_config is not None
    assert (config.guardrail_config.guardrail_identifier, config.guardrail_config.guardrail_version) == (
        identifier,
        version,
    )
    assert config.guardrail_config.trace == "disabled"


@pytest.mark.parametrize(
    ("guardrail", "field"),
    [
        ({"guardrailIdentifier": "Guard Rail", "guardrailVersion": "1"}, "guardrailIdentifier"),
        ({"guardrailIdentifier": "arn:aws:s3:::bucket/gr1", "guardrailVersion": "1"}, "guardrailIdentifier"),
        ({"guardrailIdentifier": "gr1", "guardrailVersion": "0"}, "guardrailVersion"),
        ({"guardrailIdentifier": "gr1", "guardrailVersion": "draft"}, "guardrailVersion"),
        ({"guardrailIdentifier": "gr1", "guardrailVersion": "v1"}, "guardrailVersion"),
        ({"guardrailIdentifier": "gr1", "guardrailVersion": "1", "trace": "verbose"}, "trace"),
        ({"guardrailVersion": "1"}, "guardrailIdentifier"),
    ],
)
def test_guardrails_refuse_malformed_settings(guardrail: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate("aws-bedrock", {"region": "us-east-1", "iamRoleArn": ROLE_ARN, "guardrailConfig": guardrail})

    assert ("guardrailConfig", field) in error_locations(caught.value)


@pytest.mark.parametrize(
    ("provider_id", "config", "location"),
    [
        ("openai", {"apiKey": "sk-1", "organization": "org-1"}, ("organization",)),
        ("anthropic", {"apiKey": "sk-1", "api_key": "sk-1"}, ("api_key",)),
        ("aws-bedrock", {"region": "us-east-1", "iamRoleArn": ROLE_ARN, "profile": "default"}, ("profile",)),
        (
            "aws-bedrock-invoke",
            {"region": "us-east-1", "iamRoleArn": ROLE_ARN, "performanceConfig": {"latency": "standard", "tier": 1}},
            ("performanceConfig", "tier"),
        ),
        (
            "aws-bedrock",
            {
                "region": "us-east-1",
                "iamRoleArn": ROLE_ARN,
                "guardrailConfig": {"guardrailIdentifier": "gr1", "guardrailVersion": "1", "mode": "x"},
            },
            ("guardrailConfig", "mode"),
        ),
    ],
)
def test_unknown_fields_are_refused_with_their_path(
    provider_id: str, config: dict[str, Any], location: tuple[str, ...]
) -> None:
    with pytest.raises(InvalidInput) as caught:
        new_config(provider_by_id(provider_id), config)

    assert "config." + ".".join(location) in {detail.field for detail in caught.value.details}
    assert any(detail.type == "extra_forbidden" for detail in caught.value.details)


def test_snake_case_names_are_not_an_alternative_to_the_wire_names() -> None:
    with pytest.raises(ValidationError) as caught:
        validate("openai", {"api_key": "sk-1"})

    assert error_locations(caught.value) == {("api_key",), ("apiKey",)}


@pytest.mark.parametrize("value", ["google", "Google"])
def test_google_is_refused_with_a_pointer_to_gemini(value: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        provider_by_id(value)

    assert "'gemini'" in caught.value.message
    assert [(detail.field, detail.type) for detail in caught.value.details] == [("provider", "unknown_provider")]


def test_bedrock_is_refused_with_a_pointer_to_aws_bedrock() -> None:
    with pytest.raises(InvalidInput) as caught:
        provider_by_id("bedrock")

    assert "'aws-bedrock'" in caught.value.message


@pytest.mark.parametrize("value", ["mistral", "OpenAI", "", "aws_bedrock"])
def test_an_unknown_provider_lists_the_valid_ids(value: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        provider_by_id(value)

    for provider_id in ALL_PROVIDERS:
        assert provider_id in caught.value.message
    assert caught.value.details[0].field == "provider"


@pytest.mark.parametrize("provider_id", ALL_PROVIDERS)
def test_provider_by_id_finds_each_provider(provider_id: str) -> None:
    assert provider_by_id(provider_id).id.value == provider_id


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"iamRoleArn": ROLE_ARN, "accessKeyId": "AKIA1", "secretAccessKey": "s"},
            "give either iamRoleArn or accessKeyId + secretAccessKey, not both",
        ),
        ({}, "give either iamRoleArn or accessKeyId + secretAccessKey"),
        ({"accessKeyId": "AKIA1"}, "accessKeyId and secretAccessKey go together"),
        ({"secretAccessKey": "s"}, "accessKeyId and secretAccessKey go together"),
        ({"sessionToken": "t"}, "give either iamRoleArn or accessKeyId + secretAccessKey"),
        ({"iamRoleArn": ROLE_ARN, "sessionToken": "t"}, "sessionToken needs accessKeyId and secretAccessKey"),
    ],
)
@pytest.mark.parametrize("provider_id", BEDROCK_PROVIDERS)
def test_bedrock_needs_exactly_one_way_to_authenticate(provider_id: str, config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate(provider_id, {"region": "us-east-1", **config})

    assert [error["msg"].removeprefix("Value error, ") for error in caught.value.errors()] == [message]


@pytest.mark.parametrize(
    ("base_url", "stored"),
    [
        ("https://api.example.com/v1", "https://api.example.com/v1"),
        ("https://api.example.com/v1/", "https://api.example.com/v1"),
        ("https://proxy.internal:8443/", "https://proxy.internal:8443"),
        ("http://127.0.0.1:4000/v1", "http://127.0.0.1:4000/v1"),
        ("http://[::1]:11434/", "http://[::1]:11434"),
        ("http://localhost:8080/openai/", "http://localhost:8080/openai"),
    ],
)
def test_base_url_accepts_https_and_loopback_http_and_drops_a_trailing_slash(base_url: str, stored: str) -> None:
    change = new_config(provider_by_id("openai"), {"apiKey": "sk-1", "baseUrl": base_url})

    assert change.settings == {"baseUrl": stored}


@pytest.mark.parametrize(
    "base_url",
    [
        "http://api.example.com/v1",
        "http://10.0.0.1:4000",
        "http://localhost.example.com",
        "http://127.0.0.1.nip.io",
        "ftp://api.example.com",
        "api.example.com/v1",
        "https://",
        "https://api.example.com/v1?api-version=1",
        "https://api.example.com/v1#section",
        "https://user:password@api.example.com",
        "https://user@api.example.com",
        "https://api.example.com/" + "a" * 2048,
    ],
)
@pytest.mark.parametrize("provider_id", API_KEY_PROVIDERS)
def test_base_url_refuses_what_could_leak_the_key(provider_id: str, base_url: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate(provider_id, {"apiKey": "sk-1", "baseUrl": base_url})

    assert error_locations(caught.value) == {("baseUrl",)}


@pytest.mark.parametrize("region", ["us-east-1", "eu-central-1", "ap-southeast-2", "us-gov-west-1", "cn-north-1"])
def test_bedrock_accepts_aws_regions(region: str) -> None:
    assert as_bedrock_config(validate("aws-bedrock", {"region": region, "iamRoleArn": ROLE_ARN})).region == region


@pytest.mark.parametrize("region", ["US-EAST-1", "us-east", "useast1", "us-east-1 ", "us-east-1\n", "", "moon-base-1"])
def test_bedrock_refuses_what_is_not_a_region(region: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate("aws-bedrock", {"region": region, "iamRoleArn": ROLE_ARN})

    assert error_locations(caught.value) == {("region",)}


@pytest.mark.parametrize(
    "arn",
    [
        ROLE_ARN,
        "arn:aws:iam::123456789012:role/service-role/Bedrock_Access+1",
        "arn:aws-us-gov:iam::123456789012:role/Vmx",
        "arn:aws-cn:iam::123456789012:role/Vmx",
    ],
)
def test_bedrock_accepts_iam_role_arns(arn: str) -> None:
    config = as_bedrock_config(validate("aws-bedrock", {"region": "us-east-1", "iamRoleArn": arn}))

    assert config.iam_role_arn == arn


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::123456789012:user/Vmx",
        "arn:aws:iam::12345:role/Vmx",
        "arn:aws:sts::123456789012:assumed-role/Vmx/session",
        "arn:aws:iam::123456789012:role/",
        "arn:aws:iam::123456789012:role/has space",
        "VmxBedrockAccess",
    ],
)
def test_bedrock_refuses_what_is_not_a_role_arn(arn: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate("aws-bedrock", {"region": "us-east-1", "iamRoleArn": arn})

    assert ("iamRoleArn",) in error_locations(caught.value)


@pytest.mark.parametrize("provider_id", API_KEY_PROVIDERS)
def test_api_key_providers_have_one_secret(provider_id: str) -> None:
    assert provider_by_id(provider_id).secret_fields == {"apiKey"}


@pytest.mark.parametrize("provider_id", BEDROCK_PROVIDERS)
def test_bedrock_secrets_are_the_access_keys(provider_id: str) -> None:
    assert provider_by_id(provider_id).secret_fields == {"accessKeyId", "secretAccessKey", "sessionToken"}


def _property_schema(schema: dict[str, Any], name: str) -> dict[str, Any]:
    """The schema of a property, looking through an `anyOf` with null."""
    property_schema: dict[str, Any] = schema["properties"][name]
    non_null = [option for option in property_schema.get("anyOf", [property_schema]) if option.get("type") != "null"]
    assert len(non_null) == 1
    option: dict[str, Any] = non_null[0]
    return option


@pytest.mark.parametrize("provider_id", ALL_PROVIDERS)
def test_config_schema_marks_secrets_write_only_passwords(provider_id: str) -> None:
    provider = provider_by_id(provider_id)
    schema = provider.config_schema()

    for name in schema["properties"]:
        property_schema = _property_schema(schema, name)
        if name in provider.secret_fields:
            assert (property_schema.get("format"), property_schema.get("writeOnly")) == ("password", True)
        else:
            assert "format" not in property_schema or property_schema["format"] != "password"
    assert provider.secret_fields <= set(schema["properties"])


@pytest.mark.parametrize("provider_id", ALL_PROVIDERS)
def test_config_schema_forbids_additional_properties_at_every_level(provider_id: str) -> None:
    schema = provider_by_id(provider_id).config_schema()

    assert schema["additionalProperties"] is False
    for definition in schema.get("$defs", {}).values():
        assert definition["additionalProperties"] is False


def test_config_schema_uses_wire_names() -> None:
    assert set(provider_by_id("aws-bedrock").config_schema()["properties"]) == {
        "region",
        "iamRoleArn",
        "externalId",
        "accessKeyId",
        "secretAccessKey",
        "sessionToken",
        "performanceConfig",
        "guardrailConfig",
    }


LEAKY_CONFIGS = [
    pytest.param("openai", {"apiKey": CANARY * 200}, id="secret-too-long"),
    pytest.param("openai", {"apiKey": CANARY, "organisation": CANARY}, id="unknown-field-holding-it"),
    pytest.param("groq", {"apiKey": CANARY, "baseUrl": "http://api.example.com"}, id="invalid-neighbour"),
    pytest.param(
        "aws-bedrock",
        {"region": "us-east-1", "iamRoleArn": ROLE_ARN, "accessKeyId": CANARY, "secretAccessKey": CANARY},
        id="role-and-keys",
    ),
    pytest.param("aws-bedrock", {"region": "us-east-1", "secretAccessKey": CANARY}, id="half-a-key-pair"),
    pytest.param("aws-bedrock-invoke", {"region": "mars", "sessionToken": CANARY}, id="session-token-alone"),
]


@pytest.mark.parametrize(("provider_id", "config"), LEAKY_CONFIGS)
def test_pydantic_errors_do_not_echo_a_secret(provider_id: str, config: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as caught:
        validate(provider_id, config)

    # pydantic always keeps the raw input under the `input` key of `errors()` (hide_input_in_errors
    # only affects the text), which is why our code asks for errors(include_input=False)
    errors_without_input = [{k: v for k, v in error.items() if k != "input"} for error in caught.value.errors()]
    assert CANARY not in str(caught.value)
    assert CANARY not in repr(caught.value)
    assert CANARY not in json.dumps(caught.value.errors(include_input=False), default=str)
    assert CANARY not in json.dumps(errors_without_input, default=str)


@pytest.mark.parametrize(("provider_id", "config"), LEAKY_CONFIGS)
def test_invalid_input_from_a_config_does_not_echo_a_secret(provider_id: str, config: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput) as caught:
        new_config(provider_by_id(provider_id), config)

    assert caught.value.details
    assert CANARY not in str(caught.value)
    assert CANARY not in caught.value.message
    assert CANARY not in json.dumps([detail.model_dump() for detail in caught.value.details])


def test_a_secret_never_shows_when_a_config_is_printed() -> None:
    config = validate("aws-bedrock", {"region": "us-east-1", "accessKeyId": CANARY, "secretAccessKey": CANARY})

    assert CANARY not in str(config)
    assert CANARY not in repr(config)


@pytest.mark.parametrize("provider_id", ["openai", "aws-bedrock"])
def test_a_secret_that_is_not_valid_unicode_is_refused(provider_id: str) -> None:
    secret = json.loads('"sk-\\ud800"')
    config = (
        {"apiKey": secret}
        if provider_id == "openai"
        else {
            "region": "us-east-1",
            "accessKeyId": "AKIA1",
            "secretAccessKey": secret,
        }
    )

    with pytest.raises(InvalidInput):
        new_config(provider_by_id(provider_id), config)
