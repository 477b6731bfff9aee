"""AI connection routes end to end in-process: validation, storage on moto, ETags, pagination."""

import json
import uuid
from collections.abc import Mapping
from typing import Any

import pytest

from tests.functional.conftest import Tenant

OPENAI_SEED: dict[str, Any] = {
    "name": "OpenAI Production",
    "description": "OpenAI connection for production workloads",
    "provider": "openai",
    "config": {"apiKey": "sk-seed-example"},
    "capacity": [
        {"period": "minute", "requests": 100, "tokens": 100000},
        {"period": "hour", "requests": 5000, "tokens": 5000000},
    ],
}
BEDROCK_SEED: dict[str, Any] = {
    "name": "Bedrock",
    "provider": "aws-bedrock",
    "config": {
        "region": "us-east-1",
        "iamRoleArn": "arn:aws:iam::123456789012:role/vm-x-ai-bedrock-role",
        "performanceConfig": {"latency": "optimized"},
        "guardrailConfig": {"guardrailIdentifier": "abc123guardrail", "guardrailVersion": "DRAFT", "trace": "enabled"},
    },
}


def create(tenant: Tenant, body: Mapping[str, object]) -> dict[str, Any]:
    response = tenant.api.post(tenant.connections_path, body)
    assert response.status == 201, response.text
    created: dict[str, Any] = response.body
    return created


def test_the_seed_example_creates_a_connection_with_its_secret_masked(tenant: Tenant) -> None:
    response = tenant.api.post(tenant.connections_path, OPENAI_SEED)

    assert response.status == 201
    body = response.body
    assert body["name"] == "OpenAI Production"
    assert body["config"] == {"apiKey": "********"}
    assert body["capacity"][0] == {
        "period": "minute",
        "requests": 100,
        "tokens": 100000,
        "enabled": True,
        "dimension": None,
    }
    assert body["version"] == 1
    assert body["workspaceId"] == tenant.workspace_id
    assert body["createdBy"] == body["updatedBy"]
    assert body["discoveredCapacity"] is None
    assert response.headers["etag"] == '"1"'
    uuid.UUID(body["connectionId"])


def test_a_created_connection_reads_back_as_it_was_written(tenant: Tenant) -> None:
    created = create(tenant, BEDROCK_SEED)

    response = tenant.api.get(f"{tenant.connections_path}/{created['connectionId']}")

    assert response.status == 200
    assert response.body == created
    assert response.body["config"]["guardrailConfig"]["trace"] == "enabled"
    assert response.headers["etag"] == '"1"'


@pytest.mark.parametrize(
    ("provider", "config"),
    [
        ("openai", {"apiKey": "sk-1", "baseUrl": "https://proxy.example.com/v1"}),
        ("anthropic", {"apiKey": "sk-ant-1"}),
        ("gemini", {"apiKey": "AIza-1"}),
        ("groq", {"apiKey": "gsk_1"}),
        ("perplexity", {"apiKey": "pplx-1"}),
        ("aws-bedrock-invoke", {"region": "eu-west-1", "iamRoleArn": "arn:aws:iam::123456789012:role/r"}),
        ("aws-bedrock", {"region": "us-west-2", "accessKeyId": "AKIA1", "secretAccessKey": "s", "sessionToken": "t"}),
    ],
)
def test_every_provider_accepts_its_configuration(tenant: Tenant, provider: str, config: dict[str, str]) -> None:
    body = create(tenant, {"name": f"{provider} connection", "provider": provider, "config": config})

    secrets = {"apiKey", "accessKeyId", "secretAccessKey", "sessionToken"}
    assert body["config"] == {key: "********" if key in secrets else value for key, value in config.items()}


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({"name": "x", "provider": "google", "config": {"apiKey": "k"}}, "provider", "gemini"),
        ({"name": "x", "provider": "openai", "config": {"apiKey": "k", "region": "us"}}, "config.region", "Extra"),
        ({"name": "x", "provider": "openai", "config": {}}, "config.apiKey", "required"),
        ({"name": "a/b", "provider": "openai", "config": {"apiKey": "k"}}, "name", "'/'"),
        ({"provider": "openai", "config": {"apiKey": "k"}}, "name", "required"),
        ({"name": "x", "provider": "openai", "config": {"apiKey": "k"}, "extra": 1}, "extra", "Extra"),
        (
            {
                "name": "x",
                "provider": "openai",
                "config": {"apiKey": "k"},
                "capacity": [{"period": "Minute", "requests": 1}],
            },
            "capacity[0].period",
            "minute",
        ),
        (
            {
                "name": "x",
                "provider": "openai",
                "config": {"apiKey": "k"},
                "capacity": [{"period": "day", "requests": "5"}],
            },
            "capacity[0].requests",
            "integer",
        ),
        (
            {
                "name": "x",
                "provider": "openai",
                "config": {"apiKey": "k"},
                "capacity": [{"period": "day", "tokens": -1}],
            },
            "capacity[0].tokens",
            "greater than or equal",
        ),
        (
            {
                "name": "x",
                "provider": "openai",
                "config": {"apiKey": "k"},
                "capacity": [{"period": "day", "requests": 1}, {"period": "day", "tokens": 1}],
            },
            "capacity",
            "period 'day'",
        ),
        (
            {"name": "x", "provider": "openai", "config": {"apiKey": "k"}, "allowedModels": ["a", "a"]},
            "allowedModels",
            "once",
        ),
        (
            {"name": "x", "provider": "aws-bedrock", "config": {"region": "us-east-1"}},
            "config",
            "iamRoleArn",
        ),
        (
            {
                "name": "x",
                "provider": "aws-bedrock",
                "config": {"region": "us-east-1", "iamRoleArn": "arn:aws:iam::1:role/r"},
            },
            "config.iamRoleArn",
            "pattern",
        ),
        (
            {"name": "x", "provider": "openai", "config": {"apiKey": "k", "baseUrl": "http://proxy.example.com"}},
            "config.baseUrl",
            "https",
        ),
    ],
)
def test_bad_bodies_get_a_400_that_names_the_field(tenant: Tenant, body: object, field: str, fragment: str) -> None:
    response = tenant.api.post(tenant.connections_path, body)

    assert response.status == 400, response.text
    assert response.error["code"] == "invalid_request"
    fields = [detail["field"] for detail in response.error["details"]]
    assert field in fields
    assert fragment.lower() in json.dumps(response.error).lower()


def test_malformed_json_wrong_media_type_and_oversized_bodies_are_refused(tenant: Tenant) -> None:
    malformed = tenant.api.post(tenant.connections_path, raw=b'{"name": ')
    not_an_object = tenant.api.post(tenant.connections_path, [1, 2])
    form = tenant.api.post(
        tenant.connections_path, raw=b"name=x", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    huge = tenant.api.post(tenant.connections_path, {"name": "x" * 70_000})

    assert (malformed.status, malformed.error["details"][0]["field"]) == (400, "body")
    assert "not valid JSON" in malformed.error["message"]
    assert not_an_object.status == 400
    assert (form.status, form.error["code"]) == (415, "unsupported_media_type")
    assert (huge.status, huge.error["code"]) == (400, "body_too_large")


def test_bad_ids_are_400_and_unknown_ones_are_404(tenant: Tenant) -> None:
    bad = tenant.api.get(f"{tenant.connections_path}/not-a-uuid")
    missing_connection = tenant.api.get(f"{tenant.connections_path}/{uuid.uuid4()}")
    other_environment = f"{tenant.workspace_path}/environments/{uuid.uuid4()}/ai-connections"
    missing_environment = tenant.api.get(other_environment)
    creating_in_missing_environment = tenant.api.post(other_environment, OPENAI_SEED)

    assert (bad.status, bad.error["details"][0]["field"]) == (400, "connectionId")
    assert (missing_connection.status, missing_connection.error["code"]) == (404, "not_found")
    assert missing_environment.status == 404
    assert "environment" in missing_environment.error["message"]
    assert creating_in_missing_environment.status == 404


def test_names_are_unique_in_an_environment_ignoring_case(tenant: Tenant) -> None:
    create(tenant, OPENAI_SEED)

    clash = tenant.api.post(tenant.connections_path, {**OPENAI_SEED, "name": "openai production"})
    elsewhere = tenant.api.post(
        f"{tenant.workspace_path}/environments/{tenant.new_environment()}/ai-connections", OPENAI_SEED
    )

    assert (clash.status, clash.error["code"]) == (409, "name_taken")
    assert elsewhere.status == 201


def test_list_is_newest_first_paginated_and_filterable(tenant: Tenant) -> None:
    names = [f"connection {index}" for index in range(5)]
    for index, name in enumerate(names):
        provider = "anthropic" if index % 2 else "openai"
        create(tenant, {"name": name, "provider": provider, "config": {"apiKey": "k"}})

    first = tenant.api.get(f"{tenant.connections_path}?limit=2")
    second = tenant.api.get(f"{tenant.connections_path}?limit=2&nextToken={first.body['nextToken']}")
    third = tenant.api.get(f"{tenant.connections_path}?limit=2&nextToken={second.body['nextToken']}")
    anthropic = tenant.api.get(f"{tenant.connections_path}?provider=anthropic")

    pages = [first, second, third]
    listed = [item["name"] for page in pages for item in page.body["items"]]
    assert listed == list(reversed(names))
    assert third.body["nextToken"] is None
    assert [item["name"] for item in anthropic.body["items"]] == ["connection 3", "connection 1"]


def test_list_refuses_bad_queries(tenant: Tenant) -> None:
    too_many = tenant.api.get(f"{tenant.connections_path}?limit=1000")
    forged = tenant.api.get(f"{tenant.connections_path}?nextToken=eyJwayI6eyJTIjoiV1MjeCJ9fQ")
    unknown_provider = tenant.api.get(f"{tenant.connections_path}?provider=google")

    assert (too_many.status, too_many.error["details"][0]["field"]) == (400, "limit")
    assert (forged.status, forged.error["details"][0]["field"]) == (400, "nextToken")
    assert unknown_provider.status == 400
    assert "gemini" in unknown_provider.error["message"]


def test_patch_changes_only_what_it_names(tenant: Tenant) -> None:
    created = create(tenant, {**OPENAI_SEED, "allowedModels": ["gpt-4o", "gpt-4o-mini"]})
    path = f"{tenant.connections_path}/{created['connectionId']}"

    response = tenant.api.patch(path, {"capacity": [{"period": "minute", "requests": 200, "tokens": 200000}]})

    assert response.status == 200
    body = response.body
    assert body["capacity"] == [
        {"period": "minute", "requests": 200, "tokens": 200000, "enabled": True, "dimension": None}
    ]
    assert body["allowedModels"] == ["gpt-4o", "gpt-4o-mini"]
    assert body["description"] == OPENAI_SEED["description"]
    assert body["version"] == 2
    assert body["credentialsUpdatedAt"] == created["credentialsUpdatedAt"]
    assert response.headers["etag"] == '"2"'


def test_rotating_a_secret_replaces_it_and_moves_credentials_updated_at(tenant: Tenant) -> None:
    created = create(tenant, OPENAI_SEED)
    path = f"{tenant.connections_path}/{created['connectionId']}"

    rotated = tenant.api.patch(path, {"config": {"apiKey": "sk-rotated"}})

    assert rotated.status == 200
    assert rotated.body["credentialsUpdatedAt"] > created["credentialsUpdatedAt"]
    assert rotated.body["config"] == {"apiKey": "********"}


def test_region_changes_without_resending_bedrock_secrets(tenant: Tenant) -> None:
    created = create(
        tenant,
        {
            "name": "legacy bedrock",
            "provider": "aws-bedrock",
            "config": {"region": "us-east-1", "accessKeyId": "AKIAEXAMPLE", "secretAccessKey": "secret"},
        },
    )
    path = f"{tenant.connections_path}/{created['connectionId']}"

    moved = tenant.api.patch(path, {"config": {"region": "eu-central-1"}})
    to_role = tenant.api.patch(
        path,
        {"config": {"accessKeyId": None, "secretAccessKey": None, "iamRoleArn": "arn:aws:iam::123456789012:role/r"}},
    )

    assert moved.status == 200
    assert moved.body["config"] == {"region": "eu-central-1", "accessKeyId": "********", "secretAccessKey": "********"}
    assert moved.body["credentialsUpdatedAt"] == created["credentialsUpdatedAt"]
    assert to_role.status == 200
    assert to_role.body["config"] == {"region": "eu-central-1", "iamRoleArn": "arn:aws:iam::123456789012:role/r"}


def test_changing_provider_needs_a_complete_config(tenant: Tenant) -> None:
    created = create(tenant, OPENAI_SEED)
    path = f"{tenant.connections_path}/{created['connectionId']}"

    without = tenant.api.patch(path, {"provider": "anthropic"})
    with_config = tenant.api.patch(path, {"provider": "anthropic", "config": {"apiKey": "sk-ant"}})

    assert without.status == 400
    assert without.error["details"][0]["field"] == "config"
    assert with_config.status == 200
    assert with_config.body["provider"] == "anthropic"


def test_if_match_makes_updates_and_deletes_conditional(tenant: Tenant) -> None:
    created = create(tenant, OPENAI_SEED)
    path = f"{tenant.connections_path}/{created['connectionId']}"

    first = tenant.api.patch(path, {"description": "first"}, headers={"If-Match": '"1"'})
    stale = tenant.api.patch(path, {"description": "second"}, headers={"If-Match": '"1"'})
    malformed = tenant.api.patch(path, {"description": "third"}, headers={"If-Match": "version one"})
    stale_delete = tenant.api.delete(path, headers={"If-Match": '"1"'})
    deleted = tenant.api.delete(path, headers={"If-Match": first.headers["etag"]})

    assert first.status == 200
    assert (stale.status, stale.error["code"]) == (412, "precondition_failed")
    assert malformed.status == 400
    assert stale_delete.status == 412
    assert deleted.status == 204
    assert tenant.api.get(path).body["error"]["code"] == "not_found"


def test_renaming_frees_the_old_name_and_claims_the_new_one(tenant: Tenant) -> None:
    first = create(tenant, {**OPENAI_SEED, "name": "alpha"})
    create(tenant, {**OPENAI_SEED, "name": "beta"})
    path = f"{tenant.connections_path}/{first['connectionId']}"

    clash = tenant.api.patch(path, {"name": "BETA"})
    renamed = tenant.api.patch(path, {"name": "gamma"})
    reuse = tenant.api.post(tenant.connections_path, {**OPENAI_SEED, "name": "alpha"})

    assert clash.status == 409
    assert renamed.status == 200
    assert reuse.status == 201


def test_delete_is_204_then_404(tenant: Tenant) -> None:
    created = create(tenant, OPENAI_SEED)
    path = f"{tenant.connections_path}/{created['connectionId']}"

    assert tenant.api.delete(path).status == 204
    assert tenant.api.delete(path).status == 404
    assert tenant.api.post(tenant.connections_path, OPENAI_SEED).status == 201


def test_providers_are_listed_with_their_schemas(tenant: Tenant) -> None:
    response = tenant.api.get("/api/v1/providers")

    providers = {item["id"]: item for item in response.body["items"]}
    assert set(providers) == {
        "openai",
        "anthropic",
        "gemini",
        "groq",
        "perplexity",
        "aws-bedrock",
        "aws-bedrock-invoke",
    }
    assert providers["openai"]["secretFields"] == ["apiKey"]
    assert providers["aws-bedrock"]["secretFields"] == ["accessKeyId", "secretAccessKey", "sessionToken"]
    assert providers["openai"]["configSchema"]["properties"]["apiKey"]["writeOnly"] is True


def test_a_provider_filter_fills_its_page_past_other_providers(tenant: Tenant) -> None:
    create(tenant, {"name": "the only anthropic", "provider": "anthropic", "config": {"apiKey": "k"}})
    for index in range(4):
        create(tenant, {"name": f"openai {index}", "provider": "openai", "config": {"apiKey": "k"}})

    page = tenant.api.get(f"{tenant.connections_path}?provider=anthropic&limit=1")

    assert [item["name"] for item in page.body["items"]] == ["the only anthropic"]


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"\xff\xfe{}", "UTF-8"),
        (b'{"config": ' + b"[" * 5000 + b"]" * 5000 + b"}", "deeply"),
    ],
)
def test_bodies_that_cannot_be_read_are_400(tenant: Tenant, raw: bytes, fragment: str) -> None:
    response = tenant.api.post(tenant.connections_path, raw=raw)

    assert response.status == 400
    assert fragment in response.error["message"]


def test_a_forged_next_token_with_every_key_attribute_is_still_a_400(tenant: Tenant) -> None:
    import base64

    partition = f"WS#{tenant.workspace_id}#ENV#{tenant.environment_id}"
    forged = {"pk": {"S": partition}, "sk": {"S": "x"}}
    token = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")

    response = tenant.api.get(f"{tenant.connections_path}?nextToken={token}")

    assert (response.status, response.error["details"][0]["field"]) == (400, "nextToken")


def test_every_error_carries_details(tenant: Tenant) -> None:
    response = tenant.api.get(f"{tenant.connections_path}/{uuid.uuid4()}")

    assert response.error["details"] == []


def test_a_weak_etag_never_matches(tenant: Tenant) -> None:
    created = create(tenant, OPENAI_SEED)

    response = tenant.api.patch(
        f"{tenant.connections_path}/{created['connectionId']}", {"description": "x"}, headers={"If-Match": 'W/"1"'}
    )

    assert response.status == 412


@pytest.mark.parametrize(
    "base_url",
    ["https://host:99999", "https://exa mple.com", "https://169.254.169.254/latest", "http://proxy.internal"],
)
def test_unusable_base_urls_are_refused(tenant: Tenant, base_url: str) -> None:
    response = tenant.api.post(
        tenant.connections_path, {"name": "x", "provider": "openai", "config": {"apiKey": "k", "baseUrl": base_url}}
    )

    assert (response.status, response.error["details"][0]["field"]) == (400, "config.baseUrl")


def test_names_that_differ_only_in_unicode_form_or_case_clash(tenant: Tenant) -> None:
    create(tenant, {**OPENAI_SEED, "name": "ﬁnance"})

    clash = tenant.api.post(tenant.connections_path, {**OPENAI_SEED, "name": "FINANCE"})

    assert clash.status == 409
