"""Usage statistics in the usage table: hourly and daily buckets per connection, counted once per event.

Keys: `USAGE#<connectionId>` / `<granularity>#<start>` for a bucket (its start in UTC, as text that sorts
as time does), holding `requests`, `promptTokens`, `completionTokens`, `errors`, `refusedForCapacity` and
one counter `lat_<i>` per latency bucket (vmx.consumers.usage_stats.LATENCY_BOUNDS_MS); `EVENT#<eventId>` /
`EVENT`, the marker of a counted event, which expires MARKER_LIFETIME after it was written (at least
vmx.consumers.usage.DEDUPE_HORIZON, how long a copy of an event can still be delivered); and
`DELETED#<connectionId>` / `DELETED`, the tombstone of a deleted connection (written by
vmx.storage.connection_remains), which expires TOMBSTONE_LIFETIME after it was written.
An hour bucket expires HOUR_BUCKET_RETENTION after its start (about 2,200 items per connection at most);
day buckets are kept until their connection is deleted.

Counting is one transaction: put the marker if it is absent, ADD to the hour and the day, and check that the
connection has no tombstone. A marker already there cancels it all (a redelivered event counts nothing), and
so does a tombstone (an event arriving after the delete brings no bucket back). This uses the low-level client
because the latency counters are named at run time, which pynamodb's declared attributes cannot express.
"""

import random
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from vmx.clock import Clock
from vmx.consumers.inputs import RecordedCompletion
from vmx.consumers.ports import Recorded
from vmx.consumers.usage import DEDUPE_HORIZON
from vmx.consumers.usage_stats import LATENCY_BOUNDS_MS, Granularity, UsageBucket, UsageCounts, bucket_start
from vmx.storage import low_level

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, TransactWriteItemTypeDef

# the table's TTL attribute (USAGE_TABLE in infra/system.py)
_EXPIRES_AT = "expiresAt"
# A day beyond the horizon: TTL deletes an item some time after it expires, never before.
MARKER_LIFETIME = DEDUPE_HORIZON + timedelta(days=1)
# Events of a deleted connection keep arriving for as long as events are delivered at all (the last ones from
# completions that finished after the delete), and are refused once older than the horizon.
TOMBSTONE_LIFETIME = DEDUPE_HORIZON + timedelta(days=1)
# Three months of hourly detail: an hour series spans at most 31 days (usage_range.MAX_SPAN).
HOUR_BUCKET_RETENTION = timedelta(days=92)
_START_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# Every completion of a connection adds to the same two items, so concurrent consumers' transactions can
# collide (TransactionConflict); exponential backoff with full jitter spreads them out (about 6 s at worst).
_CONFLICT_ATTEMPTS = 8
_CONFLICT_BACKOFF_SECONDS = 0.025

_Item = Mapping[str, Any]


class DynamoUsageStatistics:
    def __init__(self, table_name: str, region: str, clock: Clock, client: "DynamoDBClient | None" = None):
        """`clock` dates the markers; `client` replaces the default one in tests that count or stub DynamoDB calls."""
        self._table_name = table_name
        self._clock = clock
        self._client = client or low_level.dynamodb_client(region)

    def record(self, completion: RecordedCompletion) -> Recorded:
        counts = _attributes(UsageCounts.of(completion))
        # from now, not from when the event happened: a redelivery can come that long after the first delivery
        expires = int((self._clock() + MARKER_LIFETIME).timestamp())
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
            {
                "ConditionCheck": {
                    "TableName": self._table_name,
                    "Key": tombstone_key(completion.connection_id),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
        ]
        attempt = 0
        while True:
            attempt += 1
            try:
                self._client.transact_write_items(TransactItems=items)
            except ClientError as exc:
                reasons = [reason.get("Code") for reason in exc.response.get("CancellationReasons", [])]
                if reasons[:1] == ["ConditionalCheckFailed"]:
                    return Recorded.ALREADY
                if reasons[-1:] == ["ConditionalCheckFailed"]:
                    return Recorded.CONNECTION_DELETED
                if "TransactionConflict" in reasons and attempt < _CONFLICT_ATTEMPTS:
                    time.sleep(random.uniform(0, _CONFLICT_BACKOFF_SECONDS * 2**attempt))  # noqa: S311 - jitter, not crypto
                    continue
                raise low_level.unavailable(exc) from exc
            except BotoCoreError as exc:
                raise low_level.unavailable(exc) from exc
            return Recorded.WRITTEN

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


def usage_partition(connection_id: str) -> str:
    """The partition of a connection's buckets (and nothing else)."""
    return _usage_pk(connection_id)


def tombstone_key(connection_id: str) -> dict[str, "AttributeValueTypeDef"]:
    """The item whose presence says the connection is deleted: no usage may be counted for it."""
    return {"pk": low_level.string(f"DELETED#{connection_id}"), "sk": low_level.string("DELETED")}


def _usage_pk(connection_id: str) -> str:
    return f"USAGE#{connection_id}"


def _bucket_sk(granularity: Granularity, start: datetime) -> str:
    return f"{granularity.value}#{start.astimezone(UTC).strftime(_START_FORMAT)}"


def _marker_key(event_id: str) -> dict[str, "AttributeValueTypeDef"]:
    return {"pk": low_level.string(f"EVENT#{event_id}"), "sk": low_level.string("EVENT")}
