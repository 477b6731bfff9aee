"""AI connections: the domain record and the API's request and response shapes."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from vmx.api_model import ApiModel
from vmx.capacity.limits import Capacity, CapacityEntry, Prioritization
from vmx.credentials.sealed import EncryptionContext, SealedSecret
from vmx.fields import AllowedModels, ConnectionName, Description, ProviderName
from vmx.providers.catalog import ProviderId

# How a stored secret shows in responses; sent back in a PATCH it means "keep the stored value".
MASK = "********"


class Connection(BaseModel):
    """A connection as the domain knows it: secrets stay sealed."""

    connection_id: str
    workspace_id: str
    environment_id: str
    name: str
    description: str | None
    provider: ProviderId
    # The non-secret part of the provider configuration, with wire (camelCase) names.
    settings: dict[str, Any]
    secrets: dict[str, SealedSecret]
    capacity: list[CapacityEntry]
    prioritization: Prioritization | None = None
    allowed_models: list[str] | None
    discovered_capacity: dict[str, Any] | None = None
    version: int
    created_at: datetime
    updated_at: datetime
    created_by: str
    updated_by: str
    credentials_updated_at: datetime

    @property
    def encryption_context(self) -> EncryptionContext:
        return EncryptionContext(self.workspace_id, self.environment_id, self.connection_id)

    def masked_config(self) -> dict[str, Any]:
        return {**self.settings, **dict.fromkeys(self.secrets, MASK)}


class ConnectionCreate(ApiModel):
    name: ConnectionName
    description: Description | None = None
    provider: ProviderName
    # still raw, secrets included, until the provider's model validates it: never in a repr or log
    config: dict[str, Any] = Field(repr=False)
    capacity: Capacity = Field(default_factory=list)
    prioritization: Prioritization | None = None
    allowed_models: AllowedModels | None = None


class ConnectionPatch(ApiModel):
    """Partial update: only the fields present change. `config` is a JSON merge patch (RFC 7396)."""

    name: ConnectionName | None = None
    description: Description | None = None
    provider: ProviderName | None = None
    config: dict[str, Any] | None = Field(default=None, repr=False)
    capacity: Capacity | None = None
    # null removes the classes
    prioritization: Prioritization | None = None
    allowed_models: AllowedModels | None = None


class ConnectionView(ApiModel):
    connection_id: str
    workspace_id: str
    environment_id: str
    name: str
    description: str | None
    provider: ProviderId
    config: dict[str, Any]
    capacity: list[CapacityEntry]
    prioritization: Prioritization | None
    allowed_models: list[str] | None
    discovered_capacity: dict[str, Any] | None
    version: int
    created_at: datetime
    updated_at: datetime
    created_by: str
    updated_by: str
    credentials_updated_at: datetime

    @classmethod
    def of(cls, connection: Connection) -> "ConnectionView":
        return cls(
            connection_id=connection.connection_id,
            workspace_id=connection.workspace_id,
            environment_id=connection.environment_id,
            name=connection.name,
            description=connection.description,
            provider=connection.provider,
            config=connection.masked_config(),
            capacity=connection.capacity,
            prioritization=connection.prioritization,
            allowed_models=connection.allowed_models,
            discovered_capacity=connection.discovered_capacity,
            version=connection.version,
            created_at=connection.created_at,
            updated_at=connection.updated_at,
            created_by=connection.created_by,
            updated_by=connection.updated_by,
            credentials_updated_at=connection.credentials_updated_at,
        )


class ConnectionPage(ApiModel):
    items: list[ConnectionView]
    next_token: str | None
