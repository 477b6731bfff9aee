"""The consumers as their Lambda handlers run them (Powertools' batch utility) on the DynamoDB adapters: the
poison message of a batch alone fails, duplicates and late arrivals change nothing, and observations of two
models processed at the same moment both persist."""

import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from tests.unit.consumers.events import NOW, completed, observed, sqs_batch
from tests.unit.consumers.usage_contract import DAY
from vmx.connections.models import Connection
from vmx.consumers.discovered import handle_rate_limits_observed
from vmx.consumers.usage import handle_completion_recorded
from vmx.storage.connection_store import DynamoConnectionRepository
from vmx.storage.discovered_store import DynamoDiscoveredCapacity
from vmx.storage.usage_store import DynamoUsageStatistics


def run_batch(bodies: Sequence[str], handle: Callable[[str], object]) -> PartialItemFailureResponse:
    def record_handler(record: SQSRecord) -> None:
        handle(record.body)

    return process_partial_response(
        event=sqs_batch(bodies), record_handler=record_handler, processor=BatchProcessor(event_type=EventType.SQS)
    )


def observation(connection: Connection, model: str, seconds: int, requests: int) -> str:
    return observed(
        workspaceId=connection.workspace_id,
        environmentId=connection.environment_id,
        connectionId=connection.connection_id,
        model=model,
        occurredAt=(NOW + timedelta(seconds=seconds)).isoformat(),
        capacity=[{"period": "minute", "requests": requests, "tokens": 30000}],
    )


def minute_requests(repository: DynamoConnectionRepository, connection: Connection) -> dict[str, int]:
    stored = repository.get(connection.workspace_id, connection.environment_id, connection.connection_id)
    assert stored is not None and stored.discovered_capacity is not None
    return {model: shown["capacity"][0]["requests"] for model, shown in stored.discovered_capacity["models"].items()}


def test_a_batch_of_three_with_one_poison_message_fails_only_that_one(
    writer: DynamoDiscoveredCapacity, repository: DynamoConnectionRepository, stored_connection: Connection
) -> None:
    bodies = [
        observation(stored_connection, "gpt-4o", 0, 500),
        observed(connectionId=stored_connection.connection_id, capacity="not a list"),
        observation(stored_connection, "gpt-4o-mini", 0, 900),
    ]

    result = run_batch(bodies, lambda body: handle_rate_limits_observed(body, writer))

    assert result == {"batchItemFailures": [{"itemIdentifier": "message-1"}]}
    assert minute_requests(repository, stored_connection) == {"gpt-4o": 500, "gpt-4o-mini": 900}


def test_duplicates_and_an_older_observation_after_a_newer_one_change_nothing(
    writer: DynamoDiscoveredCapacity, repository: DynamoConnectionRepository, stored_connection: Connection
) -> None:
    newer, older = observation(stored_connection, "gpt-4o", 60, 5000), observation(stored_connection, "gpt-4o", 0, 500)

    first = run_batch([newer, newer], lambda body: handle_rate_limits_observed(body, writer))
    late = run_batch([older, newer], lambda body: handle_rate_limits_observed(body, writer))

    assert first == late == {"batchItemFailures": []}
    assert minute_requests(repository, stored_connection) == {"gpt-4o": 5000}


def test_two_models_observed_concurrently_both_persist(
    writer: DynamoDiscoveredCapacity, repository: DynamoConnectionRepository, stored_connection: Connection
) -> None:
    # Given two consumers, each with a batch of one model's observations, interleaved in time
    batches = {
        model: [observation(stored_connection, model, 2 * step + offset, 100 * step + offset) for step in range(10)]
        for offset, model in enumerate(["gpt-4o", "gpt-4o-mini"])
    }
    start = threading.Barrier(len(batches))
    results: dict[str, PartialItemFailureResponse] = {}

    def consume(model: str) -> None:
        start.wait(timeout=10)
        results[model] = run_batch(batches[model], lambda body: handle_rate_limits_observed(body, writer))

    # When they process them at the same time
    threads = [threading.Thread(target=consume, args=(model,)) for model in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    # Then each model holds its own latest observation
    assert results == {model: {"batchItemFailures": []} for model in batches}
    assert minute_requests(repository, stored_connection) == {"gpt-4o": 900, "gpt-4o-mini": 901}


def test_completions_are_counted_once_and_the_poison_message_alone_fails(usage: DynamoUsageStatistics) -> None:
    connection_id = f"conn-{uuid.uuid4().hex}"
    once = completed(connection_id, promptTokens=100, completionTokens=10)
    bodies = [
        once,
        completed(connection_id, promptTokens=200, completionTokens=20),
        once,
        completed(connection_id, status="ok"),
    ]

    first = run_batch(bodies, lambda body: handle_completion_recorded(body, usage, NOW))
    redelivered = run_batch([once], lambda body: handle_completion_recorded(body, usage, NOW))

    assert first == {"batchItemFailures": [{"itemIdentifier": "message-3"}]}
    assert redelivered == {"batchItemFailures": []}
    (day,) = usage.series(connection_id, DAY, NOW, NOW + timedelta(hours=1))
    assert (day.requests, day.prompt_tokens, day.completion_tokens, day.total_tokens) == (2, 300, 30, 330)
