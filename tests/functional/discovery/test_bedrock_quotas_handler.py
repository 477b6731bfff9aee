"""The scheduled handler end to end: connections scanned from DynamoDB, keys opened with KMS, roles assumed with
STS (all on moto), Bedrock and Service Quotas under Stubber, and the events read back from the bus."""

import json
from collections.abc import Iterator
from typing import Any

import pytest

from functions.bedrock_quotas import handler
from infra.system import BEDROCK_QUOTAS
from local_stack.lambda_runtime import new_context
from tests.functional.discovery.conftest import (
    HAIKU,
    NOVA,
    StoreConnection,
    StubbedAws,
    Subscription,
    scheduled_event,
)
from vmx import wiring
from vmx.aws.bedrock_accounts import ClientMaker
from vmx.events.models import RateLimitsObserved
from vmx.providers.catalog import ProviderId

ROLE = "arn:aws:iam::111122223333:role/VmxBedrockAccess"
STATIC_KEY_ID = "AKIASTATICEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI-K7MDENG-CANARY"


@pytest.fixture
def run_handler(
    aws: None, subscription: Subscription, stubbed_aws: StubbedAws, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """The handler as deployed (KMS cipher, the bus), but with Bedrock and Service Quotas clients under Stubber."""

    def stubbed_clients(session: Any) -> ClientMaker:
        return stubbed_aws

    monkeypatch.setenv("CREDENTIALS_CIPHER", "kms")
    monkeypatch.setenv("EVENT_BUS_NAME", subscription.bus_name)
    monkeypatch.setattr(wiring, "aws_clients", stubbed_clients)
    handler.ports.use(None)
    yield
    handler.ports.use(None)


def emitted_metrics(output: str) -> dict[str, float]:
    """The metrics in the Embedded Metric Format lines Powertools printed."""
    metrics: dict[str, float] = {}
    for line in output.splitlines():
        if line.startswith("{") and "_aws" in (record := json.loads(line)):
            for definition in record["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                # a metric added more than once holds a list of values
                values = record[definition["Name"]]
                metrics[definition["Name"]] = sum(values) if isinstance(values, list) else values
    return metrics


@pytest.mark.usefixtures("run_handler")
def test_a_scheduled_run_publishes_the_quotas_of_every_bedrock_connection_it_can_read(
    store_connection: StoreConnection,
    stubbed_aws: StubbedAws,
    subscription: Subscription,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a connection through a role, whose account lists its quotas over two pages and has none for Nova,
    by_role = store_connection({"region": "eu-west-1", "iamRoleArn": ROLE}, allowed_models=[HAIKU, NOVA])
    stubbed_aws.quota_pages(
        "eu-west-1",
        {
            "On-demand model inference requests per minute for Anthropic Claude 3 Haiku": 1000.0,
            "Batch inference job size (in GB)": 5.0,
        },
        {"On-demand model inference tokens per minute for Anthropic Claude 3 Haiku": 2000000.0},
    )
    stubbed_aws.foundation_model("eu-west-1", HAIKU)
    stubbed_aws.foundation_model("eu-west-1", NOVA)
    # one through stored keys, on the default models of bedrock-invoke, whose account states one of them,
    by_keys = store_connection(
        {"region": "us-east-1"},
        {"accessKeyId": STATIC_KEY_ID, "secretAccessKey": SECRET_KEY},
        provider=ProviderId.AWS_BEDROCK_INVOKE,
        allowed_models=[NOVA],
    )
    stubbed_aws.quota_pages("us-east-1", {"On-demand InvokeModel tokens per minute for Amazon Nova Pro": 300000.0})
    stubbed_aws.foundation_model("us-east-1", NOVA)
    # one whose role may not read Service Quotas, and a connection to another provider
    denied = store_connection({"region": "eu-central-1", "iamRoleArn": ROLE}, allowed_models=[HAIKU])
    stubbed_aws.refuse("service-quotas", "eu-central-1", "list_service_quotas", "AccessDeniedException")
    store_connection({}, {"apiKey": "sk-other"}, provider=ProviderId.OPENAI)

    # When the schedule runs the function
    counts = handler.lambda_handler(scheduled_event(), new_context(BEDROCK_QUOTAS))

    # Then the quotas it could read are on the bus, as the discovery consumer receives them
    published = {
        (event.detail.connection_id, event.detail.model): event.detail
        for event in subscription.received()
        if isinstance(event.detail, RateLimitsObserved)
    }
    assert sorted(published) == sorted([(by_role.connection_id, HAIKU), (by_keys.connection_id, NOVA)])
    haiku = published[(by_role.connection_id, HAIKU)]
    assert (haiku.source, haiku.provider) == ("service-quotas", ProviderId.AWS_BEDROCK)
    assert [(limit.period, limit.requests, limit.tokens) for limit in haiku.capacity] == [("minute", 1000, 2000000)]
    nova = published[(by_keys.connection_id, NOVA)]
    assert [(limit.requests, limit.tokens) for limit in nova.capacity] == [(None, 300000)]
    # read with the role's assumed credentials, and with the opened keys
    keys_by_region = {region: key for _, region, key in stubbed_aws.asked}
    assert keys_by_region["us-east-1"] == STATIC_KEY_ID
    assert keys_by_region["eu-west-1"].startswith("ASIA")
    # and the run says what it did, in its answer, its metrics and its logs
    assert counts == {
        "connections_seen": 3,
        "connections_skipped": 1,
        "models_published": 2,
        "models_skipped": 1,
        "finished": True,
    }
    output = capsys.readouterr().out
    assert emitted_metrics(output) == {
        "BedrockConnectionsSeen": 3.0,
        "BedrockConnectionsSkipped": 1.0,
        "BedrockModelQuotasPublished": 2.0,
        "BedrockModelsSkipped": 1.0,
    }
    skipped = [record.__dict__ for record in caplog.records if record.getMessage() == "bedrock connection skipped"]
    assert [(logged["connection_id"], logged["reason"]) for logged in skipped] == [
        (denied.connection_id, "AccessDeniedException")
    ]
    assert SECRET_KEY not in output + repr([record.__dict__ for record in caplog.records])


@pytest.mark.usefixtures("run_handler")
def test_a_run_with_no_bedrock_connection_publishes_nothing(
    store_connection: StoreConnection, subscription: Subscription
) -> None:
    store_connection({}, {"apiKey": "sk-other"}, provider=ProviderId.OPENAI)

    counts = handler.lambda_handler(scheduled_event(), new_context(BEDROCK_QUOTAS))

    assert subscription.received() == []
    assert counts["connections_seen"] == 0 and counts["finished"] is True


def test_without_a_bus_the_function_refuses_to_run(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVENT_BUS_NAME", raising=False)
    handler.ports.use(None)

    with pytest.raises(ValueError, match="EVENT_BUS_NAME"):
        handler.lambda_handler(scheduled_event(), new_context(BEDROCK_QUOTAS))
