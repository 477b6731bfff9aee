"""The completion endpoint while its AWS dependencies fail: faults injected into the completions function's own
boto3 clients (tests/aws_faults.py), asserting what the client gets, what the counters hold and what is
recorded. A paid answer always reaches the client; capacity is never spent by a request the provider never
got, never counted twice, and never left short of what was really used."""

import json
import os
import socket
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from infra import system
from local_stack.event_delivery import sqs_event
from local_stack.lambda_runtime import new_context
from tests.aws_faults import INTERNAL_ERROR, THROTTLED, AwsFaults
from tests.functional.api import faults_in, handler_module
from tests.functional.conftest import Tenant
from tests.loopback_providers import LoopbackProvider, loopback_provider
from vmx.capacity.ledger import CounterScope, limits_for
from vmx.capacity.limits import CapacityDimension
from vmx.clock import utc_now
from vmx.settings import CompletionsSettings
from vmx.storage.capacity_store import DynamoCapacityCounters
from vmx.storage.connection_store import DynamoConnectionRepository

PROMPT = [{"role": "user", "content": "Say hello"}]


@pytest.fixture
def faults(tenant: Tenant) -> Iterator[AwsFaults]:
    """Faults on every client the completions function creates from here on."""
    with faults_in(system.COMPLETIONS) as injected:
        yield injected


@pytest.fixture
def provider() -> Iterator[LoopbackProvider]:
    with loopback_provider("openai") as server:
        yield server


def connect(tenant: Tenant, base_url: str, api_key: str | None, capacity: list[dict[str, Any]]) -> str:
    # a loopback provider without a key of its own takes any
    config = {"apiKey": api_key or "sk-any", "baseUrl": base_url}
    body = {"name": "prod", "provider": "openai", "config": config}
    response = tenant.api.post(tenant.connections_path, {**body, "capacity": capacity})
    assert response.status == 201, response.text
    connection_id: str = response.body["connectionId"]
    return connection_id


def ask(tenant: Tenant, **fields: Any) -> Any:
    path = f"{tenant.workspace_path}/environments/{tenant.environment_id}/chat/completions"
    return tenant.api.post(path, {"model": "prod/gpt-4o-mini", "messages": PROMPT, **fields})


def used(tenant: Tenant, connection_id: str, source_ip: str | None = None) -> list[tuple[int, int]]:
    """(requests, tokens) per limited window, read with the stack's own adapter."""
    settings = CompletionsSettings.from_environ(os.environ)
    connection = DynamoConnectionRepository(settings.connections_table_name, settings.aws_region).get(
        tenant.workspace_id, tenant.environment_id, connection_id
    )
    assert connection is not None
    dimension = CapacityDimension.SOURCE_IP if source_ip else None
    counters = DynamoCapacityCounters(settings.capacity_table_name, settings.aws_region)
    usages = counters.usage(
        CounterScope(connection_id, source_ip), limits_for(connection.capacity, dimension), utc_now()
    )
    return [(usage.requests_used, usage.tokens_used) for usage in usages]


def recorded_statuses(faults: AwsFaults) -> list[int]:
    """The status of every CompletionRecorded the function published."""
    statuses = []
    for body in faults.of("eventbridge.PutEvents"):
        for entry in body.get("Entries", []):
            if entry["DetailType"] == "CompletionRecorded":
                statuses.append(json.loads(entry["Detail"])["status"])
    return statuses


def settling(body: dict[str, Any]) -> bool:
    """A release or reconcile: the writes that remove a reservation's mark (vmx.storage.capacity_store)."""
    return "attribute_exists(#mark)" in body.get("ConditionExpression", "")


def reserving(body: dict[str, Any]) -> bool:
    return "UpdateExpression" in body and not settling(body)


def run_settlements_consumer() -> int:
    """Hands what waits in the settlements queue to its consumer, as Lambda's event source mapping would."""
    sqs = boto3.client("sqs")
    url = os.environ["CAPACITY_SETTLEMENTS_QUEUE_URL"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
    if not messages:
        return 0
    handler = handler_module(system.CAPACITY_SETTLEMENTS).lambda_handler
    result = handler(
        sqs_event(messages, "arn:aws:sqs:us-east-1:000000000000:settlements"), new_context(system.CAPACITY_SETTLEMENTS)
    )
    assert result == {"batchItemFailures": []}
    for message in messages:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return len(messages)


@pytest.fixture
def kms_credentials(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Credentials sealed and opened with KMS (on moto), as in AWS, instead of the tests' libsodium."""
    monkeypatch.setenv("CREDENTIALS_CIPHER", "kms")
    functions = [handler_module(system.CONNECTIONS), handler_module(system.COMPLETIONS)]

    def forget_wiring() -> None:
        for module in functions:
            module.function.rebuild()

    forget_wiring()
    yield
    monkeypatch.undo()
    forget_wiring()


def test_with_kms_throttled_requests_are_503s_that_spend_no_capacity_and_are_recorded(
    tenant: Tenant, provider: LoopbackProvider, kms_credentials: None, faults: AwsFaults
) -> None:
    connection_id = connect(tenant, provider.base_url, provider.api_key, [{"period": "day", "requests": 3}])
    faults.fail("kms.Decrypt", THROTTLED)

    refused = [ask(tenant) for _ in range(3)]

    assert [answer.status for answer in refused] == [503] * 3
    assert refused[0].error["code"] == "unavailable"
    assert provider.requests == []
    assert used(tenant, connection_id) == [(0, 0)]
    faults.heal()
    assert [ask(tenant).status for _ in range(4)] == [200, 200, 200, 429]
    assert used(tenant, connection_id)[0][0] == 3
    assert recorded_statuses(faults) == [503, 503, 503, 200, 200, 200, 429]


@pytest.mark.parametrize("answer", [THROTTLED, INTERNAL_ERROR], ids=["throttled", "500"])
def test_a_reconcile_that_keeps_failing_leaves_the_answer_and_is_written_later_from_the_queue(
    tenant: Tenant, provider: LoopbackProvider, faults: AwsFaults, answer: tuple[int, str, str]
) -> None:
    connection_id = connect(
        tenant, provider.base_url, provider.api_key, [{"period": "day", "requests": 10, "tokens": 100_000}]
    )
    faults.fail("dynamodb.UpdateItem", answer, matches=settling)

    response = ask(tenant, max_tokens=50)

    assert response.status == 200, response.text
    assert response.body["choices"][0]["message"]["content"]
    # reserved: the prompt's estimate plus max_tokens, not yet the 19 really used
    (reserved,) = used(tenant, connection_id)
    assert reserved[0] == 1 and reserved[1] > 50
    assert recorded_statuses(faults) == [200]

    faults.heal()
    assert run_settlements_consumer() == 1
    assert used(tenant, connection_id) == [(1, 19)]


def test_a_class_reservation_whose_reconcile_keeps_failing_is_settled_in_its_class_from_the_queue(
    tenant: Tenant, provider: LoopbackProvider, faults: AwsFaults
) -> None:
    config = {"apiKey": provider.api_key, "baseUrl": provider.base_url}
    classes = [{"name": "production", "guaranteedPercent": 60}, {"name": "batch", "maximumPercent": 40}]
    body = {
        "name": "prod",
        "provider": "openai",
        "config": config,
        "capacity": [{"period": "day", "requests": 10, "tokens": 100_000}],
        # the admin key names no class: it counts in the default
        "prioritization": {"classes": classes, "defaultClass": "batch"},
    }
    created = tenant.api.post(tenant.connections_path, body)
    assert created.status == 201, created.text
    connection_id = created.body["connectionId"]
    faults.fail("dynamodb.UpdateItem", THROTTLED, matches=settling)

    response = ask(tenant, max_tokens=50)

    assert response.status == 200, response.text
    [reserved_production, reserved_batch] = class_counts(tenant, connection_id)
    assert reserved_production == (0, 0) and reserved_batch[0] == 1 and reserved_batch[1] > 50
    faults.heal()
    assert run_settlements_consumer() == 1
    # the 19 tokens really used, counted in batch with its split (a settlement without it would leave batch at 50+)
    assert class_counts(tenant, connection_id) == [(0, 0), (1, 19)]
    assert used(tenant, connection_id) == [(1, 19)]


def class_counts(tenant: Tenant, connection_id: str) -> list[tuple[int, int]]:
    """(requests, tokens) per priority class in the connection's one window."""
    settings = CompletionsSettings.from_environ(os.environ)
    connection = DynamoConnectionRepository(settings.connections_table_name, settings.aws_region).get(
        tenant.workspace_id, tenant.environment_id, connection_id
    )
    assert connection is not None and connection.prioritization is not None
    counters = DynamoCapacityCounters(settings.capacity_table_name, settings.aws_region)
    [window] = counters.usage(
        CounterScope(connection_id, None),
        limits_for(connection.capacity, None),
        utc_now(),
        connection.prioritization.classes,
    )
    return [(usage.requests_used, usage.tokens_used) for usage in window.classes]


def test_a_settlement_delivered_twice_settles_once(
    tenant: Tenant, provider: LoopbackProvider, faults: AwsFaults
) -> None:
    connection_id = connect(
        tenant, provider.base_url, provider.api_key, [{"period": "day", "requests": 10, "tokens": 100_000}]
    )
    faults.fail("dynamodb.UpdateItem", THROTTLED, matches=settling)
    ask(tenant, max_tokens=50)
    faults.heal()
    sqs = boto3.client("sqs")
    url = os.environ["CAPACITY_SETTLEMENTS_QUEUE_URL"]
    (message,) = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]
    handler = handler_module(system.CAPACITY_SETTLEMENTS).lambda_handler

    for _ in range(2):
        handler(
            sqs_event([message], "arn:aws:sqs:us-east-1:000000000000:settlements"),
            new_context(system.CAPACITY_SETTLEMENTS),
        )
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    assert used(tenant, connection_id) == [(1, 19)]


def test_a_reconcile_that_fails_once_is_tried_again_within_the_invocation(
    tenant: Tenant, provider: LoopbackProvider, faults: AwsFaults
) -> None:
    connection_id = connect(
        tenant, provider.base_url, provider.api_key, [{"period": "day", "requests": 10, "tokens": 100_000}]
    )
    # the first settling attempt fails (after botocore's own retries), the next one works
    faults.fail("dynamodb.UpdateItem", THROTTLED, matches=settling, times=1)

    assert ask(tenant, max_tokens=50).status == 200

    assert used(tenant, connection_id) == [(1, 19)]
    assert run_settlements_consumer() == 0


@pytest.mark.parametrize(("status", "retry_after"), [(502, None), (429, "7")], ids=["provider 502", "provider 429"])
def test_a_providers_error_reaches_the_client_even_when_the_bookkeeping_fails(
    tenant: Tenant, provider: LoopbackProvider, faults: AwsFaults, status: int, retry_after: str | None
) -> None:
    connect(tenant, provider.base_url, provider.api_key, [{"period": "day", "requests": 10, "tokens": 100_000}])
    faults.fail("dynamodb.UpdateItem", THROTTLED, matches=settling)
    faults.fail("eventbridge.PutEvents", THROTTLED)
    provider.fail_with(status, "the provider says no", retry_after=retry_after)

    response = ask(tenant, max_tokens=50)

    assert response.status == (status if status == 429 else 502)
    assert "the provider says no" in response.error["message"]
    if retry_after is not None:
        assert response.headers["retry-after"] == retry_after
        # the provider's limits, not the connection's (which has 9 requests left)
        assert response.headers["x-ratelimit-remaining-requests"] == "0"


def test_a_reserve_applied_whose_answer_was_lost_counts_the_request_once(
    tenant: Tenant, provider: LoopbackProvider, faults: AwsFaults
) -> None:
    connection_id = connect(tenant, provider.base_url, provider.api_key, [{"period": "day", "requests": 2}])
    assert ask(tenant).status == 200
    sent_before = len(faults.of("dynamodb.UpdateItem"))
    faults.lose_answer("dynamodb.UpdateItem", matches=reserving)

    response = ask(tenant)

    # sent twice, admitted once: the retry found its own mark, not a window without room
    reserves = [body for body in faults.of("dynamodb.UpdateItem")[sent_before:] if reserving(body)]
    assert len(reserves) == 2
    assert response.status == 200, response.text
    assert used(tenant, connection_id) == [(2, 0)]
    assert ask(tenant).status == 429


def test_a_reconcile_applied_whose_answer_was_lost_corrects_the_tokens_once(
    tenant: Tenant, provider: LoopbackProvider, faults: AwsFaults
) -> None:
    connection_id = connect(tenant, provider.base_url, provider.api_key, [{"period": "day", "tokens": 100_000}])
    faults.lose_answer("dynamodb.UpdateItem", matches=settling)

    assert ask(tenant, max_tokens=50).status == 200

    assert len([body for body in faults.of("dynamodb.UpdateItem") if settling(body)]) == 2
    # applied once: 19 really used, neither the reservation twice corrected (below what was used) nor left
    assert used(tenant, connection_id) == [(1, 19)]


def test_a_provider_that_cannot_be_connected_to_gives_the_capacity_back(tenant: Tenant, faults: AwsFaults) -> None:
    # a loopback port with nothing listening: the connection is refused before any byte of the request
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    connection_id = connect(
        tenant, f"http://127.0.0.1:{port}/v1", "sk-test", [{"period": "day", "requests": 1, "tokens": 100_000}]
    )

    answers = [ask(tenant, max_tokens=50) for _ in range(2)]

    assert [answer.status for answer in answers] == [502, 502]
    assert answers[0].error["code"] == "provider_unreachable"
    assert used(tenant, connection_id) == [(0, 0)]
    assert recorded_statuses(faults) == [502, 502]


@pytest.mark.parametrize(
    ("answer", "status", "code"),
    [
        ((403, "AccessDenied", "not authorized to perform sts:AssumeRole"), 502, "role_not_assumable"),
        ((400, "Throttling", "Rate exceeded"), 503, "assume_role_throttled"),
        ((500, "InternalFailure", "We encountered an internal error"), 503, "assume_role_failed"),
    ],
    ids=["refused", "throttled", "sts-failing"],
)
def test_a_bedrock_role_that_cannot_be_assumed_gives_the_capacity_back(
    tenant: Tenant, faults: AwsFaults, answer: tuple[int, str, str], status: int, code: str
) -> None:
    config = {"region": "us-east-1", "iamRoleArn": "arn:aws:iam::123456789012:role/vmx-bedrock", "externalId": "vmx-42"}
    body = {"name": "prod", "provider": "aws-bedrock", "config": config, "capacity": [{"period": "day", "requests": 1}]}
    created = tenant.api.post(tenant.connections_path, body)
    assert created.status == 201, created.text
    faults.fail("sts.AssumeRole", answer)

    # Bedrock is never called: the role comes first
    answers = [ask(tenant, model="prod/anthropic.claude-3-haiku-20240307-v1:0") for _ in range(2)]

    assert [answer.status for answer in answers] == [status, status]
    assert answers[0].error["code"] == code
    assert used(tenant, created.body["connectionId"]) == [(0, 0)]
    if status == 503:
        assert answers[0].headers["retry-after"] == "1"


def test_a_request_without_max_tokens_is_sent_the_reserved_cap(
    tenant: Tenant, provider: LoopbackProvider, faults: AwsFaults
) -> None:
    connect(tenant, provider.base_url, provider.api_key, [{"period": "hour", "tokens": 100_000}])

    assert ask(tenant).status == 200

    assert provider.requests[0].body["max_completion_tokens"] == 4096
