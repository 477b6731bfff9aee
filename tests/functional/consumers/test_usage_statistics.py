"""Usage statistics on DynamoDB: the shared contract, one transaction per event, the marker that drops
duplicates and when it expires, and the failures that send a message back to the queue."""

import os
import uuid
from collections.abc import Callable
from datetime import timedelta

import boto3
import pytest
from botocore.stub import Stubber

from tests.functional.consumers.conftest import SetClock
from tests.unit.consumers.events import NOW
from tests.unit.consumers.usage_contract import HOUR, UsageStatisticsContract, completion
from vmx.consumers.ports import Recorded
from vmx.consumers.usage import DEDUPE_HORIZON
from vmx.storage.connection_remains import DynamoConnectionRemains
from vmx.storage.errors import StorageUnavailable
from vmx.storage.usage_store import HOUR_BUCKET_RETENTION, MARKER_LIFETIME, DynamoUsageStatistics

TRANSACT, QUERY = "TransactWriteItems", "Query"


class TestDynamoUsageStatistics(UsageStatisticsContract):
    """The contract's `usage` fixture comes from this folder's conftest."""

    @pytest.fixture
    def delete_connection(self, remains: DynamoConnectionRemains) -> Callable[[str], None]:
        def delete(connection_id: str) -> None:
            remains.remove("ws-1", "env-1", connection_id)

        return delete


def test_counting_is_one_transaction_and_a_duplicate_changes_nothing(
    usage: DynamoUsageStatistics, dynamodb_calls: list[str]
) -> None:
    event = completion(f"conn-{uuid.uuid4().hex}")

    counted, duplicate = usage.record(event), usage.record(event)
    usage.series(event.connection_id, HOUR, NOW - timedelta(days=31), NOW)

    assert (counted, duplicate) == (Recorded.WRITTEN, Recorded.ALREADY)
    assert dynamodb_calls == [TRANSACT, TRANSACT, QUERY]


def test_the_marker_expires_beyond_the_dedupe_horizon_from_when_it_is_written(
    usage: DynamoUsageStatistics, clock: SetClock
) -> None:
    # Given an event delivered for the first time three days after it happened
    event = completion(f"conn-{uuid.uuid4().hex}")
    clock.now = NOW + timedelta(days=3)

    usage.record(event)

    marker = boto3.client("dynamodb").get_item(
        TableName=os.environ["USAGE_TABLE_NAME"], Key={"pk": {"S": f"EVENT#{event.event_id}"}, "sk": {"S": "EVENT"}}
    )["Item"]
    assert int(marker["expiresAt"]["N"]) == int((clock.now + MARKER_LIFETIME).timestamp())
    assert MARKER_LIFETIME > DEDUPE_HORIZON


def test_hour_buckets_expire_after_the_retention_and_day_buckets_stay(usage: DynamoUsageStatistics) -> None:
    event = completion(f"conn-{uuid.uuid4().hex}")

    usage.record(event)

    items = boto3.client("dynamodb").query(
        TableName=os.environ["USAGE_TABLE_NAME"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"USAGE#{event.connection_id}"}},
    )["Items"]
    expiry = {item["sk"]["S"].split("#")[0]: item.get("expiresAt", {}).get("N") for item in items}
    hour_start = event.occurred_at.replace(minute=0, second=0, microsecond=0)
    assert expiry == {"hour": str(int((hour_start + HOUR_BUCKET_RETENTION).timestamp())), "day": None}
    # Counting into an hour again keeps its expiry where it was.
    usage.record(completion(event.connection_id))
    assert usage.series(event.connection_id, HOUR, NOW - timedelta(days=1), NOW + timedelta(days=1))[0].requests == 2


@pytest.fixture
def stubbed() -> tuple[DynamoUsageStatistics, Stubber]:
    client = boto3.client("dynamodb", region_name="us-east-1")
    return DynamoUsageStatistics("usage", "us-east-1", lambda: NOW, client=client), Stubber(client)


def cancelled(stubber: Stubber, *codes: str) -> None:
    stubber.add_client_error(
        "transact_write_items",
        service_error_code="TransactionCanceledException",
        modeled_fields={"CancellationReasons": [{"Code": code} for code in codes]},
    )


def test_a_conflict_with_a_concurrent_writer_is_retried(stubbed: tuple[DynamoUsageStatistics, Stubber]) -> None:
    usage, stubber = stubbed
    cancelled(stubber, "None", "TransactionConflict", "None", "None")
    stubber.add_response("transact_write_items", {})

    with stubber:
        counted = usage.record(completion("conn-1"))

    assert counted is Recorded.WRITTEN
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    "fail",
    [
        lambda stubber: stubber.add_client_error(
            "transact_write_items", service_error_code="ProvisionedThroughputExceededException"
        ),
        lambda stubber: cancelled(stubber, "None", "ThrottlingError", "None", "None"),
    ],
    ids=["throttled", "cancelled-by-throttling"],
)
def test_other_failures_are_storage_unavailable_so_the_message_is_retried(
    stubbed: tuple[DynamoUsageStatistics, Stubber], fail: Callable[[Stubber], None]
) -> None:
    usage, stubber = stubbed
    fail(stubber)

    with stubber, pytest.raises(StorageUnavailable):
        usage.record(completion("conn-1"))
