"""POST .../ai-connections/{connectionId}/test through the gateway emulation and the real completions handler, on
moto, against loopback providers: what is called for each provider, each outcome in words, no secret in the
answer and no capacity spent."""

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest

from infra import system
from tests.aws_faults import AwsFaults
from tests.functional.api import faults_in, handler_module
from tests.functional.conftest import Tenant
from tests.loopback_providers import LoopbackProvider, loopback_provider, model_list
from vmx.tenancy.models import Role

BEDROCK_KEY = "AKIALOOPBACKTESTS"
BEDROCK_SECRET = "loopback-test-secret"
ROLE_ARN = "arn:aws:iam::123456789012:role/vmx-bedrock"
# what each provider is asked: its model list, or for Perplexity a completion without messages
CALLED = {
    "openai": ("GET", "/v1/models"),
    "groq": ("GET", "/openai/v1/models"),
    "perplexity": ("POST", "/chat/completions"),
    "anthropic": ("GET", "/v1/models?limit=1000"),
    "gemini": ("GET", "/v1beta/models?pageSize=1000"),
    "aws-bedrock": ("GET", "/foundation-models"),
    "aws-bedrock-invoke": ("GET", "/foundation-models"),
}
TIMEOUT_SECONDS = 0.5


@pytest.fixture(scope="module", autouse=True)
def bedrock() -> Iterator[LoopbackProvider]:
    """One Bedrock fake for the module, and a short test timeout for every test of it (whichever of them a worker
    runs first): the completions function reads both when it is built, so it is built again on the way in and out."""
    with loopback_provider("bedrock", api_key=None) as server:
        os.environ["BEDROCK_ENDPOINT_URL"] = server.base_url
        os.environ["CONNECTION_TEST_TIMEOUT_SECONDS"] = str(TIMEOUT_SECONDS)
        completions = handler_module(system.COMPLETIONS).function
        completions.rebuild()
        yield server
        del os.environ["BEDROCK_ENDPOINT_URL"], os.environ["CONNECTION_TEST_TIMEOUT_SECONDS"]
        completions.rebuild()


def create(tenant: Tenant, provider: str, config: dict[str, Any], **fields: Any) -> str:
    body = {"name": f"{provider}-tested", "provider": provider, "config": config, **fields}
    created = tenant.api.post(tenant.connections_path, body)
    assert created.status == 201, created.text
    connection_id: str = created.body["connectionId"]
    return connection_id


def path_for_test(tenant: Tenant, connection_id: str | None = None) -> str:
    """Where a connection is tested: a stored one, or (None) one before it is created."""
    return f"{tenant.connections_path}/{connection_id}/test" if connection_id else f"{tenant.connections_path}/test"


@pytest.fixture
def openai() -> Iterator[LoopbackProvider]:
    with loopback_provider("openai") as server:
        yield server


def openai_connection(tenant: Tenant, server: LoopbackProvider, api_key: str | None = None, **fields: Any) -> str:
    return create(tenant, "openai", {"apiKey": api_key or server.api_key, "baseUrl": server.base_url}, **fields)


@pytest.mark.parametrize("provider", list(CALLED))
def test_each_provider_is_tested_with_its_cheapest_call_and_no_capacity(
    tenant: Tenant, bedrock: LoopbackProvider, provider: str
) -> None:
    # Given a connection with a capacity limit, to each provider
    capacity = [{"period": "day", "requests": 5}]
    with loopback_provider(provider if not provider.startswith("aws") else "openai") as server:  # type: ignore[arg-type]
        if provider.startswith("aws-bedrock"):
            server, secret = bedrock, BEDROCK_SECRET
            config = {"region": "us-east-1", "accessKeyId": BEDROCK_KEY, "secretAccessKey": secret}
        else:
            secret = server.api_key or ""
            config = {"apiKey": secret, "baseUrl": server.base_url}
        connection_id = create(tenant, provider, config, capacity=capacity)
        sent_before = len(server.requests)

        # When it is tested
        response = tenant.api.post(path_for_test(tenant, connection_id), None)

        # Then the provider got the one cheap call, with the stored credentials
        assert response.status == 200, response.text
        [request] = server.requests[sent_before:]
        assert (request.method, request.path) == CALLED[provider]
    # and the answer says it is ok, what was called, and nothing secret
    tested = response.body
    assert (tested["connectionId"], tested["provider"], tested["outcome"], tested["ok"]) == (
        connection_id,
        provider,
        "ok",
        True,
    )
    assert tested["unavailableModels"] == []
    assert "accepted the credentials" in tested["message"]
    assert secret not in response.text
    assert tested["durationMs"] >= 0 and tested["testedAt"]
    # and no capacity was used
    capacity_report = tenant.api.get(f"{tenant.connections_path}/{connection_id}/capacity").body
    assert [window["requestsUsed"] for window in capacity_report["windows"]] == [0]


def test_what_was_checked_names_the_call_and_the_models_listed(tenant: Tenant, openai: LoopbackProvider) -> None:
    connection_id = openai_connection(tenant, openai)

    tested = tenant.api.post(path_for_test(tenant, connection_id), None).body

    assert tested["checked"] == f"GET {openai.base_url}/models with the API key"
    assert tested["message"] == "OpenAI accepted the credentials and lists 2 models"


def test_refused_credentials_are_told_in_words_without_the_key(tenant: Tenant, openai: LoopbackProvider) -> None:
    wrong_key = "sk-wrong-0123456789abcdef"
    connection_id = openai_connection(tenant, openai, api_key=wrong_key)

    response = tenant.api.post(path_for_test(tenant, connection_id), None)

    assert response.status == 200
    assert (response.body["outcome"], response.body["ok"]) == ("credentials_refused", False)
    assert response.body["message"] == (
        "OpenAI refused the AI connection's credentials (HTTP 401); update them on the connection"
    )
    # the fake echoes the key it was sent in its refusal
    assert wrong_key not in response.text


@pytest.mark.parametrize(
    ("status", "outcome", "message"),
    [
        (403, "access_denied", "OpenAI denied the AI connection's credentials access (HTTP 403): no models for you"),
        (429, "rate_limited", "OpenAI is rate-limiting this AI connection: no models for you"),
        (500, "provider_error", "OpenAI failed (HTTP 500): no models for you"),
        (404, "provider_error", "OpenAI rejected the request (HTTP 404): no models for you"),
    ],
)
def test_each_refusal_or_failure_of_the_provider_is_an_outcome_in_its_words(
    tenant: Tenant, openai: LoopbackProvider, status: int, outcome: str, message: str
) -> None:
    connection_id = openai_connection(tenant, openai)
    openai.fail_with(status, "no models for you")

    response = tenant.api.post(path_for_test(tenant, connection_id), None)

    assert response.status == 200
    assert (response.body["outcome"], response.body["ok"], response.body["message"]) == (outcome, False, message)


def test_a_provider_that_does_not_answer_in_time_is_timed_out(tenant: Tenant, openai: LoopbackProvider) -> None:
    connection_id = openai_connection(tenant, openai)
    openai.stall()

    tested = tenant.api.post(path_for_test(tenant, connection_id), None).body

    assert (tested["outcome"], tested["message"]) == ("timed_out", f"OpenAI did not answer within {TIMEOUT_SECONDS} s")


def test_a_provider_that_cannot_be_reached_is_unreachable(tenant: Tenant, bedrock: LoopbackProvider) -> None:
    with loopback_provider("openai") as server:
        connection_id = openai_connection(tenant, server)
    # the server is gone: nothing listens on its port

    tested = tenant.api.post(path_for_test(tenant, connection_id), None).body

    assert (tested["outcome"], tested["message"]) == ("unreachable", "OpenAI could not be reached")


def test_allowed_models_the_provider_does_not_list_are_not_available(tenant: Tenant, openai: LoopbackProvider) -> None:
    connection_id = openai_connection(tenant, openai, allowedModels=["gpt-4o-mini", "gpt-9-preview"])

    tested = tenant.api.post(path_for_test(tenant, connection_id), None).body

    assert (tested["outcome"], tested["ok"], tested["unavailableModels"]) == ("not_available", False, ["gpt-9-preview"])
    assert tested["message"] == (
        "OpenAI accepted the credentials but does not offer gpt-9-preview to them; "
        "change the connection's allowed models"
    )


def test_bedrock_inference_profiles_are_not_checked_against_the_foundation_models(
    tenant: Tenant, bedrock: LoopbackProvider
) -> None:
    config = {"region": "us-east-1", "accessKeyId": BEDROCK_KEY, "secretAccessKey": BEDROCK_SECRET}
    allowed = ["amazon.nova-lite-v1:0", "us.anthropic.claude-3-5-haiku-20241022-v1:0", "amazon.titan-gone-v1"]
    connection_id = create(tenant, "aws-bedrock", config, allowedModels=allowed)
    bedrock.respond_with(model_list("bedrock", ["amazon.nova-lite-v1:0"]))

    tested = tenant.api.post(path_for_test(tenant, connection_id), None).body

    assert (tested["outcome"], tested["unavailableModels"]) == ("not_available", ["amazon.titan-gone-v1"])
    assert tested["checked"] == (
        "Bedrock's foundation models in us-east-1 (ListFoundationModels), listed with the connection's access keys"
    )


def test_a_bedrock_role_is_assumed_with_its_external_id(tenant: Tenant, bedrock: LoopbackProvider) -> None:
    config = {"region": "us-east-1", "iamRoleArn": ROLE_ARN, "externalId": "vmx-tests-42"}
    connection_id = create(tenant, "aws-bedrock", config)

    with faults_in(system.COMPLETIONS) as faults:
        tested = tenant.api.post(path_for_test(tenant, connection_id), None).body

    assert (tested["outcome"], tested["checked"]) == (
        "ok",
        f"Bedrock's foundation models in us-east-1 (ListFoundationModels), listed with the IAM role {ROLE_ARN}",
    )
    [assumed] = faults.of("sts.AssumeRole")
    assert (assumed["RoleArn"], assumed["ExternalId"]) == (ROLE_ARN, "vmx-tests-42")


def test_a_bedrock_role_that_cannot_be_assumed_is_told_apart(tenant: Tenant, bedrock: LoopbackProvider) -> None:
    config = {"region": "us-east-1", "iamRoleArn": ROLE_ARN, "externalId": "vmx-tests-42"}
    connection_id = create(tenant, "aws-bedrock", config)
    sent_before = len(bedrock.requests)

    with faults_in(system.COMPLETIONS) as faults:
        faults.fail("sts.AssumeRole", (403, "AccessDenied", "not authorized to perform sts:AssumeRole"))
        tested = tenant.api.post(path_for_test(tenant, connection_id), None).body

    assert (tested["outcome"], tested["ok"]) == ("role_not_assumable", False)
    assert tested["message"] == (
        f"the gateway could not assume the AI connection's IAM role {ROLE_ARN} (AccessDenied); "
        "check that the role's trust policy admits the gateway"
    )
    assert bedrock.requests[sent_before:] == []


@pytest.mark.parametrize(
    ("answer", "outcome", "message"),
    [
        (
            (400, "Throttling", "Rate exceeded"),
            "rate_limited",
            "AWS STS is throttling the gateway's AssumeRole calls (Throttling); try again shortly",
        ),
        (
            (500, "InternalFailure", "We encountered an internal error"),
            "unreachable",
            "AWS STS failed to assume the AI connection's IAM role (InternalFailure); try again shortly",
        ),
    ],
    ids=["throttled", "failing"],
)
def test_sts_throttling_or_failing_is_not_a_role_refused(
    tenant: Tenant, bedrock: LoopbackProvider, answer: tuple[int, str, str], outcome: str, message: str
) -> None:
    config = {"region": "us-east-1", "iamRoleArn": ROLE_ARN, "externalId": "vmx-tests-42"}
    connection_id = create(tenant, "aws-bedrock", config)

    with faults_in(system.COMPLETIONS) as faults:
        faults.fail("sts.AssumeRole", answer)
        tested = tenant.api.post(path_for_test(tenant, connection_id), None).body

    assert (tested["outcome"], tested["ok"], tested["message"]) == (outcome, False, message)


def test_bedrock_keys_refused_are_credentials_refused(tenant: Tenant, bedrock: LoopbackProvider) -> None:
    config = {"region": "us-east-1", "accessKeyId": BEDROCK_KEY, "secretAccessKey": BEDROCK_SECRET}
    connection_id = create(tenant, "aws-bedrock", config)
    # the fake answers a 401 as Bedrock does: 403 UnrecognizedClientException
    bedrock.fail_with(401, "The security token included in the request is invalid.")

    tested = tenant.api.post(path_for_test(tenant, connection_id), None).body

    assert (tested["outcome"], tested["message"]) == (
        "credentials_refused",
        "AWS Bedrock (Converse) refused the AI connection's credentials (HTTP 401); update them on the connection",
    )


def test_only_those_who_manage_connections_may_test_them(tenant: Tenant, openai: LoopbackProvider) -> None:
    connection_id = openai_connection(tenant, openai)
    sent_before = len(openai.requests)

    answers = {role: tenant.as_role(role).post(path_for_test(tenant, connection_id), None) for role in Role}

    assert {role: answer.status for role, answer in answers.items()} == {
        Role.ADMIN: 200,
        Role.EDITOR: 200,
        Role.VIEWER: 403,
        Role.GATEWAY: 403,
    }
    assert re.fullmatch(
        r"API key [0-9a-f-]{36} has role 'viewer', which cannot manage connections",
        answers[Role.VIEWER].body["error"]["message"],
    )
    assert len(openai.requests) == sent_before + 2


def test_an_unknown_connection_is_a_404_in_the_rest_shape(tenant: Tenant, bedrock: LoopbackProvider) -> None:
    missing = "0b5f6d1e-8f40-4c5e-9d7a-2f1c3b4a5e6f"

    response = tenant.api.post(path_for_test(tenant, missing), None)

    assert response.status == 404
    assert response.body == {
        "error": {"code": "not_found", "message": f"AI connection {missing} not found", "details": []}
    }


def test_credentials_kms_cannot_open_now_are_a_503_and_nothing_is_called(
    tenant: Tenant, openai: LoopbackProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREDENTIALS_CIPHER", "kms")
    functions = [handler_module(system.CONNECTIONS).function, handler_module(system.COMPLETIONS).function]
    for function in functions:
        function.rebuild()
    connection_id = openai_connection(tenant, openai)
    sent_before = len(openai.requests)

    faults: AwsFaults
    with faults_in(system.COMPLETIONS) as faults:
        faults.fail("kms.Decrypt")
        response = tenant.api.post(path_for_test(tenant, connection_id), None)

    monkeypatch.undo()
    for function in functions:
        function.rebuild()
    assert response.status == 503
    assert response.body["error"]["code"] == "unavailable"
    assert openai.requests[sent_before:] == []


def test_a_connection_is_tested_before_it_is_created_and_nothing_is_stored(
    tenant: Tenant, openai: LoopbackProvider
) -> None:
    def draft(api_key: str | None) -> dict[str, Any]:
        return {"name": "draft", "provider": "openai", "config": {"apiKey": api_key, "baseUrl": openai.base_url}}

    good = tenant.api.post(path_for_test(tenant), draft(openai.api_key))
    wrong = tenant.api.post(path_for_test(tenant), draft("sk-wrong-1"))

    assert good.status == 200, good.text
    assert (good.body["connectionId"], good.body["outcome"]) == (None, "ok")
    assert [request.path for request in openai.requests] == ["/v1/models", "/v1/models"]
    assert wrong.body["outcome"] == "credentials_refused"
    assert "sk-wrong-1" not in wrong.text
    assert tenant.api.get(tenant.connections_path).body["items"] == []


def test_a_draft_the_create_would_refuse_is_a_400_naming_the_field(tenant: Tenant, bedrock: LoopbackProvider) -> None:
    response = tenant.api.post(path_for_test(tenant), {"name": "draft", "provider": "openai", "config": {}})

    assert response.status == 400
    assert response.error["code"] == "invalid_request"
    assert [detail["field"] for detail in response.error["details"]] == ["config.apiKey"]


def test_changes_are_tested_as_the_update_would_leave_the_connection_and_nothing_changes(
    tenant: Tenant, openai: LoopbackProvider
) -> None:
    # Given a stored connection that works
    connection_id = openai_connection(tenant, openai)
    stored = tenant.api.get(f"{tenant.connections_path}/{connection_id}")

    # When a new key and new allowed models are tested on it
    new_key = tenant.api.post(path_for_test(tenant, connection_id), {"config": {"apiKey": "sk-rotated-2"}})
    models = tenant.api.post(path_for_test(tenant, connection_id), {"allowedModels": ["gpt-4.1", "gpt-5-nano"]})
    # and an unchanged config, whose stored key is opened and kept
    kept = tenant.api.post(path_for_test(tenant, connection_id), {"config": {"baseUrl": openai.base_url}})

    # Then each is tested as the update would leave the connection
    assert new_key.body["outcome"] == "credentials_refused"
    assert openai.requests[0].headers["authorization"] == "Bearer sk-rotated-2"
    assert (models.body["outcome"], models.body["unavailableModels"]) == ("not_available", ["gpt-5-nano"])
    assert kept.body["outcome"] == "ok"
    # and the connection is as it was
    after = tenant.api.get(f"{tenant.connections_path}/{connection_id}")
    assert (after.body, after.headers["etag"]) == (stored.body, stored.headers["etag"])


def test_a_change_of_provider_is_tested_with_its_complete_config(tenant: Tenant, bedrock: LoopbackProvider) -> None:
    with loopback_provider("anthropic") as anthropic:
        connection_id = create(tenant, "openai", {"apiKey": "sk-openai-kept", "baseUrl": "https://api.example.com/v1"})
        path = path_for_test(tenant, connection_id)

        incomplete = tenant.api.post(path, {"provider": "anthropic"})
        complete = tenant.api.post(
            path, {"provider": "anthropic", "config": {"apiKey": anthropic.api_key, "baseUrl": anthropic.base_url}}
        )

        assert (incomplete.status, incomplete.error["details"][0]["field"]) == (400, "config")
        assert (complete.body["provider"], complete.body["outcome"]) == ("anthropic", "ok")
        assert [request.headers["x-api-key"] for request in anthropic.requests] == [anthropic.api_key]


def test_an_alias_is_offered_when_its_dated_snapshot_is_listed(tenant: Tenant, bedrock: LoopbackProvider) -> None:
    with loopback_provider("anthropic") as anthropic:
        config = {"apiKey": anthropic.api_key, "baseUrl": anthropic.base_url}
        connection_id = create(tenant, "anthropic", config, allowedModels=["claude-sonnet-4-5", "claude-opus-9"])
        anthropic.respond_with(model_list("anthropic", ["claude-sonnet-4-5-20250929", "claude-opus-4-1-20250805"]))

        tested = tenant.api.post(path_for_test(tenant, connection_id), None).body

    assert (tested["outcome"], tested["unavailableModels"]) == ("not_available", ["claude-opus-9"])


def test_only_a_dated_snapshot_stands_for_an_alias(tenant: Tenant, openai: LoopbackProvider) -> None:
    allowed = ["gpt-4o", "gpt-4.1", "o1"]
    connection_id = openai_connection(tenant, openai, allowedModels=allowed)
    openai.respond_with(model_list("openai", ["gpt-4o-mini", "gpt-4.1-2025-04-14", "o1-mini"]))

    tested = tenant.api.post(path_for_test(tenant, connection_id), None).body

    # gpt-4o-mini is another model, not a snapshot of gpt-4o
    assert (tested["outcome"], tested["unavailableModels"]) == ("not_available", ["gpt-4o", "o1"])
