"""Builders for the unit tier: principals, requests and a wired world of services over in-memory fakes."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tests.event_fakes import InMemoryEventPublisher
from tests.fake_resolver import FakeResolver
from tests.fakes import FakeCipher, FakeClock, InMemoryConnectionRepository, InMemoryTenancyRepository
from vmx.access.policy import Principal
from vmx.connections.models import Connection, ConnectionCreate, ConnectionPatch
from vmx.providers.addresses import AddressPolicy
from vmx.providers.catalog import ProviderId
from vmx.tenancy.models import EnvironmentCreate, Role, WorkspaceCreate
from vmx.use_cases.connections import ConnectionScope, ConnectionService
from vmx.use_cases.tenancy import TenancyService

ROLE_ARN = "arn:aws:iam::123456789012:role/VmxBedrockAccess"


def connection_record(at: datetime | None = None, **fields: Any) -> Connection:
    """A connection as a repository holds it, created and last changed `at` (now by default); keyword
    arguments override its plain defaults."""
    at = at or datetime.now(UTC)
    defaults: dict[str, Any] = {
        "connection_id": str(uuid.uuid4()),
        "workspace_id": "ws",
        "environment_id": "env",
        "name": "openai-prod",
        "description": None,
        "provider": ProviderId.OPENAI,
        "settings": {},
        "secrets": {},
        "capacity": [],
        "allowed_models": None,
        "version": 1,
        "created_at": at,
        "updated_at": at,
        "created_by": "test",
        "updated_by": "test",
        "credentials_updated_at": at,
    }
    return Connection(**(defaults | fields))


def principal(
    workspace_id: str,
    role: Role = Role.ADMIN,
    environment_ids: set[str] | None = None,
    platform_admin: bool = False,
    key_id: str | None = None,
) -> Principal:
    return Principal(
        key_id=key_id or f"key-{role.value}-{uuid.uuid4().hex[:8]}",
        workspace_id=workspace_id,
        role=role,
        environment_ids=None if environment_ids is None else frozenset(environment_ids),
        platform_admin=platform_admin,
    )


def create_request(**fields: Any) -> ConnectionCreate:
    """A valid creation request in wire (camelCase) form; keyword arguments override its fields."""
    body: dict[str, Any] = {
        "name": "OpenAI Production",
        "description": "OpenAI connection for production workloads",
        "provider": "openai",
        "config": {"apiKey": "sk-original"},
        "capacity": [{"period": "minute", "requests": 100, "tokens": 100000}],
        "allowedModels": ["gpt-4o", "gpt-4o-mini"],
    }
    body.update(fields)
    return ConnectionCreate.model_validate(body)


def patch(**fields: Any) -> ConnectionPatch:
    """A PATCH body in wire form: only the fields given are present (None is an explicit null)."""
    return ConnectionPatch.model_validate(fields)


@dataclass
class World:
    """Both services over one set of fakes, with a workspace and an environment in it."""

    clock: FakeClock
    tenancy: InMemoryTenancyRepository
    connections: InMemoryConnectionRepository
    cipher: FakeCipher
    connection_service: ConnectionService
    events: InMemoryEventPublisher
    tenancy_service: TenancyService
    scope: ConnectionScope

    @classmethod
    def create(cls) -> "World":
        clock = FakeClock()
        tenancy = InMemoryTenancyRepository()
        connections = InMemoryConnectionRepository(tenancy)
        cipher = FakeCipher()
        events = InMemoryEventPublisher()
        tenancy_service = TenancyService(tenancy, connections, clock, events)
        workspace = tenancy_service.add_workspace(WorkspaceCreate(name="Acme"), created_by="bootstrap")
        environment = tenancy_service.add_environment(
            workspace.workspace_id, EnvironmentCreate(name="production"), created_by="bootstrap"
        )
        return cls(
            clock=clock,
            tenancy=tenancy,
            connections=connections,
            cipher=cipher,
            connection_service=ConnectionService(
                connections, tenancy, cipher, clock, events, AddressPolicy(allow_loopback=True, resolve=FakeResolver())
            ),
            events=events,
            tenancy_service=tenancy_service,
            scope=ConnectionScope(workspace.workspace_id, environment.environment_id),
        )

    @property
    def workspace_id(self) -> str:
        return self.scope.workspace_id

    @property
    def environment_id(self) -> str:
        return self.scope.environment_id

    def admin(self) -> Principal:
        return principal(self.workspace_id, Role.ADMIN)

    def editor(self) -> Principal:
        return principal(self.workspace_id, Role.EDITOR)

    def platform_admin(self) -> Principal:
        return principal(self.workspace_id, Role.ADMIN, platform_admin=True)

    def another_environment(self, name: str = "staging") -> ConnectionScope:
        environment = self.tenancy_service.add_environment(
            self.workspace_id, EnvironmentCreate(name=name), created_by="bootstrap"
        )
        return ConnectionScope(self.workspace_id, environment.environment_id)

    def another_workspace(self, name: str = "Globex") -> ConnectionScope:
        workspace = self.tenancy_service.add_workspace(WorkspaceCreate(name=name), created_by="bootstrap")
        environment = self.tenancy_service.add_environment(
            workspace.workspace_id, EnvironmentCreate(name="production"), created_by="bootstrap"
        )
        return ConnectionScope(workspace.workspace_id, environment.environment_id)
