"""Discovered capacity in the connections table: one item per model of a connection, beside it in its
environment's partition (`DISC#<connectionId>#<model>`; `vmx.storage.connection_store` reads them).

An observation is one transaction: update the model's item, conditional on no observation of that model at
least as recent being stored (the same event twice, or an older one arriving after a newer, writes nothing),
and check that the connection's own item still exists, so an observation arriving after the delete leaves
nothing behind. Observations are written only when they differ from what the connection shows, so the
transaction's doubled cost is small.
"""

from collections.abc import Sequence
from datetime import datetime

from pynamodb.connection import Connection as DynamoConnection

from vmx.consumers.inputs import ObservedLimit
from vmx.consumers.ports import Recorded
from vmx.storage.connection_store import connection_key, discovered_capacity_key
from vmx.storage.items import connection_items
from vmx.storage.transactions import Transaction


class DynamoDiscoveredCapacity:
    def __init__(self, table_name: str, region: str):
        items = connection_items(table_name, region)
        self._item = items.discovered_capacity
        self._connection_item = items.connection
        self._connection = DynamoConnection(region=region)

    def record(
        self,
        workspace_id: str,
        environment_id: str,
        connection_id: str,
        model: str,
        capacity: Sequence[ObservedLimit],
        observed_at: datetime,
        source: str,
    ) -> Recorded:
        item_class = self._item
        limit_class = item_class.capacity.element_type
        item = item_class(*discovered_capacity_key(workspace_id, environment_id, connection_id, model))
        limits = [
            limit_class(
                period=limit.period.value,
                requests=limit.requests,
                tokens=limit.tokens,
                input_tokens=limit.input_tokens,
                output_tokens=limit.output_tokens,
            )
            for limit in capacity
        ]
        connection = self._connection_item
        transaction = Transaction(self._connection)
        transaction.condition_check(
            "connection",
            connection,
            *connection_key(workspace_id, environment_id, connection_id),
            condition=connection.pk.exists(),
        )
        transaction.update(
            "observation",
            item,
            actions=[
                item_class.connection_id.set(connection_id),
                item_class.model.set(model),
                item_class.capacity.set(limits),
                item_class.observed_at.set(observed_at),
                item_class.source.set(source),
            ],
            condition=item_class.sk.does_not_exist() | (item_class.observed_at < observed_at),
        )
        failed = transaction.commit()
        if "connection" in failed:
            return Recorded.CONNECTION_DELETED
        if failed:
            return Recorded.ALREADY
        return Recorded.WRITTEN
