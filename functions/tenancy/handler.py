"""Workspaces, environments and API keys."""

from http import HTTPStatus
from typing import Annotated, Literal, TypeVar
from uuid import UUID

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel

from vmx import wiring
from vmx.entry import Observed
from vmx.entry.api import ApiFunction
from vmx.http.app import NextToken, PageSize, current_principal
from vmx.settings import TenancySettings
from vmx.tenancy.models import (
    ApiKeyCreate,
    ApiKeyList,
    ApiKeyPatch,
    ApiKeyView,
    EnvironmentCreate,
    EnvironmentList,
    EnvironmentView,
    IssuedApiKeyView,
    WorkspaceCreate,
    WorkspaceList,
    WorkspaceView,
)
from vmx.use_cases.tenancy import TenancyService


def _service(settings: TenancySettings, observed: Observed) -> TenancyService:
    return wiring.tenancy_service(settings, wiring.event_publisher(settings, observed.logger, observed.metrics))


function = ApiFunction(TenancySettings.from_environ, _service)
app, logger, metrics = function.app, function.observed.logger, function.observed.metrics

WORKSPACE = "/api/v1/workspaces/<workspaceId>"
# Literal, not bool: a destructive flag should not also mean yes for "1", "on" or "yes"
Force = Annotated[Literal["true", "false"], Query(description="true also deletes the AI connections it holds.")]
Model = TypeVar("Model", bound=BaseModel)


def service() -> TenancyService:
    return function.dependencies.get()


@app.get("/api/v1/workspaces")
def list_workspaces(limit: PageSize = 20, next_token: NextToken = None) -> WorkspaceList:
    page = service().list_workspaces(current_principal(app), limit, next_token)
    return WorkspaceList(items=[WorkspaceView.of(item) for item in page.items], next_token=page.next_token)


@app.post("/api/v1/workspaces", status_code=201)
def create_workspace(request: Annotated[WorkspaceCreate, Body()]) -> Response[WorkspaceView]:
    workspace = service().create_workspace(current_principal(app), request)
    logger.info("workspace created", extra={"workspace_id": workspace.workspace_id})
    return _created(WorkspaceView.of(workspace))


@app.get(WORKSPACE)
def get_workspace(workspaceId: UUID) -> WorkspaceView:
    return WorkspaceView.of(service().get_workspace(current_principal(app), str(workspaceId)))


@app.delete(WORKSPACE, status_code=204)
def delete_workspace(workspaceId: UUID, force: Force = "false") -> Response[None]:
    service().delete_workspace(current_principal(app), str(workspaceId), force == "true")
    logger.info("workspace deleted", extra={"workspace_id": str(workspaceId), "force": force})
    return _no_content()


@app.get(WORKSPACE + "/environments")
def list_environments(workspaceId: UUID, limit: PageSize = 20, next_token: NextToken = None) -> EnvironmentList:
    page = service().list_environments(current_principal(app), str(workspaceId), limit, next_token)
    return EnvironmentList(items=[EnvironmentView.of(item) for item in page.items], next_token=page.next_token)


@app.post(WORKSPACE + "/environments", status_code=201)
def create_environment(workspaceId: UUID, request: Annotated[EnvironmentCreate, Body()]) -> Response[EnvironmentView]:
    environment = service().create_environment(current_principal(app), str(workspaceId), request)
    logger.info("environment created", extra={"environment_id": environment.environment_id})
    return _created(EnvironmentView.of(environment))


@app.get(WORKSPACE + "/environments/<environmentId>")
def get_environment(workspaceId: UUID, environmentId: UUID) -> EnvironmentView:
    environment = service().get_environment(current_principal(app), str(workspaceId), str(environmentId))
    return EnvironmentView.of(environment)


@app.delete(WORKSPACE + "/environments/<environmentId>", status_code=204)
def delete_environment(workspaceId: UUID, environmentId: UUID, force: Force = "false") -> Response[None]:
    service().delete_environment(current_principal(app), str(workspaceId), str(environmentId), force == "true")
    logger.info("environment deleted", extra={"environment_id": str(environmentId), "force": force})
    return _no_content()


@app.get(WORKSPACE + "/api-keys")
def list_api_keys(workspaceId: UUID, limit: PageSize = 20, next_token: NextToken = None) -> ApiKeyList:
    page = service().list_api_keys(current_principal(app), str(workspaceId), limit, next_token)
    return ApiKeyList(items=[ApiKeyView.of(item) for item in page.items], next_token=page.next_token)


@app.post(WORKSPACE + "/api-keys", status_code=201)
def create_api_key(workspaceId: UUID, request: Annotated[ApiKeyCreate, Body()]) -> Response[IssuedApiKeyView]:
    issued = service().create_api_key(current_principal(app), str(workspaceId), request)
    logger.info("API key created", extra={"key_id": issued.key.key_id, "role": issued.key.role})
    metrics.add_metric(name="ApiKeysCreated", unit=MetricUnit.Count, value=1)
    view = IssuedApiKeyView(**ApiKeyView.of(issued.key).model_dump(), api_key=issued.token.get_secret_value())
    return _created(view)


@app.get(WORKSPACE + "/api-keys/<keyId>")
def get_api_key(workspaceId: UUID, keyId: UUID) -> ApiKeyView:
    return ApiKeyView.of(service().get_api_key(current_principal(app), str(workspaceId), str(keyId)))


@app.patch(WORKSPACE + "/api-keys/<keyId>")
def change_api_key(workspaceId: UUID, keyId: UUID, patch: Annotated[ApiKeyPatch, Body()]) -> ApiKeyView:
    key = service().change_api_key(current_principal(app), str(workspaceId), str(keyId), patch)
    logger.info("API key changed", extra={"key_id": key.key_id, "priority_class": key.priority_class})
    return ApiKeyView.of(key)


@app.delete(WORKSPACE + "/api-keys/<keyId>", status_code=204)
def revoke_api_key(workspaceId: UUID, keyId: UUID) -> Response[None]:
    service().revoke_api_key(current_principal(app), str(workspaceId), str(keyId))
    logger.info("API key revoked", extra={"key_id": str(keyId)})
    metrics.add_metric(name="ApiKeysRevoked", unit=MetricUnit.Count, value=1)
    return _no_content()


def _created(body: Model) -> Response[Model]:
    return Response(status_code=HTTPStatus.CREATED.value, content_type=content_types.APPLICATION_JSON, body=body)


def _no_content() -> Response[None]:
    return Response(status_code=HTTPStatus.NO_CONTENT.value, body=None)


# responses carry a new API key once: they are never trace metadata (vmx.entry)
lambda_handler = function.handler()
