"""The consumers' DynamoDB adapters on moto, a connection to observe in an environment of its own, and the
DynamoDB operations each adapter sends."""

import os
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from pynamodb.connection.base import Connection as PynamoConnection

from tests.unit.builders import connection_record
from tests.unit.consumers.discovered_contract import ConnectionAddress
from tests.unit.consumers.events import NOW
from vmx.connections.models import Connection
from vmx.settings import TenancySettings
from vmx.storage.connection_remains import DynamoConnectionRemains
from vmx.storage.connection_store import DynamoConnectionRepository
from vmx.storage.discovered_store import DynamoDiscoveredCapacity
from vmx.storage.usage_store import DynamoUsageStatistics
from vmx.tenancy.models import EnvironmentCreate, WorkspaceCreate
from vmx.use_cases.tenancy import TenancyService

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


@pytest.fixture
def settings(aws: None) -> TenancySettings:
    return TenancySettings.from_environ(os.environ)


@pytest.fixture
def repository(settings: TenancySettings) -> DynamoConnectionRepository:
    return DynamoConnectionRepository(
        settings.connections_table_name, settings.aws_region, tenancy_table_name=settings.tenancy_table_name
    )


@pytest.fixture
def writer(settings: TenancySettings) -> DynamoDiscoveredCapacity:
    return DynamoDiscoveredCapacity(settings.connections_table_name, settings.aws_region)


@pytest.fixture
def new_connection(tenancy: TenancyService, repository: DynamoConnectionRepository) -> Callable[..., Connection]:
    """Stores connections in an environment of this test's own."""
    workspace = tenancy.add_workspace(WorkspaceCreate(name="Observed"), created_by="test")
    environment = tenancy.add_environment(workspace.workspace_id, EnvironmentCreate(name="production"), "test")

    def build(name: str = "openai-prod") -> Connection:
        connection = connection_record(
            workspace_id=workspace.workspace_id, environment_id=environment.environment_id, name=name
        )
        repository.add(connection)
        return connection

    return build


@pytest.fixture
def stored_connection(new_connection: Callable[..., Connection]) -> Connection:
    return new_connection()


@pytest.fixture
def connection(stored_connection: Connection) -> ConnectionAddress:
    return ConnectionAddress(
        stored_connection.workspace_id, stored_connection.environment_id, stored_connection.connection_id
    )


@pytest.fixture
def pynamodb_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the DynamoDB operations pynamodb sends from here on, in order."""
    calls: list[str] = []
    dispatch = PynamoConnection.dispatch

    def recording(self: PynamoConnection, operation_name: str, operation_kwargs: dict[str, Any]) -> Any:
        calls.append(operation_name)
        return dispatch(self, operation_name, operation_kwargs)

    monkeypatch.setattr(PynamoConnection, "dispatch", recording)
    return calls


@pytest.fixture
def dynamodb_calls() -> list[str]:
    """The names of the DynamoDB operations `dynamodb` has sent, in order."""
    return []


@pytest.fixture
def dynamodb(aws: None, dynamodb_calls: list[str]) -> "DynamoDBClient":
    client = boto3.client("dynamodb", region_name=os.environ["AWS_REGION"])

    def record(model: Any, **_: Any) -> None:
        dynamodb_calls.append(model.name)

    client.meta.events.register("before-call.dynamodb", record)
    return client


class SetClock:
    """Reads `now` until a test moves it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> SetClock:
    """The consumers' clock: at first the instant the test events happened (tests.unit.consumers.events.NOW)."""
    return SetClock(NOW)


@pytest.fixture
def usage(aws: None, dynamodb: "DynamoDBClient", clock: SetClock) -> DynamoUsageStatistics:
    return DynamoUsageStatistics(os.environ["USAGE_TABLE_NAME"], os.environ["AWS_REGION"], clock, client=dynamodb)


@pytest.fixture
def remains(aws: None, clock: SetClock) -> DynamoConnectionRemains:
    return DynamoConnectionRemains(
        capacity_table=os.environ["CAPACITY_TABLE_NAME"],
        usage_table=os.environ["USAGE_TABLE_NAME"],
        connections_table=os.environ["CONNECTIONS_TABLE_NAME"],
        region=os.environ["AWS_REGION"],
        clock=clock,
    )
