"""Discovered capacity on DynamoDB: the writer's contract, how the connection store shows it and what that
costs, and why it lives apart from the connection item: no connection write can lose an observation."""

import os
from collections.abc import Callable
from datetime import timedelta

import boto3
import pytest

from tests.unit.consumers.discovered_contract import (
    MINUTE_LIMITS,
    ConnectionAddress,
    Discovered,
    DiscoveredCapacityWriterContract,
    shown,
)
from tests.unit.consumers.events import NOW
from vmx.connections.models import Connection
from vmx.consumers.ports import Recorded
from vmx.storage.connection_store import DynamoConnectionRepository
from vmx.storage.discovered_store import DynamoDiscoveredCapacity

OBSERVED_AT = "2025-03-14T12:30:15+00:00"


class TestDynamoDiscoveredCapacity(DiscoveredCapacityWriterContract):
    """`writer` and `connection` come from this folder's conftest."""

    @pytest.fixture
    def discovered(self, repository: DynamoConnectionRepository) -> Discovered:
        def read(at: ConnectionAddress) -> dict[str, object] | None:
            connection = repository.get(at.workspace_id, at.environment_id, at.connection_id)
            assert connection is not None
            return connection.discovered_capacity

        return read

    @pytest.fixture
    def delete_connection(
        self, repository: DynamoConnectionRepository, stored_connection: Connection
    ) -> Callable[[ConnectionAddress], None]:
        def delete(at: ConnectionAddress) -> None:
            assert at.connection_id == stored_connection.connection_id
            repository.remove(stored_connection)

        return delete

    @pytest.fixture
    def discovered_after_delete(self, stored_connection: Connection) -> Callable[[ConnectionAddress], list[str]]:
        return lambda _: discovered_keys(stored_connection)


def observe(writer: DynamoDiscoveredCapacity, connection: Connection, model: str, seconds: int = 0) -> Recorded:
    return writer.record(
        connection.workspace_id,
        connection.environment_id,
        connection.connection_id,
        model,
        MINUTE_LIMITS,
        NOW + timedelta(seconds=seconds),
        "response-headers",
    )


def test_a_connection_write_that_read_before_an_observation_keeps_it(
    repository: DynamoConnectionRepository, writer: DynamoDiscoveredCapacity, stored_connection: Connection
) -> None:
    # Given a PATCH that read the connection before the provider's limits were recorded
    before = repository.get(
        stored_connection.workspace_id, stored_connection.environment_id, stored_connection.connection_id
    )
    assert before is not None and before.discovered_capacity is None
    observe(writer, stored_connection, "gpt-4o")

    # When it writes what it read, changed
    repository.replace(before, before.model_copy(update={"description": "renamed", "version": before.version + 1}))

    # Then the observation is still there
    after = repository.get(before.workspace_id, before.environment_id, before.connection_id)
    assert after is not None
    assert (after.description, after.version) == ("renamed", before.version + 1)
    assert after.discovered_capacity == {"models": {"gpt-4o": shown(MINUTE_LIMITS, OBSERVED_AT)}}


def test_an_observation_is_one_transaction_written_or_not(
    writer: DynamoDiscoveredCapacity, stored_connection: Connection, pynamodb_calls: list[str]
) -> None:
    written = observe(writer, stored_connection, "gpt-4o")
    duplicate = observe(writer, stored_connection, "gpt-4o")

    assert (written, duplicate) == (Recorded.WRITTEN, Recorded.ALREADY)
    assert pynamodb_calls == ["TransactWriteItems", "TransactWriteItems"]


def test_reading_a_connection_costs_one_query_more(
    repository: DynamoConnectionRepository,
    writer: DynamoDiscoveredCapacity,
    stored_connection: Connection,
    pynamodb_calls: list[str],
) -> None:
    observe(writer, stored_connection, "gpt-4o")
    observe(writer, stored_connection, "gpt-4o-mini")
    pynamodb_calls.clear()

    by_id = repository.get(
        stored_connection.workspace_id, stored_connection.environment_id, stored_connection.connection_id
    )
    by_id_calls = list(pynamodb_calls)
    pynamodb_calls.clear()
    by_name = repository.get_by_name(stored_connection.workspace_id, stored_connection.environment_id, "OPENAI-PROD")

    assert by_id is not None and by_name is not None
    assert by_id.discovered_capacity == by_name.discovered_capacity
    assert by_id.discovered_capacity is not None
    assert set(by_id.discovered_capacity["models"]) == {"gpt-4o", "gpt-4o-mini"}
    assert by_id_calls == ["GetItem", "Query"]
    assert pynamodb_calls == ["GetItem", "GetItem", "Query"]


def test_a_page_costs_one_query_more_however_many_connections_it_holds(
    repository: DynamoConnectionRepository,
    writer: DynamoDiscoveredCapacity,
    new_connection: Callable[..., Connection],
    pynamodb_calls: list[str],
) -> None:
    observed = [new_connection(f"observed-{index}") for index in range(3)]
    unobserved = new_connection("unobserved")
    for index, connection in enumerate(observed):
        observe(writer, connection, f"model-{index}")
    pynamodb_calls.clear()

    page = repository.list_page(unobserved.workspace_id, unobserved.environment_id, 10, None, None)

    assert pynamodb_calls == ["Query", "Query"]
    discovered = {connection.name: connection.discovered_capacity for connection in page.items}
    assert discovered == {
        "unobserved": None,
        **{
            f"observed-{index}": {"models": {f"model-{index}": shown(MINUTE_LIMITS, OBSERVED_AT)}} for index in range(3)
        },
    }


def test_deleting_a_connection_deletes_its_observations_and_no_other(
    repository: DynamoConnectionRepository,
    writer: DynamoDiscoveredCapacity,
    new_connection: Callable[..., Connection],
) -> None:
    deleted, kept = new_connection("deleted"), new_connection("kept")
    for connection in (deleted, kept):
        observe(writer, connection, "gpt-4o")
        observe(writer, connection, "gpt-4o-mini")

    repository.remove(deleted)

    assert discovered_keys(deleted) == []
    assert discovered_keys(kept) == [f"DISC#{kept.connection_id}#gpt-4o", f"DISC#{kept.connection_id}#gpt-4o-mini"]


def discovered_keys(connection: Connection) -> list[str]:
    response = boto3.client("dynamodb").query(
        TableName=os.environ["CONNECTIONS_TABLE_NAME"],
        KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues={
            ":pk": {"S": f"WS#{connection.workspace_id}#ENV#{connection.environment_id}"},
            ":prefix": {"S": f"DISC#{connection.connection_id}#"},
        },
        ConsistentRead=True,
    )
    return [item["sk"]["S"] for item in response["Items"]]
