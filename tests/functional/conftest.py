"""Functional tier: the real handlers and DynamoDB adapters on moto, driven through API Gateway emulation."""

import os
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest
from moto import mock_aws

from infra.system import TABLES, WORK_QUEUES
from local_stack.emulator import create_table
from local_stack.gateway import ApiGateway
from tests.event_fakes import InMemoryEventPublisher
from tests.functional.api import Api, in_process_gateway
from vmx import wiring
from vmx.settings import TenancySettings
from vmx.tenancy.models import EnvironmentCreate, Role, WorkspaceCreate
from vmx.use_cases.tenancy import TenancyService


# Per module, not per session: an active moto mock intercepts every boto3 call in the process, including
# those the local stack tests send to a real moto server later in the same worker.
@pytest.fixture(scope="module")
def aws() -> Iterator[None]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        os.environ.update({table.env_var: create_table(dynamodb, table) for table in TABLES})
        os.environ["CREDENTIALS_KMS_KEY_ID"] = boto3.client("kms").create_key()["KeyMetadata"]["KeyId"]
        # edits apply at once here; the cache itself is tested on its own (tests/unit/test_recent_connections.py)
        os.environ["CONNECTION_CACHE_SECONDS"] = "0"
        os.environ["EVENT_BUS_NAME"] = (
            boto3.client("events").create_event_bus(Name="vmx-test-events")["EventBusArn"].split("/")[-1]
        )
        sqs = boto3.client("sqs")
        os.environ.update(
            {
                queue.url_env_var: sqs.create_queue(QueueName=f"vmx-test-{queue.name}")["QueueUrl"]
                for queue in WORK_QUEUES
            }
        )
        yield


@pytest.fixture(scope="module")
def gateway(aws: None) -> ApiGateway:
    return in_process_gateway()


@pytest.fixture
def tenancy(aws: None) -> TenancyService:
    return wiring.tenancy_service(TenancySettings.from_environ(os.environ), InMemoryEventPublisher())


@dataclass(frozen=True)
class Tenant:
    """A workspace of its own for one test, with an environment and an admin key in it."""

    api: Api
    workspace_id: str
    environment_id: str
    admin_key: str
    service: TenancyService

    @property
    def workspace_path(self) -> str:
        return f"/api/v1/workspaces/{self.workspace_id}"

    @property
    def connections_path(self) -> str:
        return f"{self.workspace_path}/environments/{self.environment_id}/ai-connections"

    def key(self, role: Role, environment_ids: list[str] | None = None, platform_admin: bool = False) -> str:
        issued = self.service.issue_api_key(
            self.workspace_id,
            name=f"{role} key",
            role=role,
            environment_ids=environment_ids,
            platform_admin=platform_admin,
            created_by="test",
        )
        return issued.token.get_secret_value()

    def as_role(self, role: Role, environment_ids: list[str] | None = None) -> Api:
        return self.api.as_key(self.key(role, environment_ids))

    def new_environment(self, name: str = "staging") -> str:
        environment = self.service.add_environment(self.workspace_id, EnvironmentCreate(name=name), created_by="test")
        return environment.environment_id


@pytest.fixture
def tenant(gateway: ApiGateway, tenancy: TenancyService) -> Tenant:
    workspace = tenancy.add_workspace(WorkspaceCreate(name="Test workspace"), created_by="test")
    environment = tenancy.add_environment(
        workspace.workspace_id, EnvironmentCreate(name="development"), created_by="test"
    )
    admin = tenancy.issue_api_key(
        workspace.workspace_id,
        name="admin",
        role=Role.ADMIN,
        environment_ids=None,
        platform_admin=False,
        created_by="test",
    ).token.get_secret_value()
    return Tenant(Api(gateway, admin), workspace.workspace_id, environment.environment_id, admin, tenancy)


@pytest.fixture
def platform_admin(tenant: Tenant, tenancy: TenancyService) -> Api:
    """A platform-admin key from a workspace of its own, so deleting the tenant's workspace keeps it."""
    home = tenancy.add_workspace(WorkspaceCreate(name="Platform"), created_by="test")
    issued = tenancy.issue_api_key(
        home.workspace_id,
        name="platform",
        role=Role.ADMIN,
        environment_ids=None,
        platform_admin=True,
        created_by="test",
    )
    return tenant.api.as_key(issued.token.get_secret_value())
