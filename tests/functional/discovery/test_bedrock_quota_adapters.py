"""The AWS adapters of the Bedrock quotas run: the connections scan on moto's DynamoDB, and the accounts reached
with a role assumed through moto's STS or with static keys, Bedrock and Service Quotas answering through Stubber."""

import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest
from botocore.config import Config
from botocore.stub import Stubber
from pydantic import SecretStr

from tests.functional.discovery.conftest import HAIKU, NOVA, StoreConnection, StubbedAws
from vmx.aws.bedrock_accounts import AwsBedrockAccounts, aws_clients
from vmx.capacity.limits import CapacityPeriod
from vmx.completions.aws_access import AssumedRoles
from vmx.completions.calls import AwsCredentials, BedrockAccess
from vmx.consumers.inputs import ObservedLimit
from vmx.providers.catalog import ProviderId
from vmx.storage.connection_store import DynamoConnectionRepository
from vmx.storage.discovered_store import DynamoDiscoveredCapacity
from vmx.storage.errors import StorageUnavailable
from vmx.use_cases.bedrock_quotas import BEDROCK_PROVIDERS, FoundationModel, QuotaReadFailed, ServiceQuota

ROLE = "arn:aws:iam::111122223333:role/VmxBedrockAccess"
KEYS = AwsCredentials(SecretStr("AKIASTATICEXAMPLE"), SecretStr("wJalrXUtnFEMI-K7MDENG-CANARY"))


@pytest.fixture
def sts(aws: None) -> Any:
    return boto3.client("sts")


@pytest.fixture
def refusing_sts() -> Iterator[Any]:
    """An STS client that refuses to assume any role, and fails the test on any call it was not told of."""
    client = boto3.client("sts", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


# The connections scan


def test_the_scan_finds_the_connections_of_the_providers_asked_for_in_every_environment(
    store_connection: StoreConnection, repository: DynamoConnectionRepository
) -> None:
    converse = store_connection({"region": "eu-west-1", "iamRoleArn": ROLE}, allowed_models=[HAIKU])
    invoke = store_connection({"region": "eu-west-1", "iamRoleArn": ROLE}, provider=ProviderId.AWS_BEDROCK_INVOKE)
    other = store_connection({}, {"apiKey": "sk-other"}, provider=ProviderId.OPENAI)
    ours = {converse.connection_id, invoke.connection_id, other.connection_id}
    # an observation stored beside a connection is no connection, and a scan does not join it
    DynamoDiscoveredCapacity(os.environ["CONNECTIONS_TABLE_NAME"], "us-east-1").record(
        converse.workspace_id,
        converse.environment_id,
        converse.connection_id,
        HAIKU,
        [ObservedLimit(period=CapacityPeriod.MINUTE, requests=10, tokens=None)],
        datetime.now(UTC),
        "service-quotas",
    )

    found = [c for c in repository.scan_by_providers(BEDROCK_PROVIDERS) if c.connection_id in ours]

    assert sorted(found, key=lambda c: c.connection_id) == sorted([converse, invoke], key=lambda c: c.connection_id)
    assert [c.connection_id for c in repository.scan_by_providers([ProviderId.OPENAI]) if c.connection_id in ours] == [
        other.connection_id
    ]
    assert list(repository.scan_by_providers([])) == []


def test_a_scan_that_dynamodb_refuses_is_storage_unavailable(aws: None) -> None:
    repository = DynamoConnectionRepository("no-such-table", "us-east-1")

    with pytest.raises(StorageUnavailable):
        list(repository.scan_by_providers(BEDROCK_PROVIDERS))


# Opening an account


def test_an_account_reached_through_a_role_is_read_with_the_roles_credentials(
    sts: Any, stubbed_aws: StubbedAws
) -> None:
    accounts = AwsBedrockAccounts(AssumedRoles(sts), stubbed_aws)
    stubbed_aws.foundation_model("eu-west-1", HAIKU)

    model = accounts.open(BedrockAccess("eu-west-1", role_arn=ROLE)).foundation_model(HAIKU)

    assert model == FoundationModel("Anthropic", "Claude 3 Haiku")
    ((service, region, key_id),) = stubbed_aws.asked
    assert (service, region) == ("bedrock", "eu-west-1")
    assert key_id.startswith("ASIA")


def test_an_account_reached_with_keys_is_read_with_them_and_assumes_no_role(
    refusing_sts: Stubber, stubbed_aws: StubbedAws
) -> None:
    accounts = AwsBedrockAccounts(AssumedRoles(refusing_sts.client), stubbed_aws)
    stubbed_aws.foundation_model("us-east-1", NOVA)

    accounts.open(BedrockAccess("us-east-1", keys=KEYS)).foundation_model(NOVA)

    assert stubbed_aws.asked == [("bedrock", "us-east-1", "AKIASTATICEXAMPLE")]


def test_a_role_that_cannot_be_assumed_fails_opening_the_account(
    refusing_sts: Stubber, stubbed_aws: StubbedAws
) -> None:
    refusing_sts.add_client_error("assume_role", "AccessDenied", http_status_code=403)
    accounts = AwsBedrockAccounts(AssumedRoles(refusing_sts.client), stubbed_aws)

    with pytest.raises(QuotaReadFailed) as failed:
        accounts.open(BedrockAccess("eu-west-1", role_arn=ROLE))

    assert failed.value.code == "role_not_assumable"
    assert stubbed_aws.asked == []


# Reading it


def test_the_quotas_are_read_over_every_page(refusing_sts: Stubber, stubbed_aws: StubbedAws) -> None:
    account = AwsBedrockAccounts(AssumedRoles(refusing_sts.client), stubbed_aws).open(
        BedrockAccess("us-east-1", keys=KEYS)
    )
    stubbed_aws.quota_pages("us-east-1", {"A": 1.0}, {"B": 2.0, "C": 3.5}, {"D": 4.0})

    assert account.bedrock_quotas() == [
        ServiceQuota("A", 1.0),
        ServiceQuota("B", 2.0),
        ServiceQuota("C", 3.5),
        ServiceQuota("D", 4.0),
    ]


@pytest.mark.parametrize(
    ("service", "method", "code"),
    [
        ("service-quotas", "list_service_quotas", "AccessDeniedException"),
        ("service-quotas", "list_service_quotas", "NoSuchResourceException"),
        ("bedrock", "get_foundation_model", "ResourceNotFoundException"),
        ("bedrock", "get_foundation_model", "AccessDeniedException"),
    ],
)
def test_an_aws_refusal_names_its_error_code(
    refusing_sts: Stubber, stubbed_aws: StubbedAws, service: str, method: str, code: str
) -> None:
    account = AwsBedrockAccounts(AssumedRoles(refusing_sts.client), stubbed_aws).open(
        BedrockAccess("us-east-1", keys=KEYS)
    )
    stubbed_aws.refuse(service, "us-east-1", method, code)

    with pytest.raises(QuotaReadFailed) as failed:
        account.bedrock_quotas() if service == "service-quotas" else account.foundation_model(HAIKU)

    assert failed.value.code == code
    assert code in failed.value.message


def test_a_model_answer_without_names_is_a_failure(refusing_sts: Stubber, stubbed_aws: StubbedAws) -> None:
    account = AwsBedrockAccounts(AssumedRoles(refusing_sts.client), stubbed_aws).open(
        BedrockAccess("us-east-1", keys=KEYS)
    )
    stubbed_aws.stubber("bedrock", "us-east-1").add_response(
        "get_foundation_model", {"modelDetails": {"modelArn": "arn", "modelId": HAIKU}}, {"modelIdentifier": HAIKU}
    )

    with pytest.raises(QuotaReadFailed) as failed:
        account.foundation_model(HAIKU)

    assert failed.value.code == "invalid_response"


def test_an_unreachable_endpoint_is_a_failure(refusing_sts: Stubber) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]

    def unreachable(service: str, region: str, credentials: AwsCredentials) -> Any:
        config = Config(connect_timeout=1, retries={"total_max_attempts": 1})
        return boto3.client(service, region_name=region, endpoint_url=f"http://127.0.0.1:{port}", config=config)  # type: ignore[call-overload]

    account = AwsBedrockAccounts(AssumedRoles(refusing_sts.client), unreachable).open(
        BedrockAccess("us-east-1", keys=KEYS)
    )

    with pytest.raises(QuotaReadFailed) as failed:
        account.bedrock_quotas()

    assert failed.value.code == "EndpointConnectionError"


# The production clients


class _Sent(Exception):
    pass


def test_the_clients_are_made_for_the_region_and_sign_with_the_credentials_given() -> None:
    client = aws_clients(boto3.session.Session())("service-quotas", "eu-west-2", KEYS)
    signed: list[str] = []

    def capture(request: AWSPreparedRequest, **_: Any) -> None:
        authorization = request.headers["Authorization"]
        signed.append(authorization.decode() if isinstance(authorization, bytes) else authorization)
        raise _Sent

    client.meta.events.register_first("before-send", capture)

    with pytest.raises(_Sent):
        client.list_service_quotas(ServiceCode="bedrock")

    assert client.meta.region_name == "eu-west-2"
    assert "Credential=AKIASTATICEXAMPLE/" in signed[0] and "/eu-west-2/servicequotas/" in signed[0]
