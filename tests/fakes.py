"""In-memory fakes of the domain's ports, faithful to the contracts in `vmx/*/ports.py`.

They keep copies (what goes in or comes out cannot change what is stored), keep names unique
case-insensitively, check versions, keep the connection counts that make `delete_*_if_empty` refuse,
and page newest first with opaque tokens checked the way the DynamoDB adapters check theirs.
"""

import base64
import binascii
import json
from collections.abc import Callable, Collection, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from pydantic import SecretStr

from vmx.connections.models import Connection
from vmx.connections.ports import StaleVersion
from vmx.credentials.errors import CredentialsUnreadable
from vmx.credentials.sealed import EncryptionContext, SealedSecret
from vmx.errors import Conflict, NotFound
from vmx.fields import name_key
from vmx.pagination import Page, decode_token, encode_token
from vmx.providers.catalog import ProviderId
from vmx.tenancy.models import ApiKey, Environment, Workspace
from vmx.tenancy.ports import revoked_key

T = TypeVar("T")

_TOKEN_ATTRIBUTES = frozenset({"pk", "sk"})


class FakeClock:
    """Moves one second forward each time it is read, so every write gets an instant of its own."""

    def __init__(self, start: datetime = datetime(2025, 1, 1, tzinfo=UTC)) -> None:
        self._next = start

    def __call__(self) -> datetime:
        now = self._next
        self._next += timedelta(seconds=1)
        return now


def _paged(items: list[T], sort_key: Callable[[T], str], partition: str, limit: int, next_token: str | None) -> Page[T]:
    ordered = sorted(items, key=sort_key, reverse=True)
    if next_token:
        after = decode_token(next_token, _TOKEN_ATTRIBUTES, ("pk", partition))["sk"]["S"]
        ordered = [item for item in ordered if sort_key(item) < after]
    page = ordered[:limit]
    more = len(ordered) > len(page) and bool(page)
    token = encode_token({"pk": {"S": partition}, "sk": {"S": sort_key(page[-1])}}) if more else None
    return Page(page, token)


def _name_taken(kind: str, name: str, where: str) -> Conflict:
    return Conflict(f"an {kind} named '{name}' already exists in this {where}", code="name_taken")


def _not_empty(kind: str, entity_id: str, count: int) -> Conflict:
    return Conflict(f"{kind} {entity_id} still holds {count} AI connection(s)", code="not_empty")


class InMemoryTenancyRepository:
    """`vmx.tenancy.ports.TenancyRepository` in memory."""

    def __init__(self) -> None:
        self._workspaces: dict[str, Workspace] = {}
        self._environments: dict[tuple[str, str], Environment] = {}
        self._api_keys: dict[str, ApiKey] = {}
        self._workspace_counts: dict[str, int] = {}
        self._environment_counts: dict[tuple[str, str], int] = {}

    # Workspaces

    def add_workspace(self, workspace: Workspace) -> None:
        if workspace.workspace_id in self._workspaces:
            raise Conflict(f"workspace {workspace.workspace_id} already exists")
        self._workspaces[workspace.workspace_id] = workspace.model_copy(deep=True)
        self._workspace_counts[workspace.workspace_id] = 0

    def get_workspace(self, workspace_id: str) -> Workspace | None:
        workspace = self._workspaces.get(workspace_id)
        return None if workspace is None else workspace.model_copy(deep=True)

    def list_workspaces(self, limit: int, next_token: str | None) -> Page[Workspace]:
        return _paged(
            [workspace.model_copy(deep=True) for workspace in self._workspaces.values()],
            lambda workspace: f"{workspace.created_at.isoformat()}#{workspace.workspace_id}",
            "WORKSPACES",
            limit,
            next_token,
        )

    def delete_workspace_if_empty(self, workspace_id: str) -> None:
        if workspace_id not in self._workspaces:
            raise NotFound(f"workspace {workspace_id} not found")
        count = self._workspace_counts[workspace_id]
        if count:
            raise _not_empty("workspace", workspace_id, count)
        # like the table: environments and keys stay until purge_workspace
        del self._workspaces[workspace_id]
        del self._workspace_counts[workspace_id]

    # Environments

    def add_environment(self, environment: Environment) -> None:
        if environment.workspace_id not in self._workspaces:
            raise NotFound(f"workspace {environment.workspace_id} not found")
        if any(
            name_key(other.name) == name_key(environment.name)
            for other in self.list_environments(environment.workspace_id)
        ):
            raise _name_taken("environment", environment.name, "workspace")
        key = (environment.workspace_id, environment.environment_id)
        if key in self._environments:
            raise Conflict(f"environment {environment.environment_id} already exists")
        self._environments[key] = environment.model_copy(deep=True)
        self._environment_counts[key] = 0

    def get_environment(self, workspace_id: str, environment_id: str) -> Environment | None:
        environment = self._environments.get((workspace_id, environment_id))
        return None if environment is None else environment.model_copy(deep=True)

    def list_environments(self, workspace_id: str) -> list[Environment]:
        environments = [
            environment.model_copy(deep=True)
            for (owner, _), environment in self._environments.items()
            if owner == workspace_id
        ]
        return sorted(environments, key=lambda environment: environment.created_at, reverse=True)

    def delete_environment_if_empty(self, workspace_id: str, environment_id: str) -> None:
        key = (workspace_id, environment_id)
        if key not in self._environments:
            raise NotFound(f"environment {environment_id} not found in workspace {workspace_id}")
        count = self._environment_counts[key]
        if count:
            raise _not_empty("environment", environment_id, count)
        del self._environments[key]
        del self._environment_counts[key]

    def connection_count(self, workspace_id: str, environment_id: str | None = None) -> int:
        if environment_id is None:
            return self._workspace_counts.get(workspace_id, 0)
        return self._environment_counts.get((workspace_id, environment_id), 0)

    def change_connection_count(self, workspace_id: str, environment_id: str, delta: int) -> None:
        """What the connection store's transactions do to the counts; both items must exist."""
        self.require_environment(workspace_id, environment_id)
        self._workspace_counts[workspace_id] += delta
        self._environment_counts[(workspace_id, environment_id)] += delta

    def require_environment(self, workspace_id: str, environment_id: str) -> None:
        if workspace_id not in self._workspaces:
            raise NotFound(f"workspace {workspace_id} not found")
        if (workspace_id, environment_id) not in self._environments:
            raise NotFound(f"environment {environment_id} not found in workspace {workspace_id}")

    # API keys

    def add_api_key(self, key: ApiKey) -> None:
        if key.key_id in self._api_keys:
            raise Conflict(f"API key {key.key_id} already exists")
        self._api_keys[key.key_id] = key.model_copy(deep=True)

    def get_api_key(self, key_id: str) -> ApiKey | None:
        key = self._api_keys.get(key_id)
        return None if key is None else key.model_copy(deep=True)

    def list_api_keys(self, workspace_id: str, limit: int, next_token: str | None) -> Page[ApiKey]:
        return _paged(
            [key.model_copy(deep=True) for key in self._api_keys.values() if key.workspace_id == workspace_id],
            lambda key: f"{key.created_at.isoformat()}#{key.key_id}",
            f"WS#{workspace_id}#APIKEYS",
            limit,
            next_token,
        )

    def save_api_key(self, key: ApiKey) -> None:
        if key.key_id not in self._api_keys:
            raise NotFound(f"API key {key.key_id} not found")
        self._api_keys[key.key_id] = key.model_copy(deep=True)

    def set_api_key_class(self, key_id: str, priority_class: str | None) -> None:
        key = self._api_keys.get(key_id)
        if key is None:
            raise NotFound(f"API key {key_id} not found")
        if key.revoked_at is not None:
            raise revoked_key(key_id)
        self._api_keys[key_id] = key.model_copy(update={"priority_class": priority_class})

    def purge_workspace(self, workspace_id: str) -> None:
        for key in [key for key in self._environments if key[0] == workspace_id]:
            del self._environments[key]
            self._environment_counts.pop(key, None)
        for key_id in [key.key_id for key in self._api_keys.values() if key.workspace_id == workspace_id]:
            del self._api_keys[key_id]


class InMemoryConnectionRepository:
    """`vmx.connections.ports.ConnectionRepository` in memory, keeping the counts in the tenancy fake.

    `interleave` stands in for another writer: each action given runs just before one later
    `replace` or `remove` checks the stored version, as if a concurrent request had won the race.
    Like the table, it never takes discovered capacity from `add` or `replace` (only the consumer of
    observations writes it), and `list_all` leaves it out.
    """

    def __init__(self, tenancy: InMemoryTenancyRepository) -> None:
        self._tenancy = tenancy
        self._connections: dict[tuple[str, str, str], Connection] = {}
        self._interleaved: list[Callable[[], object]] = []
        self._interleaving = False

    def interleave(self, *actions: Callable[[], object]) -> None:
        self._interleaved.extend(actions)

    def add(self, connection: Connection) -> None:
        self._tenancy.require_environment(connection.workspace_id, connection.environment_id)
        key = _key(connection)
        if key in self._connections:
            raise Conflict(f"AI connection {connection.connection_id} already exists")
        self._claim_name(connection)
        self._tenancy.change_connection_count(connection.workspace_id, connection.environment_id, +1)
        self._connections[key] = connection.model_copy(update={"discovered_capacity": None}, deep=True)

    def get(self, workspace_id: str, environment_id: str, connection_id: str) -> Connection | None:
        connection = self._connections.get((workspace_id, environment_id, connection_id))
        return None if connection is None else connection.model_copy(deep=True)

    def list_page(
        self, workspace_id: str, environment_id: str, limit: int, next_token: str | None, provider: str | None
    ) -> Page[Connection]:
        return _paged(
            [
                connection
                for connection in self._stored(workspace_id, environment_id)
                if provider is None or connection.provider.value == provider
            ],
            lambda connection: f"{connection.created_at.isoformat()}#{connection.connection_id}",
            f"WS#{workspace_id}#ENV#{environment_id}",
            limit,
            next_token,
        )

    def replace(self, previous: Connection, updated: Connection) -> None:
        self._run_interleaved()
        stored = self._connections.get(_key(previous))
        if stored is None or stored.version != previous.version:
            raise StaleVersion
        if name_key(previous.name) != name_key(updated.name):
            self._claim_name(updated)
        kept = {"discovered_capacity": stored.discovered_capacity}
        self._connections[_key(updated)] = updated.model_copy(update=kept, deep=True)

    def remove(self, connection: Connection) -> None:
        self._run_interleaved()
        stored = self._connections.get(_key(connection))
        if stored is None or stored.version != connection.version:
            raise StaleVersion
        del self._connections[_key(connection)]
        self._tenancy.change_connection_count(connection.workspace_id, connection.environment_id, -1)

    def get_by_name(self, workspace_id: str, environment_id: str, name: str) -> Connection | None:
        for (ws, env, _), connection in self._connections.items():
            if (ws, env) == (workspace_id, environment_id) and name_key(connection.name) == name_key(name):
                return connection.model_copy(deep=True)
        return None

    def list_all(self, workspace_id: str, environment_id: str) -> list[Connection]:
        return [
            connection.model_copy(update={"discovered_capacity": None})
            for connection in self._stored(workspace_id, environment_id)
        ]

    def scan_by_providers(self, providers: Collection[ProviderId]) -> Iterator[Connection]:
        """`vmx.use_cases.bedrock_quotas.BedrockConnections`: every workspace's, without discovered capacity."""
        for connection in list(self._connections.values()):
            if connection.provider in providers:
                yield connection.model_copy(update={"discovered_capacity": None}, deep=True)

    def _stored(self, workspace_id: str, environment_id: str) -> list[Connection]:
        return [
            connection.model_copy(deep=True)
            for (owner, environment, _), connection in self._connections.items()
            if (owner, environment) == (workspace_id, environment_id)
        ]

    def _claim_name(self, connection: Connection) -> None:
        for other in self._stored(connection.workspace_id, connection.environment_id):
            if other.connection_id != connection.connection_id and name_key(other.name) == name_key(connection.name):
                raise _name_taken("AI connection", connection.name, "environment")

    def _run_interleaved(self) -> None:
        if self._interleaved and not self._interleaving:
            action = self._interleaved.pop(0)
            self._interleaving = True
            try:
                action()
            finally:
                self._interleaving = False


def _key(connection: Connection) -> tuple[str, str, str]:
    return (connection.workspace_id, connection.environment_id, connection.connection_id)


class FakeCipher:
    """`vmx.credentials.ports.CredentialCipher` without cryptography: reversible on purpose.

    The nonce records the context and field a secret was sealed for (see `sealed_for`), and `open`
    refuses any other, as the real ciphers' associated data does.
    """

    NAME = "fake-reversible"

    def seal(self, secrets: Mapping[str, SecretStr], context: EncryptionContext) -> dict[str, SealedSecret]:
        return {
            field: SealedSecret(
                cipher=self.NAME,
                nonce=_b64(context.associated_data(field)),
                ciphertext=_b64(secret.get_secret_value().encode()),
            )
            for field, secret in secrets.items()
        }

    def open(self, sealed: Mapping[str, SealedSecret], context: EncryptionContext) -> dict[str, SecretStr]:
        opened = {}
        for field, secret in sealed.items():
            if secret.cipher != self.NAME or _unb64(secret.nonce) != context.associated_data(field):
                raise CredentialsUnreadable(f"field {field} does not belong to this connection")
            opened[field] = SecretStr(_unb64(secret.ciphertext).decode())
        return opened

    def sealed_for(self, sealed: SealedSecret) -> tuple[EncryptionContext, str]:
        """The context and field name a secret was sealed with."""
        bound = json.loads(_unb64(sealed.nonce))
        context = EncryptionContext(bound["workspaceId"], bound["environmentId"], bound["connectionId"])
        return context, bound["field"]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise CredentialsUnreadable("not a sealed secret") from exc
