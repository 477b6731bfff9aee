"""Bedrock through a real bedrock-runtime client: botocore's Stubber for the exact parameters and error codes,
and the production client factory against a loopback Bedrock, with roles assumed from moto's STS."""

import io
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
import urllib3
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from botocore.response import StreamingBody
from botocore.stub import Stubber
from pydantic import SecretStr

from local_stack.emulator import start_moto
from tests.loopback_providers import LOOPBACK_ANSWER, anthropic_message, converse_response, loopback_provider
from tests.unit.completions.samples import WEATHER_PARAMETERS, WEATHER_TOOL, chat_request
from vmx.completions.aws_access import REFRESH_MARGIN, AssumedRoles
from vmx.completions.openai_models import ChatCompletionRequest
from vmx.completions.providers import (
    AwsCredentials,
    BedrockAccess,
    ProviderCall,
    ProviderError,
    Transports,
    bedrock_client_factory,
    call_provider,
)
from vmx.providers.catalog import ProviderId

ROLE = "arn:aws:iam::123456789012:role/bedrock-caller"
SECRET_KEY = "wJalrXUtnFEMI-K7MDENG-CANARY"
SESSION_TOKEN = "FwoGZXIvYXdzEJr-CANARY-TOKEN"
STATIC_KEYS = {
    "accessKeyId": SecretStr("AKIASTATICEXAMPLE"),
    "secretAccessKey": SecretStr(SECRET_KEY),
    "sessionToken": SecretStr(SESSION_TOKEN),
}
GUARDED = {
    "performanceConfig": {"latency": "optimized"},
    "guardrailConfig": {"guardrailIdentifier": "gr1abc", "guardrailVersion": "DRAFT", "trace": "enabled"},
}
NOVA = "amazon.nova-pro-v1:0"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"


class StubbedBedrock:
    """A bedrock-runtime client under Stubber, handed out by a factory that records what it was asked for."""

    def __init__(self) -> None:
        self.client = boto3.client(
            "bedrock-runtime", region_name="eu-west-1", aws_access_key_id="AKIA", aws_secret_access_key="x"
        )
        self.stubber = Stubber(self.client)
        self.asked: list[tuple[BedrockAccess, float]] = []

    def __call__(self, access: BedrockAccess, timeout_seconds: float) -> Any:
        self.asked.append((access, timeout_seconds))
        return self.client


class JsonBody:
    """Matches InvokeModel's `body` bytes by the JSON they hold."""

    def __init__(self, expected: dict[str, Any]):
        self.expected = expected

    def __eq__(self, other: object) -> bool:
        return isinstance(other, bytes) and json.loads(other) == self.expected

    def __hash__(self) -> int:
        return 0


@pytest.fixture
def bedrock() -> Iterator[StubbedBedrock]:
    stubbed = StubbedBedrock()
    with stubbed.stubber:
        yield stubbed
        stubbed.stubber.assert_no_pending_responses()


def transports_for(factory: Any, clock: Any = None) -> Transports:
    return Transports(
        http=urllib3.PoolManager(),
        bedrock_client=factory,
        clock=clock or (lambda: datetime(2026, 11, 22, tzinfo=UTC)),
    )


def bedrock_call(
    provider: ProviderId,
    model: str,
    request: ChatCompletionRequest | None = None,
    settings: dict[str, Any] | None = None,
    secrets: dict[str, SecretStr] | None = None,
    timeout_seconds: float = 2.0,
) -> ProviderCall:
    return ProviderCall(
        provider,
        model,
        {"region": "eu-west-1", **({"iamRoleArn": ROLE} if secrets is None else {}), **(settings or {})},
        secrets or {},
        request or chat_request(),
        timeout_seconds,
    )


def test_converse_gets_exactly_the_translated_parameters_and_settings(bedrock: StubbedBedrock) -> None:
    request = chat_request(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Oslo?"}],
        tools=[WEATHER_TOOL],
        tool_choice="required",
        temperature=0.1,
        stop="END",
        max_tokens=200,
    )
    tool_use = {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Oslo"}}
    bedrock.stubber.add_response(
        "converse",
        converse_response(None, tool_uses=[tool_use], stop_reason="tool_use"),
        expected_params={
            "modelId": NOVA,
            "system": [{"text": "Be brief."}],
            "messages": [{"role": "user", "content": [{"text": "Weather in Oslo?"}]}],
            "inferenceConfig": {"maxTokens": 200, "temperature": 0.1, "stopSequences": ["END"]},
            "toolConfig": {
                "tools": [
                    {
                        "toolSpec": {
                            "name": "get_weather",
                            "description": "Current weather in a city",
                            "inputSchema": {"json": WEATHER_PARAMETERS},
                        }
                    }
                ],
                "toolChoice": {"any": {}},
            },
            "performanceConfig": {"latency": "optimized"},
            "guardrailConfig": {"guardrailIdentifier": "gr1abc", "guardrailVersion": "DRAFT", "trace": "enabled"},
        },
    )

    result = call_provider(bedrock_call(ProviderId.AWS_BEDROCK, NOVA, request, GUARDED), transports_for(bedrock))

    assert bedrock.asked == [(BedrockAccess("eu-west-1", role_arn=ROLE), 2.0)]
    answer = result.completion
    assert answer.model == NOVA
    assert answer.choices[0].finish_reason == "tool_calls"
    calls = answer.choices[0].message.tool_calls or []
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("tooluse_1", "get_weather", {"city": "Oslo"})
    ]
    assert answer.usage.total_tokens == 19


def test_invoke_model_gets_the_anthropic_body_and_the_settings_as_headers(bedrock: StubbedBedrock) -> None:
    request = chat_request(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], temperature=0.5
    )
    reply = json.dumps(anthropic_message("Hello!", model=HAIKU)).encode()
    bedrock.stubber.add_response(
        "invoke_model",
        {"body": StreamingBody(io.BytesIO(reply), len(reply)), "contentType": "application/json"},
        expected_params={
            "modelId": HAIKU,
            "body": JsonBody(
                {
                    "anthropic_version": "bedrock-2023-05-31",
                    "max_tokens": 4096,
                    "system": [{"type": "text", "text": "Be brief."}],
                    "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
                    "temperature": 0.5,
                }
            ),
            "contentType": "application/json",
            "accept": "application/json",
            "performanceConfigLatency": "optimized",
            "guardrailIdentifier": "gr1abc",
            "guardrailVersion": "DRAFT",
            "trace": "ENABLED",
        },
    )

    result = call_provider(
        bedrock_call(ProviderId.AWS_BEDROCK_INVOKE, HAIKU, request, GUARDED, STATIC_KEYS), transports_for(bedrock)
    )

    keys = AwsCredentials(SecretStr("AKIASTATICEXAMPLE"), SecretStr(SECRET_KEY), SecretStr(SESSION_TOKEN))
    assert bedrock.asked == [(BedrockAccess("eu-west-1", keys=keys), 2.0)]
    assert result.completion.choices[0].message.content == "Hello!"
    assert result.completion.usage.total_tokens == 19


@pytest.mark.parametrize(
    ("code", "http_status", "status", "error_code"),
    [
        ("ThrottlingException", 429, 429, "provider_rate_limited"),
        ("ModelNotReadyException", 429, 429, "provider_rate_limited"),
        ("ServiceQuotaExceededException", 400, 429, "provider_rate_limited"),
        ("ValidationException", 400, 400, "provider_rejected_request"),
        ("ResourceNotFoundException", 404, 404, "provider_rejected_request"),
        ("AccessDeniedException", 403, 502, "provider_access_denied"),
        ("UnrecognizedClientException", 403, 502, "provider_authentication_failed"),
        ("ExpiredTokenException", 403, 502, "provider_authentication_failed"),
        ("ModelTimeoutException", 408, 504, "provider_timeout"),
        ("ModelErrorException", 424, 502, "provider_error"),
        ("InternalServerException", 500, 502, "provider_error"),
        ("ServiceUnavailableException", 503, 502, "provider_error"),
    ],
)
@pytest.mark.parametrize(
    ("provider", "operation"), [(ProviderId.AWS_BEDROCK, "converse"), (ProviderId.AWS_BEDROCK_INVOKE, "invoke_model")]
)
def test_bedrock_error_codes_map_to_what_the_gateway_answers(
    bedrock: StubbedBedrock,
    provider: ProviderId,
    operation: str,
    code: str,
    http_status: int,
    status: int,
    error_code: str,
) -> None:
    bedrock.stubber.add_client_error(
        operation,
        service_error_code=code,
        service_message=f"{code} happened for {SECRET_KEY}",
        http_status_code=http_status,
        response_meta={"HTTPHeaders": {"retry-after": "3"}},
    )

    with pytest.raises(ProviderError) as raised:
        call_provider(bedrock_call(provider, NOVA, secrets=STATIC_KEYS), transports_for(bedrock))

    error = raised.value
    assert (error.status, error.code) == (status, error_code)
    assert SECRET_KEY not in str(error)
    if status == 429:
        assert error.retry_after == "3"
    if error_code in ("provider_rejected_request", "provider_access_denied"):
        assert f"{code} happened for [redacted]" in error.message


class RaisingClient:
    def __init__(self, error: Exception):
        self.error = error

    def converse(self, **params: Any) -> Any:
        raise self.error


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (ReadTimeoutError(endpoint_url="https://bedrock-runtime.eu-west-1.amazonaws.com"), 504, "provider_timeout"),
        (
            EndpointConnectionError(endpoint_url="https://bedrock-runtime.eu-west-1.amazonaws.com"),
            502,
            "provider_unreachable",
        ),
    ],
)
def test_sdk_transport_failures_map_to_timeouts_and_unreachable(error: Exception, status: int, code: str) -> None:
    transports = transports_for(lambda access, timeout: RaisingClient(error))

    with pytest.raises(ProviderError) as raised:
        call_provider(bedrock_call(ProviderId.AWS_BEDROCK, NOVA), transports)

    assert (raised.value.status, raised.value.code) == (status, code)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


class CountingSts:
    def __init__(self, sts: Any):
        self.sts = sts
        self.assumed: list[str] = []
        self.external_ids: list[str | None] = []

    def assume_role(self, **params: Any) -> Any:
        self.assumed.append(params["RoleArn"])
        self.external_ids.append(params.get("ExternalId"))
        return self.sts.assume_role(**params)


@pytest.fixture(scope="module")
def moto_sts() -> Iterator[Any]:
    server, endpoint_url = start_moto()
    try:
        yield boto3.client("sts", region_name="us-east-1", endpoint_url=endpoint_url)
    finally:
        server.stop()


def signed_by(request_headers: dict[str, str]) -> str:
    return request_headers["authorization"].split("Credential=")[1].split("/")[0]


def test_a_role_connection_signs_with_assumed_credentials_kept_until_near_expiry(moto_sts: Any) -> None:
    sts, clock = CountingSts(moto_sts), Clock()
    with loopback_provider("bedrock", api_key=None) as server:
        transports = transports_for(bedrock_client_factory(sts, clock, endpoint_url=server.base_url), clock)
        call = bedrock_call(ProviderId.AWS_BEDROCK, NOVA)

        first = call_provider(call, transports)
        call_provider(call, transports)
        # a minute past the refresh point: the first call may take seconds on a loaded machine
        clock.now += timedelta(hours=1) - REFRESH_MARGIN + timedelta(minutes=1)
        call_provider(call, transports)

    assert first.completion.choices[0].message.content == LOOPBACK_ANSWER
    assert sts.assumed == [ROLE, ROLE]
    keys = [signed_by(request.headers) for request in server.requests]
    assert keys[0] == keys[1] != keys[2]
    assert all(request.headers.get("x-amz-security-token") for request in server.requests)
    assert server.requests[0].path == "/model/amazon.nova-pro-v1%3A0/converse"


def test_a_role_is_assumed_with_the_connections_external_id_and_cached_per_id(moto_sts: Any) -> None:
    sts = CountingSts(moto_sts)
    roles = AssumedRoles(sts)

    first = roles.credentials(ROLE, "tenant-42")
    again = roles.credentials(ROLE, "tenant-42")
    other = roles.credentials(ROLE, "tenant-43")
    without = roles.credentials(ROLE)

    assert sts.external_ids == ["tenant-42", "tenant-43", None]
    assert first == again
    assert len({first, other, without}) == 3


def test_a_keys_connection_signs_with_its_keys_and_session_token(moto_sts: Any) -> None:
    with loopback_provider("bedrock", api_key="AKIASTATICEXAMPLE") as server:
        transports = transports_for(bedrock_client_factory(moto_sts, endpoint_url=server.base_url))

        result = call_provider(bedrock_call(ProviderId.AWS_BEDROCK_INVOKE, HAIKU, secrets=STATIC_KEYS), transports)

    assert result.completion.choices[0].message.content == LOOPBACK_ANSWER
    assert server.requests[0].headers["x-amz-security-token"] == SESSION_TOKEN
    assert server.requests[0].body["anthropic_version"] == "bedrock-2023-05-31"


@pytest.mark.parametrize(
    ("provider", "model"), [(ProviderId.AWS_BEDROCK, NOVA), (ProviderId.AWS_BEDROCK_INVOKE, HAIKU)]
)
def test_a_stalled_bedrock_answers_504_at_the_timeout(moto_sts: Any, provider: ProviderId, model: str) -> None:
    with loopback_provider("bedrock", api_key="AKIASTATICEXAMPLE") as server:
        transports = transports_for(bedrock_client_factory(moto_sts, endpoint_url=server.base_url))
        server.stall()
        started = time.monotonic()
        with pytest.raises(ProviderError) as raised:
            call_provider(bedrock_call(provider, model, secrets=STATIC_KEYS, timeout_seconds=0.5), transports)
        elapsed = time.monotonic() - started

    assert (raised.value.status, raised.value.code) == (504, "provider_timeout")
    assert elapsed < 10  # gave up long before the stalled provider (30 s), whatever the machine's load


def test_a_role_that_cannot_be_assumed_answers_502_naming_the_role() -> None:
    class RefusingSts:
        def assume_role(self, **params: Any) -> Any:
            message = "not authorized to perform sts:AssumeRole"
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": message}}, "AssumeRole")

    with pytest.raises(ProviderError) as raised:
        AssumedRoles(RefusingSts()).credentials(ROLE)

    assert (raised.value.status, raised.value.code, raised.value.reached) == (502, "role_not_assumable", False)
    assert ROLE in raised.value.message and "AccessDenied" in raised.value.message


def test_whole_answer_timeouts_share_a_client_per_minute_and_idle_timeouts_keep_their_own(moto_sts: Any) -> None:
    factory = bedrock_client_factory(moto_sts, endpoint_url="http://127.0.0.1:9")
    keys = BedrockAccess(
        "us-east-1", keys=AwsCredentials(SecretStr("AKIAEXAMPLE"), SecretStr("secret"), SecretStr("token"))
    )

    # the time an invocation has left differs on every call; its client need not
    whole = [factory(keys, seconds) for seconds in (884.7, 881.2, 840.0)]
    idle = [factory(keys, seconds) for seconds in (30.0, 30.0, 45.0)]

    assert whole[0] is whole[1] is whole[2]
    assert whole[0].meta.config.read_timeout < 840
    assert idle[0] is idle[1] is not idle[2]
