"""Workspaces, environments and API keys: the domain records and the API's shapes."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field, StrictBool

from vmx.api_model import ApiModel
from vmx.capacity.limits import PriorityClassName
from vmx.fields import Description, DisplayName


class Role(StrEnum):
    ADMIN = "admin"
    EDITOR = "editor"
    VIEWER = "viewer"
    GATEWAY = "gateway"


def _distinct_ids(values: list[UUID]) -> list[UUID]:
    if len(set(values)) != len(values):
        raise ValueError("lists an environment more than once")
    return values


class Workspace(BaseModel):
    workspace_id: str
    name: str
    description: str | None
    created_at: datetime
    created_by: str


class Environment(BaseModel):
    workspace_id: str
    environment_id: str
    name: str
    description: str | None
    created_at: datetime
    created_by: str


class ApiKey(BaseModel):
    key_id: str
    workspace_id: str
    name: str
    role: Role
    # None: every environment of the workspace
    environment_ids: list[str] | None
    platform_admin: bool
    secret_hash: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None = None
    # the priority class its completions count in, on connections that have it (vmx.capacity.limits)
    priority_class: str | None = None


class WorkspaceCreate(ApiModel):
    name: DisplayName
    description: Description | None = None


class EnvironmentCreate(ApiModel):
    name: DisplayName
    description: Description | None = None


class ApiKeyCreate(ApiModel):
    name: DisplayName
    role: Role
    environment_ids: (
        Annotated[list[UUID], Field(min_length=1, max_length=100), AfterValidator(_distinct_ids)] | None
    ) = None
    platform_admin: StrictBool = False
    # on a connection without this class, its completions count in the connection's default class
    priority_class: PriorityClassName | None = None


class ApiKeyPatch(ApiModel):
    """What may change on a key: only its priority class (null: none, so the connections' default classes)."""

    priority_class: PriorityClassName | None = None


class WorkspaceView(ApiModel):
    workspace_id: str
    name: str
    description: str | None
    created_at: datetime
    created_by: str

    @classmethod
    def of(cls, workspace: Workspace) -> "WorkspaceView":
        return cls(**workspace.model_dump())


class EnvironmentView(ApiModel):
    workspace_id: str
    environment_id: str
    name: str
    description: str | None
    created_at: datetime
    created_by: str

    @classmethod
    def of(cls, environment: Environment) -> "EnvironmentView":
        return cls(**environment.model_dump())


class ApiKeyView(ApiModel):
    key_id: str
    workspace_id: str
    name: str
    role: Role
    environment_ids: list[str] | None
    platform_admin: bool
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    priority_class: str | None

    @classmethod
    def of(cls, key: ApiKey) -> "ApiKeyView":
        return cls(**key.model_dump(exclude={"secret_hash"}))


class IssuedApiKeyView(ApiKeyView):
    """The one response that carries the key itself; it is never shown again."""

    api_key: str


class WorkspaceList(ApiModel):
    items: list[WorkspaceView]
    next_token: str | None


class EnvironmentList(ApiModel):
    items: list[EnvironmentView]
    next_token: str | None


class ApiKeyList(ApiModel):
    items: list[ApiKeyView]
    next_token: str | None
