"""Discovered capacity in the connections table: one item per model of a connection, beside it in its
environment's partition (`DISC#<connectionId>#<model>`; `vmx.storage.connection_store` reads them).

An observation is one UpdateItem, conditional on no observation of that model at least as recent being
stored: the same event twice, or an older one arriving after a newer, writes nothing. Whether the
connection still exists is not checked (that would take a transaction with a ConditionCheck, twice the
writes): an observation racing the connection's delete may leave one item behind, which nothing shows,
since connection ids are never reused.
"""

from collections.abc import Sequence
from datetime import datetime

from pynamodb.exceptions import UpdateError

from vmx.consumers.inputs import ObservedLimit
from vmx.storage.connection_store import discovered_capacity_key
from vmx.storage.errors import unavailable
from vmx.storage.items import connection_items


class DynamoDiscoveredCapacity:
    def __init__(self, table_name: str, region: str):
        self._item = connection_items(table_name, region).discovered_capacity

    def record(
        self,
        workspace_id: str,
        environment_id: str,
        connection_id: str,
        model: str,
        capacity: Sequence[ObservedLimit],
        observed_at: datetime,
        source: str,
    ) -> bool:
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
        try:
            item.update(
                actions=[
                    item_class.connection_id.set(connection_id),
                    item_class.model.set(model),
                    item_class.capacity.set(limits),
                    item_class.observed_at.set(observed_at),
                    item_class.source.set(source),
                ],
                condition=item_class.sk.does_not_exist() | (item_class.observed_at < observed_at),
            )
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise unavailable(exc) from exc
        return True
