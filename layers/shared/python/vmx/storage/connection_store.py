"""AI connections in the connections table.

An environment's connections share the partition `WS#<ws>#ENV#<env>`: each is `CONN#<id>` beside a
`NAME#<casefolded name>` claim that keeps names unique under concurrent writes. The `byCreatedAt`
local index lists them newest first with consistent reads. Every write is one transaction that also
keeps the connection counts on the environment and workspace items exact, which is what lets a
delete of a non-empty environment or workspace be refused without a race.

The limits providers report live beside the connection, one `DISC#<connectionId>#<model>` item per
model (written by `vmx.storage.discovered_store`), never in the connection item: a connection write
replaces its whole item and would otherwise drop an observation made since it was read. They have no
`createdSk`, so the local index never sees them.
"""

import contextlib
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator
from typing import Any

from pynamodb.connection import Connection as DynamoConnection
from pynamodb.exceptions import PynamoDBException

from vmx.capacity.limits import CapacityEntry, Prioritization
from vmx.connections.models import Connection
from vmx.connections.ports import StaleVersion
from vmx.credentials.sealed import SealedSecret
from vmx.errors import Conflict, NotFound
from vmx.fields import name_key
from vmx.pagination import Page, decode_token, encode_token
from vmx.providers.catalog import ProviderId
from vmx.storage.errors import query_failed, unavailable
from vmx.storage.items import ConnectionItems, TenancyItems, connection_items, tenancy_items
from vmx.storage.transactions import Transaction

_INDEX_ATTRIBUTES = frozenset({"pk", "sk", "createdSk"})


def _partition(workspace_id: str, environment_id: str) -> str:
    return f"WS#{workspace_id}#ENV#{environment_id}"


def _connection_sk(connection_id: str) -> str:
    return f"CONN#{connection_id}"


def _name_sk(name: str) -> str:
    return f"NAME#{name_key(name)}"


_DISCOVERED = "DISC#"


def _discovered_prefix(connection_id: str) -> str:
    return f"{_DISCOVERED}{connection_id}#"


def connection_key(workspace_id: str, environment_id: str, connection_id: str) -> tuple[str, str]:
    """The key of the connection's own item, whose absence means the connection is deleted (ids are never reused)."""
    return _partition(workspace_id, environment_id), _connection_sk(connection_id)


def discovered_capacity_key(workspace_id: str, environment_id: str, connection_id: str, model: str) -> tuple[str, str]:
    """The key of the item holding what a provider last reported for one model of a connection."""
    return _partition(workspace_id, environment_id), _discovered_prefix(connection_id) + model


class DynamoConnectionRepository:
    def __init__(self, table_name: str, region: str, tenancy_table_name: str | None = None):
        """Without `tenancy_table_name` the repository only reads (writes keep counts in that table)."""
        self._items: ConnectionItems = connection_items(table_name, region)
        self._tenancy: TenancyItems | None = tenancy_items(tenancy_table_name, region) if tenancy_table_name else None
        self._connection = DynamoConnection(region=region)

    def add(self, connection: Connection) -> None:
        claim = self._items.name_claim
        item = self._item(connection)
        transaction = Transaction(self._connection)
        self._count(transaction, connection, +1)
        transaction.save(
            "name",
            claim(item.pk, _name_sk(connection.name), connection_id=connection.connection_id),
            condition=claim.pk.does_not_exist(),
        )
        transaction.save("connection", item, condition=self._items.connection.pk.does_not_exist())
        failed = transaction.commit()
        if "workspace" in failed:
            raise NotFound(f"workspace {connection.workspace_id} not found")
        if "environment" in failed:
            raise NotFound(f"environment {connection.environment_id} not found in workspace {connection.workspace_id}")
        if failed:
            raise _name_taken(connection.name)

    def get(self, workspace_id: str, environment_id: str, connection_id: str) -> Connection | None:
        model = self._items.connection
        partition = _partition(workspace_id, environment_id)
        try:
            item = model.get(partition, _connection_sk(connection_id), consistent_read=True)
        except model.DoesNotExist:
            return None
        except PynamoDBException as exc:
            raise unavailable(exc) from exc
        discovered = self._discovered(partition, _discovered_prefix(connection_id))
        return _connection(item, discovered.get(connection_id))

    def list_page(
        self, workspace_id: str, environment_id: str, limit: int, next_token: str | None, provider: str | None
    ) -> Page[Connection]:
        model = self._items.connection
        partition = _partition(workspace_id, environment_id)
        start = decode_token(next_token, _INDEX_ATTRIBUTES, ("pk", partition)) if next_token else None
        try:
            results = model.by_created_at.query(
                partition,
                scan_index_forward=False,
                consistent_read=True,
                limit=limit,
                last_evaluated_key=start,
                filter_condition=(model.provider == provider) if provider else None,
            )
            items = list(results)
            last_key = results.last_evaluated_key
        except PynamoDBException as exc:
            raise query_failed(exc, start is not None) from exc
        # one query for the whole partition's observations rather than one per connection on the page
        discovered = self._discovered(partition, _DISCOVERED) if items else {}
        connections = [_connection(item, discovered.get(item.connection_id)) for item in items]
        more = last_key is not None and len(connections) >= limit
        return Page(connections, encode_token(last_key) if more and last_key else None)

    def replace(self, previous: Connection, updated: Connection) -> None:
        model, claim = self._items.connection, self._items.name_claim
        item = self._item(updated)
        transaction = Transaction(self._connection)
        transaction.save("connection", item, condition=model.version == previous.version)
        if name_key(previous.name) != name_key(updated.name):
            transaction.save(
                "name",
                claim(item.pk, _name_sk(updated.name), connection_id=updated.connection_id),
                condition=claim.pk.does_not_exist(),
            )
            transaction.delete("old name", claim(item.pk, _name_sk(previous.name)))
        failed = transaction.commit()
        if "connection" in failed:
            raise StaleVersion
        if failed:
            raise _name_taken(updated.name)

    def remove(self, connection: Connection) -> None:
        model, claim = self._items.connection, self._items.name_claim
        partition = _partition(connection.workspace_id, connection.environment_id)
        transaction = Transaction(self._connection)
        self._count(transaction, connection, -1)
        # the version condition keeps the name claim right if a rename raced this delete
        transaction.delete(
            "connection",
            model(partition, _connection_sk(connection.connection_id)),
            condition=model.version == connection.version,
        )
        transaction.delete("name", claim(partition, _name_sk(connection.name)))
        if transaction.commit():
            raise StaleVersion
        self._forget_discovered(partition, connection.connection_id)

    def get_by_name(self, workspace_id: str, environment_id: str, name: str) -> Connection | None:
        claim = self._items.name_claim
        try:
            item = claim.get(_partition(workspace_id, environment_id), _name_sk(name), consistent_read=True)
        except claim.DoesNotExist:
            return None
        except PynamoDBException as exc:
            raise unavailable(exc) from exc
        return self.get(workspace_id, environment_id, item.connection_id)

    def list_all(self, workspace_id: str, environment_id: str) -> list[Connection]:
        model = self._items.connection
        try:
            items = model.query(
                _partition(workspace_id, environment_id), model.sk.startswith("CONN#"), consistent_read=True
            )
            return [_connection(item, None) for item in items]
        except PynamoDBException as exc:
            raise unavailable(exc) from exc

    def scan_by_providers(self, providers: Collection[ProviderId]) -> Iterator[Connection]:
        """Every connection of these providers, in every workspace, read page by page with consistent reads and
        without discovered capacity (a scan does not join it). For scheduled work only: it reads the whole table."""
        if not providers:
            return
        model = self._items.connection
        condition = model.sk.startswith("CONN#") & model.provider.is_in(*(provider.value for provider in providers))
        try:
            for item in model.scan(condition, consistent_read=True):
                yield _connection(item, None)
        except PynamoDBException as exc:
            raise unavailable(exc) from exc

    def _discovered(self, partition: str, prefix: str) -> dict[str, dict[str, Any]]:
        """The discovered capacity of every connection with observations under `prefix`, by connection id."""
        model = self._items.discovered_capacity
        try:
            return _discovered_by_connection(model.query(partition, model.sk.startswith(prefix), consistent_read=True))
        except PynamoDBException as exc:
            raise unavailable(exc) from exc

    def _forget_discovered(self, partition: str, connection_id: str) -> None:
        """Best effort, after the connection is gone: ids are never reused, so a leftover item (this failing,
        or an observation landing after the delete) is never shown; it only costs `list_page` a little reading."""
        model = self._items.discovered_capacity
        # the delete the caller asked for has happened: failing it now would only invite a retry that 404s
        with contextlib.suppress(PynamoDBException):
            for item in model.query(
                partition,
                model.sk.startswith(_discovered_prefix(connection_id)),
                consistent_read=True,
                attributes_to_get=["pk", "sk"],
            ):
                item.delete()

    def _count(self, transaction: Transaction, connection: Connection, delta: int) -> None:
        """Adds `delta` to the workspace's and environment's connection counts; both must exist."""
        if self._tenancy is None:
            raise TypeError("this connection repository was built to read only")
        workspace, environment = self._tenancy.workspace, self._tenancy.environment
        ws_pk = f"WS#{connection.workspace_id}"
        transaction.update(
            "workspace",
            workspace(ws_pk, "WORKSPACE"),
            actions=[workspace.connection_count.add(delta)],
            condition=workspace.pk.exists(),
        )
        transaction.update(
            "environment",
            environment(ws_pk, f"ENV#{connection.environment_id}"),
            actions=[environment.connection_count.add(delta)],
            condition=environment.pk.exists(),
        )

    def _item(self, connection: Connection) -> Any:
        return self._items.connection(
            _partition(connection.workspace_id, connection.environment_id),
            _connection_sk(connection.connection_id),
            created_sk=f"{connection.created_at.isoformat()}#{connection.connection_id}",
            connection_id=connection.connection_id,
            workspace_id=connection.workspace_id,
            environment_id=connection.environment_id,
            name=connection.name,
            description=connection.description,
            provider=connection.provider.value,
            settings=connection.settings,
            secrets={field: sealed.model_dump(exclude_none=True) for field, sealed in connection.secrets.items()},
            capacity=[entry.model_dump(mode="json", exclude_none=True) for entry in connection.capacity],
            prioritization=connection.prioritization.model_dump(mode="json") if connection.prioritization else None,
            allowed_models=connection.allowed_models,
            version=connection.version,
            created_at=connection.created_at,
            updated_at=connection.updated_at,
            created_by=connection.created_by,
            updated_by=connection.updated_by,
            credentials_updated_at=connection.credentials_updated_at,
        )


def _name_taken(name: str) -> Conflict:
    return Conflict(f"an AI connection named '{name}' already exists in this environment", code="name_taken")


def _discovered_by_connection(items: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """`{connectionId: {"models": {model: {"capacity": [...], "observedAt": ..., "source": ...}}}}`."""
    models: dict[str, dict[str, Any]] = defaultdict(dict)
    for item in items:
        models[item.connection_id][item.model] = {
            "capacity": [_observed_limit(limit) for limit in item.capacity],
            "observedAt": item.observed_at.isoformat(),
            "source": item.source,
        }
    return {connection_id: {"models": by_model} for connection_id, by_model in models.items()}


def _observed_limit(limit: Any) -> dict[str, Any]:
    reported = {
        "requests": limit.requests,
        "tokens": limit.tokens,
        "inputTokens": limit.input_tokens,
        "outputTokens": limit.output_tokens,
    }
    return {"period": limit.period} | {name: int(value) for name, value in reported.items() if value is not None}


def _connection(item: Any, discovered_capacity: dict[str, Any] | None) -> Connection:
    return Connection(
        connection_id=item.connection_id,
        workspace_id=item.workspace_id,
        environment_id=item.environment_id,
        name=item.name,
        description=item.description,
        provider=ProviderId(item.provider),
        settings=item.settings,
        secrets={field: SealedSecret.model_validate(sealed) for field, sealed in item.secrets.as_dict().items()},
        capacity=[CapacityEntry.model_validate(entry) for entry in item.capacity],
        prioritization=Prioritization.model_validate(item.prioritization) if item.prioritization else None,
        allowed_models=list(item.allowed_models) if item.allowed_models is not None else None,
        discovered_capacity=discovered_capacity,
        version=int(item.version),
        created_at=item.created_at,
        updated_at=item.updated_at,
        created_by=item.created_by,
        updated_by=item.updated_by,
        credentials_updated_at=item.credentials_updated_at,
    )
