"""Workspaces, environments and API keys in the tenancy table.

Keys: a workspace is `WS#<id>` / `WORKSPACE`; its environments share its partition (`ENV#<id>`, and
`ENVNAME#<name>` claims); an API key is `APIKEY#<id>` / `APIKEY` so the authorizer reads it by id.
The `gsi1` index lists workspaces and a workspace's keys by creation time.
"""

from typing import Any

from pynamodb.connection import Connection as DynamoConnection
from pynamodb.exceptions import DeleteError, PutError, PynamoDBException, UpdateError

from vmx.errors import Conflict, NotFound
from vmx.fields import name_key
from vmx.pagination import Page, decode_token, encode_token
from vmx.storage.errors import query_failed, unavailable
from vmx.storage.items import TenancyItems, tenancy_items
from vmx.storage.transactions import Transaction
from vmx.tenancy.models import ApiKey, Environment, Role, Workspace
from vmx.tenancy.ports import revoked_key

_WORKSPACE_SK = "WORKSPACE"
_API_KEY_SK = "APIKEY"
_WORKSPACES_INDEX_PK = "WORKSPACES"


def _ws_pk(workspace_id: str) -> str:
    return f"WS#{workspace_id}"


def _env_sk(environment_id: str) -> str:
    return f"ENV#{environment_id}"


def _env_name_sk(name: str) -> str:
    return f"ENVNAME#{name_key(name)}"


def _keys_index_pk(workspace_id: str) -> str:
    return f"WS#{workspace_id}#APIKEYS"


class DynamoTenancyRepository:
    def __init__(self, table_name: str, region: str):
        self._items: TenancyItems = tenancy_items(table_name, region)
        self._connection = DynamoConnection(region=region)

    # Workspaces

    def add_workspace(self, workspace: Workspace) -> None:
        item = self._items.workspace(
            _ws_pk(workspace.workspace_id),
            _WORKSPACE_SK,
            gsi1pk=_WORKSPACES_INDEX_PK,
            gsi1sk=f"{workspace.created_at.isoformat()}#{workspace.workspace_id}",
            workspace_id=workspace.workspace_id,
            name=workspace.name,
            description=workspace.description,
            connection_count=0,
            created_at=workspace.created_at,
            created_by=workspace.created_by,
        )
        try:
            item.save(condition=self._items.workspace.pk.does_not_exist())
        except PutError as exc:
            raise unavailable(exc) from exc

    def get_workspace(self, workspace_id: str) -> Workspace | None:
        item = self._get(self._items.workspace, _ws_pk(workspace_id), _WORKSPACE_SK)
        return None if item is None else _workspace(item)

    def list_workspaces(self, limit: int, next_token: str | None) -> Page[Workspace]:
        start = None
        if next_token:
            start = decode_token(
                next_token, frozenset({"pk", "sk", "gsi1pk", "gsi1sk"}), ("gsi1pk", _WORKSPACES_INDEX_PK)
            )
        try:
            results = self._items.workspace.by_gsi1.query(
                _WORKSPACES_INDEX_PK, scan_index_forward=False, limit=limit, last_evaluated_key=start
            )
            workspaces = [_workspace(item) for item in results]
        except PynamoDBException as exc:
            raise query_failed(exc, start is not None) from exc
        return Page(workspaces, _next_token(results.last_evaluated_key, len(workspaces), limit))

    def delete_workspace_if_empty(self, workspace_id: str) -> None:
        model = self._items.workspace
        try:
            model(_ws_pk(workspace_id), _WORKSPACE_SK).delete(
                condition=model.pk.exists() & (model.connection_count == 0)
            )
        except DeleteError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise unavailable(exc) from exc
            self._refuse_delete("workspace", workspace_id, self.get_workspace(workspace_id), workspace_id)

    # Environments

    def add_environment(self, environment: Environment) -> None:
        pk = _ws_pk(environment.workspace_id)
        workspace, env, env_name = self._items.workspace, self._items.environment, self._items.environment_name
        transaction = Transaction(self._connection)
        transaction.condition_check("workspace", workspace, pk, _WORKSPACE_SK, condition=workspace.pk.exists())
        transaction.save(
            "name",
            env_name(pk, _env_name_sk(environment.name), environment_id=environment.environment_id),
            condition=env_name.pk.does_not_exist(),
        )
        transaction.save(
            "environment",
            env(
                pk,
                _env_sk(environment.environment_id),
                workspace_id=environment.workspace_id,
                environment_id=environment.environment_id,
                name=environment.name,
                description=environment.description,
                connection_count=0,
                created_at=environment.created_at,
                created_by=environment.created_by,
            ),
            condition=env.pk.does_not_exist(),
        )
        failed = transaction.commit()
        if "workspace" in failed:
            raise NotFound(f"workspace {environment.workspace_id} not found")
        if failed:
            raise Conflict(
                f"an environment named '{environment.name}' already exists in this workspace", code="name_taken"
            )

    def get_environment(self, workspace_id: str, environment_id: str) -> Environment | None:
        item = self._get(self._items.environment, _ws_pk(workspace_id), _env_sk(environment_id))
        return None if item is None else _environment(item)

    def list_environments(self, workspace_id: str) -> list[Environment]:
        model = self._items.environment
        try:
            items = model.query(_ws_pk(workspace_id), model.sk.startswith("ENV#"), consistent_read=True)
            environments = [_environment(item) for item in items]
        except PynamoDBException as exc:
            raise unavailable(exc) from exc
        return sorted(environments, key=lambda environment: environment.created_at, reverse=True)

    def delete_environment_if_empty(self, workspace_id: str, environment_id: str) -> None:
        env, env_name = self._items.environment, self._items.environment_name
        current = self.get_environment(workspace_id, environment_id)
        if current is None:
            raise NotFound(f"environment {environment_id} not found in workspace {workspace_id}")
        pk = _ws_pk(workspace_id)
        transaction = Transaction(self._connection)
        transaction.delete(
            "environment", env(pk, _env_sk(environment_id)), condition=env.pk.exists() & (env.connection_count == 0)
        )
        transaction.delete("name", env_name(pk, _env_name_sk(current.name)))
        if transaction.commit():
            self._refuse_delete(
                "environment",
                environment_id,
                self.get_environment(workspace_id, environment_id),
                workspace_id,
            )

    def connection_count(self, workspace_id: str, environment_id: str | None = None) -> int:
        if environment_id is None:
            item = self._get(self._items.workspace, _ws_pk(workspace_id), _WORKSPACE_SK)
        else:
            item = self._get(self._items.environment, _ws_pk(workspace_id), _env_sk(environment_id))
        return 0 if item is None else int(item.connection_count)

    # API keys

    def add_api_key(self, key: ApiKey) -> None:
        workspace = self._items.workspace
        transaction = Transaction(self._connection)
        transaction.condition_check(
            "workspace", workspace, _ws_pk(key.workspace_id), _WORKSPACE_SK, condition=workspace.pk.exists()
        )
        transaction.save("key", self._api_key_item(key), condition=self._items.api_key.pk.does_not_exist())
        if "workspace" in transaction.commit():
            raise NotFound(f"workspace {key.workspace_id} not found")

    def save_api_key(self, key: ApiKey) -> None:
        try:
            self._api_key_item(key).save(condition=self._items.api_key.pk.exists())
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise NotFound(f"API key {key.key_id} not found") from None
            raise unavailable(exc) from exc

    def set_api_key_class(self, key_id: str, priority_class: str | None) -> None:
        model = self._items.api_key
        item = model(f"APIKEY#{key_id}", _API_KEY_SK)
        change = model.priority_class.set(priority_class) if priority_class else model.priority_class.remove()
        try:
            item.update(actions=[change], condition=model.pk.exists() & model.revoked_at.does_not_exist())
        except UpdateError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise unavailable(exc) from exc
            if self.get_api_key(key_id) is None:
                raise NotFound(f"API key {key_id} not found") from None
            raise revoked_key(key_id) from None

    def get_api_key(self, key_id: str) -> ApiKey | None:
        item = self._get(self._items.api_key, f"APIKEY#{key_id}", _API_KEY_SK)
        return None if item is None else _api_key(item)

    def list_api_keys(self, workspace_id: str, limit: int, next_token: str | None) -> Page[ApiKey]:
        index_pk = _keys_index_pk(workspace_id)
        start = None
        if next_token:
            start = decode_token(next_token, frozenset({"pk", "sk", "gsi1pk", "gsi1sk"}), ("gsi1pk", index_pk))
        try:
            results = self._items.api_key.by_gsi1.query(
                index_pk, scan_index_forward=False, limit=limit, last_evaluated_key=start
            )
            keys = [_api_key(item) for item in results]
        except PynamoDBException as exc:
            raise query_failed(exc, start is not None) from exc
        return Page(keys, _next_token(results.last_evaluated_key, len(keys), limit))

    def purge_workspace(self, workspace_id: str) -> None:
        """Removes what is left of a deleted workspace: environments, name claims and API keys."""
        partition, api_key = self._items.environment, self._items.api_key
        try:
            leftovers = [
                *(partition(item.pk, item.sk) for item in partition.query(_ws_pk(workspace_id), consistent_read=True)),
                *(api_key(item.pk, item.sk) for item in api_key.by_gsi1.query(_keys_index_pk(workspace_id))),
            ]
            with partition.batch_write() as batch:
                for item in leftovers:
                    batch.delete(item)
        except PynamoDBException as exc:
            raise unavailable(exc) from exc

    def _api_key_item(self, key: ApiKey) -> Any:
        return self._items.api_key(
            f"APIKEY#{key.key_id}",
            _API_KEY_SK,
            gsi1pk=_keys_index_pk(key.workspace_id),
            gsi1sk=f"{key.created_at.isoformat()}#{key.key_id}",
            key_id=key.key_id,
            workspace_id=key.workspace_id,
            name=key.name,
            role=key.role.value,
            environment_ids=key.environment_ids,
            platform_admin=key.platform_admin,
            secret_hash=key.secret_hash,
            created_at=key.created_at,
            created_by=key.created_by,
            revoked_at=key.revoked_at,
            priority_class=key.priority_class,
        )

    def _get(self, model: Any, pk: str, sk: str) -> Any:
        try:
            return model.get(pk, sk, consistent_read=True)
        except model.DoesNotExist:
            return None
        except PynamoDBException as exc:
            raise unavailable(exc) from exc

    def _refuse_delete(self, kind: str, entity_id: str, current: Any, workspace_id: str) -> None:
        if current is None:
            raise NotFound(f"{kind} {entity_id} not found")
        count = self.connection_count(workspace_id, None if kind == "workspace" else entity_id)
        raise Conflict(
            f"{kind} {entity_id} still holds {count} AI connection(s); delete them first or add ?force=true",
            code="not_empty",
        )


def _next_token(last_key: dict[str, Any] | None, returned: int, limit: int) -> str | None:
    return encode_token(last_key) if last_key and returned >= limit else None


def _workspace(item: Any) -> Workspace:
    return Workspace(
        workspace_id=item.workspace_id,
        name=item.name,
        description=item.description,
        created_at=item.created_at,
        created_by=item.created_by,
    )


def _environment(item: Any) -> Environment:
    return Environment(
        workspace_id=item.workspace_id,
        environment_id=item.environment_id,
        name=item.name,
        description=item.description,
        created_at=item.created_at,
        created_by=item.created_by,
    )


def _api_key(item: Any) -> ApiKey:
    return ApiKey(
        key_id=item.key_id,
        workspace_id=item.workspace_id,
        name=item.name,
        role=Role(item.role),
        environment_ids=list(item.environment_ids) if item.environment_ids is not None else None,
        platform_admin=item.platform_admin,
        secret_hash=item.secret_hash,
        created_at=item.created_at,
        created_by=item.created_by,
        revoked_at=item.revoked_at,
        priority_class=item.priority_class,
    )
