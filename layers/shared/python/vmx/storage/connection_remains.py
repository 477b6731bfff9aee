"""What a deleted connection leaves in the tables, and its removal (vmx.consumers.connection_remains).

- capacity table: every item of the partition `CAP#<connectionId>` (its own windows and each client IP's; the
  layout is vmx.storage.capacity_store's), which only per-IP items would ever have left by themselves;
- usage table: every item of `USAGE#<connectionId>` (hour and day buckets), after a tombstone
  (vmx.storage.usage_store.tombstone_key) that makes the usage store refuse the connection's later events;
- connections table: the `DISC#<connectionId>#<model>` items of discovered capacity, which the connection
  store deletes with the connection as best it can, and which no observation can write once it is gone.

Each partition is read with consistent reads, and its items are deleted 25 to a BatchWriteItem; what DynamoDB
leaves unprocessed is sent again a few times, and then the whole removal fails, to be retried from its queue.
The tombstone comes first, so a bucket counted while the buckets are deleted is deleted too, or never counted.
"""

import random
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from vmx.clock import Clock
from vmx.consumers.ports import RemovedRemains
from vmx.storage import low_level
from vmx.storage.connection_store import discovered_capacity_key
from vmx.storage.errors import StorageUnavailable
from vmx.storage.usage_store import TOMBSTONE_LIFETIME, tombstone_key, usage_partition

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, WriteRequestTypeDef

_BATCH = 25
_UNPROCESSED_ATTEMPTS = 6
_UNPROCESSED_BACKOFF_SECONDS = 0.05
# the usage table's TTL attribute (USAGE_TABLE in infra/system.py)
_EXPIRES_AT = "expiresAt"

_Key = dict[str, "AttributeValueTypeDef"]


class DynamoConnectionRemains:
    def __init__(
        self,
        *,
        capacity_table: str,
        usage_table: str,
        connections_table: str,
        region: str,
        clock: Clock,
        client: "DynamoDBClient | None" = None,
    ):
        self._capacity_table = capacity_table
        self._usage_table = usage_table
        self._connections_table = connections_table
        self._clock = clock
        self._client = client or low_level.dynamodb_client(region)

    def remove(self, workspace_id: str, environment_id: str, connection_id: str) -> RemovedRemains:
        try:
            self._bury(connection_id)
            counters = self._delete(self._capacity_table, f"CAP#{connection_id}")
            buckets = self._delete(self._usage_table, usage_partition(connection_id))
            partition, prefix = discovered_capacity_key(workspace_id, environment_id, connection_id, model="")
            discovered = self._delete(self._connections_table, partition, prefix)
        except (BotoCoreError, ClientError) as exc:
            raise low_level.unavailable(exc) from exc
        return RemovedRemains(counters=counters, usage_buckets=buckets, discovered=discovered)

    def _bury(self, connection_id: str) -> None:
        expires = int((self._clock() + TOMBSTONE_LIFETIME).timestamp())
        self._client.put_item(
            TableName=self._usage_table,
            Item={**tombstone_key(connection_id), _EXPIRES_AT: low_level.number(expires)},
        )

    def _delete(self, table: str, partition: str, sort_key_prefix: str | None = None) -> int:
        deleted = 0
        batch: list[_Key] = []
        for key in self._keys(table, partition, sort_key_prefix):
            batch.append(key)
            if len(batch) == _BATCH:
                deleted += self._delete_batch(table, batch)
                batch = []
        if batch:
            deleted += self._delete_batch(table, batch)
        return deleted

    def _keys(self, table: str, partition: str, sort_key_prefix: str | None) -> Iterator[_Key]:
        query: dict[str, Any] = {
            "TableName": table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": low_level.string(partition)},
            "ProjectionExpression": "pk, sk",
            "ConsistentRead": True,
        }
        if sort_key_prefix is not None:
            query["KeyConditionExpression"] += " AND begins_with(sk, :prefix)"
            query["ExpressionAttributeValues"][":prefix"] = low_level.string(sort_key_prefix)
        while True:
            page = self._client.query(**query)
            for item in page.get("Items", []):
                yield {"pk": item["pk"], "sk": item["sk"]}
            if "LastEvaluatedKey" not in page:
                return
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _delete_batch(self, table: str, keys: list[_Key]) -> int:
        pending: list[WriteRequestTypeDef] = [{"DeleteRequest": {"Key": key}} for key in keys]
        for attempt in range(_UNPROCESSED_ATTEMPTS):
            if attempt:
                time.sleep(random.uniform(0, _UNPROCESSED_BACKOFF_SECONDS * 2**attempt))  # noqa: S311 - jitter, not crypto
            response = self._client.batch_write_item(RequestItems={table: pending})
            unprocessed: Mapping[str, Any] = response.get("UnprocessedItems", {})
            pending = list(unprocessed.get(table, []))
            if not pending:
                return len(keys)
        raise StorageUnavailable(f"DynamoDB left {len(pending)} deletes unprocessed")
