"""AI connections and the provider catalogue."""

from dataclasses import dataclass
from functools import cache
from http import HTTPStatus
from pathlib import Path
from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.metrics import MetricUnit

import vmx
from vmx import wiring
from vmx.connections.models import (
    Connection,
    ConnectionCreate,
    ConnectionPage,
    ConnectionPatch,
    ConnectionView,
)
from vmx.entry import Observed
from vmx.entry.api import ApiFunction
from vmx.http.app import NextToken, PageSize, current_principal, etag, if_match_version
from vmx.providers.catalog import PROVIDERS
from vmx.providers.views import ProviderList
from vmx.settings import ConnectionsSettings
from vmx.use_cases.capacity_report import CapacityReport, CapacityReporter
from vmx.use_cases.connections import ConnectionScope, ConnectionService
from vmx.use_cases.usage_report import UsageReporter, UsageSeries


@dataclass(frozen=True)
class Services:
    connections: ConnectionService
    capacity: CapacityReporter
    usage: UsageReporter


def _services(settings: ConnectionsSettings, observed: Observed) -> Services:
    publisher = wiring.event_publisher(settings, observed.logger, observed.metrics)
    return Services(
        wiring.connection_service(settings, publisher),
        wiring.capacity_reporter(settings),
        wiring.usage_reporter(settings),
    )


function = ApiFunction(ConnectionsSettings.from_environ, _services)
app, logger, metrics = function.app, function.observed.logger, function.observed.metrics

CONNECTIONS = "/api/v1/workspaces/<workspaceId>/environments/<environmentId>/ai-connections"
ProviderFilter = Annotated[str | None, Query(max_length=64, description="Only connections of this provider.")]


def service() -> ConnectionService:
    return function.dependencies.get().connections


@cache
def api_document() -> str:
    """The API's OpenAPI document, which the shared layer ships (infra/openapi.py writes it)."""
    return (Path(vmx.__file__).parent / "openapi.json").read_text(encoding="utf-8")


@app.get(
    "/api/v1/openapi.json",
    responses={200: {"description": "This document: the whole API, OpenAPI 3.1.", "content": {"application/json": {}}}},
)
def get_api_document() -> Response[str]:
    return Response(200, content_types.APPLICATION_JSON, api_document())


@app.get("/api/v1/providers")
def list_providers() -> ProviderList:
    return ProviderList.of(PROVIDERS.values())


@app.post(CONNECTIONS, status_code=201)
def create_connection(
    workspaceId: UUID, environmentId: UUID, request: Annotated[ConnectionCreate, Body()]
) -> Response[ConnectionView]:
    scope = ConnectionScope(str(workspaceId), str(environmentId))
    connection = service().create(current_principal(app), scope, request)
    logger.info(
        "connection created",
        extra={"connection_id": connection.connection_id, "provider": connection.provider},
    )
    return _connection_response(connection, HTTPStatus.CREATED)


@app.get(CONNECTIONS)
def list_connections(
    workspaceId: UUID,
    environmentId: UUID,
    limit: PageSize = 20,
    next_token: NextToken = None,
    provider: ProviderFilter = None,
) -> ConnectionPage:
    scope = ConnectionScope(str(workspaceId), str(environmentId))
    page = service().list_page(current_principal(app), scope, limit, next_token, provider)
    return ConnectionPage(items=[ConnectionView.of(item) for item in page.items], next_token=page.next_token)


@app.get(CONNECTIONS + "/<connectionId>")
def get_connection(workspaceId: UUID, environmentId: UUID, connectionId: UUID) -> Response[ConnectionView]:
    scope = ConnectionScope(str(workspaceId), str(environmentId))
    return _connection_response(service().get(current_principal(app), scope, str(connectionId)))


@app.patch(CONNECTIONS + "/<connectionId>")
def update_connection(
    workspaceId: UUID, environmentId: UUID, connectionId: UUID, patch: Annotated[ConnectionPatch, Body()]
) -> Response[ConnectionView]:
    scope = ConnectionScope(str(workspaceId), str(environmentId))
    connection = service().update(current_principal(app), scope, str(connectionId), patch, if_match_version(app))
    logger.info("connection updated", extra={"connection_id": connection.connection_id, "version": connection.version})
    metrics.add_metric(name="ConnectionsUpdated", unit=MetricUnit.Count, value=1)
    return _connection_response(connection)


@app.delete(CONNECTIONS + "/<connectionId>", status_code=204)
def delete_connection(workspaceId: UUID, environmentId: UUID, connectionId: UUID) -> Response[None]:
    scope = ConnectionScope(str(workspaceId), str(environmentId))
    service().delete(current_principal(app), scope, str(connectionId), if_match_version(app))
    logger.info("connection deleted", extra={"connection_id": str(connectionId)})
    metrics.add_metric(name="ConnectionsDeleted", unit=MetricUnit.Count, value=1)
    return Response(status_code=HTTPStatus.NO_CONTENT.value, body=None)


@app.get(CONNECTIONS + "/<connectionId>/capacity")
def get_capacity(workspaceId: UUID, environmentId: UUID, connectionId: UUID) -> CapacityReport:
    scope = ConnectionScope(str(workspaceId), str(environmentId))
    source_ip = app.current_event.request_context.identity.source_ip
    return function.dependencies.get().capacity.report(current_principal(app), scope, str(connectionId), source_ip)


@app.get(CONNECTIONS + "/<connectionId>/usage")
def get_usage(
    workspaceId: UUID,
    environmentId: UUID,
    connectionId: UUID,
    start: Annotated[
        str | None,
        Query(alias="from", max_length=64, description="ISO 8601 instant with a time zone; by default 24 h before to."),
    ] = None,
    end: Annotated[
        str | None, Query(alias="to", max_length=64, description="ISO 8601 instant with a time zone; by default now.")
    ] = None,
    granularity: Annotated[str, Query(max_length=16, description="hour or day.")] = "hour",
) -> UsageSeries:
    scope = ConnectionScope(str(workspaceId), str(environmentId))
    return function.dependencies.get().usage.series(
        current_principal(app), scope, str(connectionId), start, end, granularity
    )


def _connection_response(connection: Connection, status: HTTPStatus = HTTPStatus.OK) -> Response[ConnectionView]:
    return Response(
        status_code=status.value,
        content_type=content_types.APPLICATION_JSON,
        body=ConnectionView.of(connection),
        headers={"ETag": etag(connection.version)},
    )


# responses carry the connection's config (secrets masked): they are never trace metadata (vmx.entry)
lambda_handler = function.handler()
