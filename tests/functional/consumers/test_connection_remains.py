"""Deleting a connection, through the real handlers on moto: the connection-remains consumer removes its
capacity counters, usage buckets and discovered capacity, and nothing written after the delete brings any of
them back: not a completion in flight that settles after it, not a CompletionRecorded event or an
observation delivered after it."""

import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from functions.connection_remains import handler as connection_remains
from functions.discovery import handler as discovery
from functions.usage import handler as usage
from infra.system import CONNECTION_REMAINS, DISCOVERY, USAGE
from local_stack.lambda_runtime import new_context
from tests.functional.conftest import Tenant
from tests.loopback_providers import LOOPBACK_PIECES, LoopbackProvider, loopback_provider
from tests.unit.consumers.events import completion_detail, eventbridge_body, rate_limits_detail, sqs_batch
from vmx.consumers.connection_remains import CONNECTION_DELETED
from vmx.consumers.discovered import RATE_LIMITS_OBSERVED
from vmx.consumers.usage import COMPLETION_RECORDED


@pytest.fixture
def provider() -> Iterator[LoopbackProvider]:
    with loopback_provider("openai") as server:
        yield server


@pytest.fixture
def connection(tenant: Tenant, provider: LoopbackProvider) -> dict[str, Any]:
    body = {
        "name": "openai-prod",
        "provider": "openai",
        "config": {"apiKey": provider.api_key, "baseUrl": provider.base_url},
        "capacity": [
            {"period": "day", "requests": 100, "tokens": 1_000_000},
            {"period": "lifetime", "requests": 1000, "dimension": "source-ip"},
        ],
    }
    created = tenant.api.post(tenant.connections_path, body)
    assert created.status == 201, created.text
    connection: dict[str, Any] = created.body
    return connection


def about(connection: dict[str, Any]) -> dict[str, Any]:
    return {
        "occurredAt": datetime.now(UTC).isoformat(),
        "workspaceId": connection["workspaceId"],
        "environmentId": connection["environmentId"],
        "connectionId": connection["connectionId"],
    }


def recorded(connection: dict[str, Any]) -> str:
    return eventbridge_body(COMPLETION_RECORDED, completion_detail(**about(connection)))


def observed(connection: dict[str, Any]) -> str:
    return eventbridge_body(RATE_LIMITS_OBSERVED, rate_limits_detail(**about(connection)))


def deleted(connection: dict[str, Any]) -> str:
    detail = {
        "version": "1",
        "eventId": str(uuid.uuid4()),
        **about(connection),
        "name": connection["name"],
        "provider": "openai",
        "connectionVersion": connection["version"],
        "actor": "key-1",
    }
    return eventbridge_body(CONNECTION_DELETED, detail)


def consume(handler: Any, spec: Any, *bodies: str) -> Any:
    return handler.lambda_handler(sqs_batch(bodies), new_context(spec))


def sort_keys(table_env_var: str, partition: str, prefix: str = "") -> list[str]:
    response = boto3.client("dynamodb").query(
        TableName=os.environ[table_env_var],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": partition}},
        ConsistentRead=True,
    )
    return sorted(item["sk"]["S"] for item in response["Items"] if item["sk"]["S"].startswith(prefix))


def remains(connection: dict[str, Any]) -> dict[str, list[str]]:
    connection_id = connection["connectionId"]
    partition = f"WS#{connection['workspaceId']}#ENV#{connection['environmentId']}"
    return {
        "counters": sort_keys("CAPACITY_TABLE_NAME", f"CAP#{connection_id}"),
        "usage": sort_keys("USAGE_TABLE_NAME", f"USAGE#{connection_id}"),
        "discovered": sort_keys("CONNECTIONS_TABLE_NAME", partition, f"DISC#{connection_id}#"),
    }


NOTHING: dict[str, list[str]] = {"counters": [], "usage": [], "discovered": []}


def completions_path(tenant: Tenant) -> str:
    return f"{tenant.workspace_path}/environments/{tenant.environment_id}/chat/completions"


def ask(tenant: Tenant, **fields: Any) -> Any:
    body = {"model": "openai-prod/gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}], **fields}
    return tenant.api.post(completions_path(tenant), body)


def test_the_remains_go_and_nothing_after_the_delete_brings_them_back(
    tenant: Tenant, provider: LoopbackProvider, connection: dict[str, Any]
) -> None:
    # Given a connection with counters, usage and discovered capacity
    assert ask(tenant).status == 200
    assert consume(usage, USAGE, recorded(connection)) == {"batchItemFailures": []}
    assert consume(discovery, DISCOVERY, observed(connection)) == {"batchItemFailures": []}
    before = remains(connection)
    assert before["counters"] == ["GLOBAL", "IP#198.51.100.7"]
    assert [sk.split("#")[0] for sk in before["usage"]] == ["day", "hour"]
    assert before["discovered"] == [f"DISC#{connection['connectionId']}#gpt-4o"]
    # and a streamed completion in flight, its capacity reserved, its provider holding the rest
    provider.stream_with(list(LOOPBACK_PIECES))
    gate = provider.hold_after(1)
    body = {"model": "openai-prod/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {tenant.admin_key}"}
    in_flight = tenant.api.open("POST", completions_path(tenant), json.dumps(body).encode(), headers)
    assert in_flight.status == 200 and in_flight.stream is not None and in_flight.finish is not None
    received = in_flight.body
    while LOOPBACK_PIECES[0].encode() not in received:
        received += next(in_flight.stream)

    # When the connection is deleted and its ConnectionDeleted event reaches the consumer
    assert tenant.api.delete(f"{tenant.connections_path}/{connection['connectionId']}").status == 204
    removal = consume(connection_remains, CONNECTION_REMAINS, deleted(connection))

    # Then its remains are gone
    assert removal == {"batchItemFailures": []}
    assert remains(connection) == NOTHING

    # and the completion in flight settles after the delete without bringing a counter back
    gate.set()
    received += b"".join(in_flight.stream)
    in_flight.finish()
    assert b"[DONE]" in received
    assert remains(connection)["counters"] == []

    # nor do a completion's event or an observation delivered after the delete
    assert consume(usage, USAGE, recorded(connection)) == {"batchItemFailures": []}
    assert consume(discovery, DISCOVERY, observed(connection)) == {"batchItemFailures": []}
    assert remains(connection) == NOTHING
    # and a redelivered delete finds nothing to do
    assert consume(connection_remains, CONNECTION_REMAINS, deleted(connection)) == {"batchItemFailures": []}
    assert remains(connection) == NOTHING


def test_another_connection_keeps_its_remains(tenant: Tenant, provider: LoopbackProvider) -> None:
    created = [
        tenant.api.post(
            tenant.connections_path,
            {
                "name": name,
                "provider": "openai",
                "config": {"apiKey": provider.api_key, "baseUrl": provider.base_url},
                "capacity": [{"period": "day", "requests": 100}],
            },
        ).body
        for name in ("gone", "kept")
    ]
    gone, kept = created
    for connection in created:
        assert ask(tenant, model=f"{connection['name']}/gpt-4o-mini").status == 200
        consume(usage, USAGE, recorded(connection))
        consume(discovery, DISCOVERY, observed(connection))
    kept_before = remains(kept)

    assert tenant.api.delete(f"{tenant.connections_path}/{gone['connectionId']}").status == 204
    consume(connection_remains, CONNECTION_REMAINS, deleted(gone))

    assert remains(gone) == NOTHING
    assert remains(kept) == kept_before
    assert all(kept_before.values())
