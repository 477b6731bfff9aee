"""The Bedrock quotas run on moto (connections table, KMS, STS, EventBridge and SQS) with botocore's Stubber
standing in for Bedrock and Service Quotas, which moto does not answer."""

import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from pydantic import SecretStr

from tests.unit.builders import connection_record
from vmx.aws.kms_cipher import KmsCipher
from vmx.completions.calls import AwsCredentials
from vmx.connections.models import Connection
from vmx.events.models import EVENT_SOURCE, ReceivedEvent, parse_event
from vmx.providers.catalog import ProviderId
from vmx.settings import TenancySettings
from vmx.storage.connection_store import DynamoConnectionRepository
from vmx.tenancy.models import EnvironmentCreate, WorkspaceCreate
from vmx.use_cases.bedrock_quotas import FoundationModel
from vmx.use_cases.tenancy import TenancyService

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
NOVA = "amazon.nova-pro-v1:0"
MODEL_NAMES = {HAIKU: FoundationModel("Anthropic", "Claude 3 Haiku"), NOVA: FoundationModel("Amazon", "Nova Pro")}


@dataclass
class StubbedAws:
    """A `ClientMaker` handing out one Stubber-backed client per service and region, recording the access key id
    of the credentials each was asked for."""

    stubbers: dict[tuple[str, str], Stubber] = field(default_factory=dict)
    asked: list[tuple[str, str, str]] = field(default_factory=list)

    def stubber(self, service: str, region: str) -> Stubber:
        if (service, region) not in self.stubbers:
            client = boto3.client(
                service,  # type: ignore[call-overload]
                region_name=region,
                aws_access_key_id="AKIASTUB",
                aws_secret_access_key="stub",
            )
            stubber = Stubber(client)
            stubber.activate()
            self.stubbers[(service, region)] = stubber
        return self.stubbers[(service, region)]

    def __call__(self, service: str, region: str, credentials: AwsCredentials) -> Any:
        self.asked.append((service, region, credentials.access_key_id.get_secret_value()))
        return self.stubber(service, region).client

    def foundation_model(self, region: str, model_id: str) -> None:
        names = MODEL_NAMES[model_id]
        details = {
            "modelArn": f"arn:aws:bedrock:{region}::foundation-model/{model_id}",
            "modelId": model_id,
            "modelName": names.model_name,
            "providerName": names.provider_name,
        }
        self.stubber("bedrock", region).add_response(
            "get_foundation_model", {"modelDetails": details}, {"modelIdentifier": model_id}
        )

    def quota_pages(self, region: str, *pages: dict[str, float]) -> None:
        """ListServiceQuotas answering these pages of quota name -> value, in order."""
        for number, page in enumerate(pages):
            expected: dict[str, Any] = {"ServiceCode": "bedrock", "MaxResults": 100}
            if number:
                expected["NextToken"] = f"page-{number}"
            response: dict[str, Any] = {"Quotas": [quota(name, value) for name, value in page.items()]}
            if number < len(pages) - 1:
                response["NextToken"] = f"page-{number + 1}"
            self.stubber("service-quotas", region).add_response("list_service_quotas", response, expected)

    def refuse(self, service: str, region: str, method: str, code: str) -> None:
        self.stubber(service, region).add_client_error(method, code, http_status_code=403)

    def assert_all_answered(self) -> None:
        for stubber in self.stubbers.values():
            stubber.assert_no_pending_responses()
            stubber.deactivate()


def quota(name: str, value: float) -> dict[str, Any]:
    return {
        "ServiceCode": "bedrock",
        "QuotaCode": f"L-{uuid.uuid4().hex[:8].upper()}",
        "QuotaName": name,
        "Value": value,
        "Unit": "None",
        "Adjustable": True,
    }


@pytest.fixture
def stubbed_aws() -> Iterator[StubbedAws]:
    stubbed = StubbedAws()
    yield stubbed
    stubbed.assert_all_answered()


@pytest.fixture
def repository(aws: None) -> DynamoConnectionRepository:
    settings = TenancySettings.from_environ(os.environ)
    return DynamoConnectionRepository(
        settings.connections_table_name, settings.aws_region, tenancy_table_name=settings.tenancy_table_name
    )


@pytest.fixture
def kms_cipher(aws: None) -> KmsCipher:
    return KmsCipher(boto3.client("kms"), os.environ["CREDENTIALS_KMS_KEY_ID"])


StoreConnection = Callable[..., Connection]


@pytest.fixture
def store_connection(
    tenancy: TenancyService, repository: DynamoConnectionRepository, kms_cipher: KmsCipher
) -> Iterator[StoreConnection]:
    """Stores connections (secrets sealed with KMS) in an environment of this test's own, and removes them after:
    the table outlives the test, and the run reads all of it."""
    workspace = tenancy.add_workspace(WorkspaceCreate(name="Quotas"), created_by="test")
    environment = tenancy.add_environment(workspace.workspace_id, EnvironmentCreate(name="production"), "test")
    stored: list[Connection] = []

    def store(
        settings: dict[str, Any],
        secrets: dict[str, str] | None = None,
        allowed_models: list[str] | None = None,
        provider: ProviderId = ProviderId.AWS_BEDROCK,
    ) -> Connection:
        connection = connection_record(
            workspace_id=workspace.workspace_id,
            environment_id=environment.environment_id,
            name=f"connection-{len(stored)}",
            provider=provider,
            settings=settings,
            allowed_models=allowed_models,
        )
        sealed = kms_cipher.seal(
            {name: SecretStr(value) for name, value in (secrets or {}).items()}, connection.encryption_context
        )
        connection = connection.model_copy(update={"secrets": sealed})
        repository.add(connection)
        stored.append(connection)
        return connection

    yield store
    for connection in stored:
        repository.remove(connection)


@dataclass(frozen=True)
class Subscription:
    """A bus with a rule delivering every event of ours to a queue, as the discovery consumer's queue receives them."""

    bus_name: str
    queue_url: str

    def received(self) -> list[ReceivedEvent]:
        sqs = boto3.client("sqs")
        events: list[ReceivedEvent] = []
        while messages := sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", []):
            events += [parse_event(message["Body"]) for message in messages]
            for message in messages:
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return events


@pytest.fixture
def subscription(aws: None) -> Subscription:
    name = f"quotas-{uuid.uuid4().hex[:8]}"
    events, sqs = boto3.client("events"), boto3.client("sqs")
    events.create_event_bus(Name=name)
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventBusName=name, EventPattern=json.dumps({"source": [EVENT_SOURCE]}))
    events.put_targets(Rule=name, EventBusName=name, Targets=[{"Id": "queue", "Arn": queue_arn}])
    return Subscription(name, queue_url)


def scheduled_event(time: str = "2026-11-22T18:00:00Z") -> dict[str, Any]:
    """What an EventBridge schedule sends its target."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": time,
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/vmx-bedrock-quotas"],
        "detail": {},
    }
