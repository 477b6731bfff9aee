"""Use cases for AI connections. Storage and encryption are passed in; nothing here knows HTTP or AWS."""

import uuid
from dataclasses import dataclass
from typing import NoReturn

from vmx.access.policy import Action, Principal, authorize
from vmx.clock import Clock
from vmx.connections.config_changes import check_base_url, new_config, patched_config
from vmx.connections.models import Connection, ConnectionCreate, ConnectionPatch
from vmx.connections.ports import ConnectionRepository, StaleVersion
from vmx.credentials.ports import CredentialCipher
from vmx.errors import ErrorDetail, InvalidInput, NotFound, PreconditionFailed
from vmx.events.models import ConnectionCreated, ConnectionDeleted, ConnectionUpdated
from vmx.events.ports import EventPublisher
from vmx.pagination import Page
from vmx.providers.addresses import AddressPolicy
from vmx.providers.catalog import provider_by_id
from vmx.tenancy.ports import TenancyRepository

# Without If-Match, an update that loses a race is re-applied on a fresh read this many times.
_UPDATE_ATTEMPTS = 5


@dataclass(frozen=True)
class ConnectionScope:
    workspace_id: str
    environment_id: str


class ConnectionService:
    def __init__(
        self,
        connections: ConnectionRepository,
        tenancy: TenancyRepository,
        cipher: CredentialCipher,
        clock: Clock,
        events: EventPublisher,
        addresses: AddressPolicy,
    ):
        """`addresses` decides where a `baseUrl` may point (vmx.providers.addresses)."""
        self._addresses = addresses
        self._events = events
        self._connections = connections
        self._tenancy = tenancy
        self._cipher = cipher
        self._clock = clock

    def create(self, principal: Principal, scope: ConnectionScope, request: ConnectionCreate) -> Connection:
        authorize(principal, Action.MANAGE_CONNECTIONS, scope.workspace_id, scope.environment_id)
        self._require_environment(scope)
        provider = provider_by_id(request.provider)
        change = new_config(provider, request.config)
        check_base_url(change, self._addresses)
        connection_id = str(uuid.uuid4())
        now = self._clock()
        connection = Connection(
            connection_id=connection_id,
            workspace_id=scope.workspace_id,
            environment_id=scope.environment_id,
            name=request.name,
            description=request.description,
            provider=provider.id,
            settings=change.settings,
            secrets={},
            capacity=request.capacity,
            prioritization=request.prioritization,
            allowed_models=request.allowed_models,
            version=1,
            created_at=now,
            updated_at=now,
            created_by=principal.key_id,
            updated_by=principal.key_id,
            credentials_updated_at=now,
        )
        connection.secrets = self._cipher.seal(change.new_secrets, connection.encryption_context)
        self._connections.add(connection)
        self._events.publish([ConnectionCreated.of(connection, principal.key_id, now)])
        return connection

    def get(self, principal: Principal, scope: ConnectionScope, connection_id: str) -> Connection:
        authorize(principal, Action.READ, scope.workspace_id, scope.environment_id)
        return self._existing(scope, connection_id)

    def list_page(
        self,
        principal: Principal,
        scope: ConnectionScope,
        limit: int,
        next_token: str | None,
        provider: str | None,
    ) -> Page[Connection]:
        authorize(principal, Action.READ, scope.workspace_id, scope.environment_id)
        if provider is not None:
            provider = provider_by_id(provider).id.value
        self._require_environment(scope)
        return self._connections.list_page(scope.workspace_id, scope.environment_id, limit, next_token, provider)

    def update(
        self,
        principal: Principal,
        scope: ConnectionScope,
        connection_id: str,
        patch: ConnectionPatch,
        expected_version: int | None,
    ) -> Connection:
        authorize(principal, Action.MANAGE_CONNECTIONS, scope.workspace_id, scope.environment_id)
        for _ in range(_UPDATE_ATTEMPTS):
            current = self._existing(scope, connection_id)
            _check_version(current, expected_version)
            updated = self._patched(principal, current, patch)
            if _unchanged(current, updated):
                # a new version would only make other writers' If-Match fail for nothing
                return current
            try:
                self._connections.replace(current, updated)
            except StaleVersion:
                if expected_version is not None:
                    raise _stale(connection_id) from None
                continue
            self._events.publish([ConnectionUpdated.of(updated, principal.key_id, updated.updated_at)])
            return updated
        raise PreconditionFailed(
            f"AI connection {connection_id} kept changing while this update was applied; try again",
            code="concurrent_update",
        )

    def delete(
        self, principal: Principal, scope: ConnectionScope, connection_id: str, expected_version: int | None
    ) -> None:
        authorize(principal, Action.MANAGE_CONNECTIONS, scope.workspace_id, scope.environment_id)
        for _ in range(_UPDATE_ATTEMPTS):
            current = self._existing(scope, connection_id)
            _check_version(current, expected_version)
            try:
                self._connections.remove(current)
            except StaleVersion:
                if expected_version is not None:
                    raise _stale(connection_id) from None
                continue
            self._events.publish([ConnectionDeleted.of(current, principal.key_id, self._clock())])
            return
        raise PreconditionFailed(
            f"AI connection {connection_id} kept changing while it was being deleted; try again",
            code="concurrent_update",
        )

    def _patched(self, principal: Principal, current: Connection, patch: ConnectionPatch) -> Connection:
        changes = patch.model_fields_set
        for required in ("name", "provider", "config", "capacity"):
            if required in changes and getattr(patch, required) is None:
                _refuse(required, "cannot be null")
        updated = current.model_copy(deep=True)
        if "name" in changes and patch.name is not None:
            updated.name = patch.name
        if "description" in changes:
            updated.description = patch.description
        if "capacity" in changes and patch.capacity is not None:
            updated.capacity = patch.capacity
        if "prioritization" in changes:
            updated.prioritization = patch.prioritization
        if "allowed_models" in changes:
            updated.allowed_models = patch.allowed_models
        config_change = patched_config(current, patch)
        if config_change is not None:
            check_base_url(config_change, self._addresses)
        now = self._clock()
        if config_change is not None:
            updated.provider = provider_by_id(patch.provider or current.provider).id
            updated.settings = config_change.settings
            kept = {name: sealed for name, sealed in current.secrets.items() if name in config_change.kept}
            sealed_now = self._cipher.seal(config_change.new_secrets, current.encryption_context)
            updated.secrets = {**kept, **sealed_now}
            if updated.secrets != current.secrets:
                updated.credentials_updated_at = now
        updated.version = current.version + 1
        updated.updated_at = now
        updated.updated_by = principal.key_id
        return updated

    def _existing(self, scope: ConnectionScope, connection_id: str) -> Connection:
        connection = self._connections.get(scope.workspace_id, scope.environment_id, connection_id)
        if connection is None:
            self._require_environment(scope)
            raise NotFound(f"AI connection {connection_id} not found")
        return connection

    def _require_environment(self, scope: ConnectionScope) -> None:
        if self._tenancy.get_workspace(scope.workspace_id) is None:
            raise NotFound(f"workspace {scope.workspace_id} not found")
        if self._tenancy.get_environment(scope.workspace_id, scope.environment_id) is None:
            raise NotFound(f"environment {scope.environment_id} not found in workspace {scope.workspace_id}")


_BOOKKEEPING = {"version", "updated_at", "updated_by"}


def _unchanged(current: Connection, updated: Connection) -> bool:
    return current.model_dump(exclude=_BOOKKEEPING) == updated.model_dump(exclude=_BOOKKEEPING)


def _check_version(current: Connection, expected_version: int | None) -> None:
    if expected_version is not None and current.version != expected_version:
        raise _stale(current.connection_id)


def _stale(connection_id: str) -> PreconditionFailed:
    return PreconditionFailed(
        f"AI connection {connection_id} has changed since you read it (If-Match is stale); reload and retry"
    )


def _refuse(field: str, message: str) -> NoReturn:
    raise InvalidInput(f"{field}: {message}", [ErrorDetail(field=field, message=message)])
