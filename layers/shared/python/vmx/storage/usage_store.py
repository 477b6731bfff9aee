"""Usage statistics in the usage table: hourly and daily buckets per connection, counted once per event.

Keys: `USAGE#<connectionId>` / `<granularity>#<start>` for a bucket (its start in UTC, as text that sorts
as time does), holding `requests`, `promptTokens`, `completionTokens`, `errors`, `refusedForCapacity` and
one counter `lat_<i>` per latency bucket (vmx.consumers.usage_stats.LATENCY_BOUNDS_MS); and
`EVENT#<eventId>` / `EVENT`, the marker of a counted event. It expires two days after the event: EventBridge
retries a delivery for at most 24 hours, and SQS redelivers within maxReceiveCount visibility timeouts.
An hour bucket expires HOUR_BUCKET_RETENTION after its start (about 2,200 items per connection at most);
day buckets are kept.

Counting is one transaction: put the marker if it is absent, and ADD to the hour and the day. A marker
already there cancels it all: a redelivered event counts nothing. This uses the low-level client because
the latency counters are named at run time, which pynamodb's declared attributes cannot express.
"""

import random
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from vmx.consumers.inputs import RecordedCompletion
from vmx.consumers.usage_stats import LATENCY_BOUNDS_MS, Granularity, UsageBucket, UsageCounts, bucket_start
from vmx.storage import low_level

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, TransactWriteItemTypeDef

# the table's TTL attribute (USAGE_TABLE in infra/system.py)
_EXPIRES_AT = "expiresAt"
_MARKER_LIFETIME = timedelta(days=2)
# Three months of hourly detail: an hour series spans at most 31 days (usage_range.MAX_SPAN).
HOUR_BUCKET_RETENTION = timedelta(days=92)
_START_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# Every completion of a connection adds to the same two items, so concurrent consumers' transactions can
# collide (TransactionConflict); exponential backoff with full jitter spreads them out (about 6 s at worst).
_CONFLICT_ATTEMPTS = 8
_CONFLICT_BACKOFF_SECONDS = 0.025

_Item = Mapping[str, Any]


class DynamoUsageStatistics:
    def __init__(self, table_name: str, region: str, client: "DynamoDBClient | None" = None):
        """`client` replaces the default one in tests that count or stub DynamoDB calls."""
        self._table_name = table_name
        self._client = client or boto3.client("dynamodb", region_name=region)

    def record(self, completion: RecordedCompletion) -> bool:
        counts = _attributes(UsageCounts.of(completion))
        expires = int((completion.occurred_at + _MARKER_LIFETIME).timestamp())
        items: list[TransactWriteItemTypeDef] = [
            {
                "Put": {
                    "TableName": self._table_name,
                    "Item": {**_marker_key(completion.event_id), _EXPIRES_AT: low_level.number(expires)},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            *(
                self._add(
                    completion.connection_id, granularity, bucket_start(granularity, completion.occurred_at), counts
                )
                for granularity in Granularity
            ),
        ]
        attempt = 0
        while True:
            attempt += 1
            try:
                self._client.transact_write_items(TransactItems=items)
            except ClientError as exc:
                reasons = [reason.get("Code") for reason in exc.response.get("CancellationReasons", [])]
                if reasons[:1] == ["ConditionalCheckFailed"]:
                    return False
                if "TransactionConflict" in reasons and attempt < _CONFLICT_ATTEMPTS:
                    time.sleep(random.uniform(0, _CONFLICT_BACKOFF_SECONDS * 2**attempt))  # noqa: S311 - jitter, not crypto
                    continue
                raise low_level.unavailable(exc) from exc
            except BotoCoreError as exc:
                raise low_level.unavailable(exc) from exc
            return True

    def series(self, connection_id: str, granularity: Granularity, start: datetime, end: datetime) -> list[UsageBucket]:
        first = bucket_start(granularity, start)
        buckets: list[UsageBucket] = []
        query: dict[str, Any] = {
            "TableName": self._table_name,
            # inclusive at both ends; a bucket starting exactly at `end` is dropped below
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :first AND :last",
            "ExpressionAttributeValues": {
                ":pk": low_level.string(_usage_pk(connection_id)),
                ":first": low_level.string(_bucket_sk(granularity, first)),
                ":last": low_level.string(_bucket_sk(granularity, end)),
            },
        }
        try:
            while True:
                page = self._client.query(**query)
                buckets += [_bucket(item) for item in page.get("Items", [])]
                if "LastEvaluatedKey" not in page:
                    break
                query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        except (BotoCoreError, ClientError) as exc:
            raise low_level.unavailable(exc) from exc
        return [bucket for bucket in buckets if bucket.start < end]

    def _add(
        self, connection_id: str, granularity: Granularity, start: datetime, counts: Mapping[str, int]
    ) -> "TransactWriteItemTypeDef":
        placeholders = {name: f":v{index}" for index, name in enumerate(counts)}
        expression = "ADD " + ", ".join(f"{name} {placeholders[name]}" for name in counts)
        values = {placeholders[name]: low_level.number(value) for name, value in counts.items()}
        if granularity is Granularity.HOUR:
            expression += f" SET {_EXPIRES_AT} = :expires"
            values[":expires"] = low_level.number(int((start + HOUR_BUCKET_RETENTION).timestamp()))
        return {
            "Update": {
                "TableName": self._table_name,
                "Key": {
                    "pk": low_level.string(_usage_pk(connection_id)),
                    "sk": low_level.string(_bucket_sk(granularity, start)),
                },
                "UpdateExpression": expression,
                "ExpressionAttributeValues": values,
            }
        }


def _attributes(counts: UsageCounts) -> dict[str, int]:
    """The counters to add, by attribute name; latency buckets that stay at zero are left out."""
    return {
        "requests": counts.requests,
        "promptTokens": counts.prompt_tokens,
        "completionTokens": counts.completion_tokens,
        "errors": counts.errors,
        "refusedForCapacity": counts.refused_for_capacity,
    } | {f"lat_{index}": count for index, count in enumerate(counts.latency) if count}


def _bucket(item: _Item) -> UsageBucket:
    def count(attribute: str) -> int:
        return int(item[attribute]["N"]) if attribute in item else 0

    counts = UsageCounts(
        requests=count("requests"),
        prompt_tokens=count("promptTokens"),
        completion_tokens=count("completionTokens"),
        errors=count("errors"),
        refused_for_capacity=count("refusedForCapacity"),
        latency=tuple(count(f"lat_{index}") for index in range(len(LATENCY_BOUNDS_MS))),
    )
    start = datetime.strptime(item["sk"]["S"].split("#", 1)[1], _START_FORMAT).replace(tzinfo=UTC)
    return UsageBucket.of(start, counts)


def _usage_pk(connection_id: str) -> str:
    return f"USAGE#{connection_id}"


def _bucket_sk(granularity: Granularity, start: datetime) -> str:
    return f"{granularity.value}#{start.astimezone(UTC).strftime(_START_FORMAT)}"


def _marker_key(event_id: str) -> dict[str, "AttributeValueTypeDef"]:
    return {"pk": low_level.string(f"EVENT#{event_id}"), "sk": low_level.string("EVENT")}
