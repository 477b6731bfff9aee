"""moto's server on an ephemeral port, provisioned from `infra/system.py`."""

import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests

from infra import system
from local_stack.emulator import (
    EVENT_BUS_NAME,
    Provisioned,
    create_table,
    point_environment_at,
    provision,
    start_moto,
    table_name,
)
from local_stack.event_delivery import LOCAL_VISIBILITY_TIMEOUT_SECONDS, event_pattern


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server, endpoint_url = start_moto("127.0.0.1", 0)
    yield endpoint_url
    # moto's backends are process-wide: leave nothing behind for other tests in this worker
    requests.post(f"{endpoint_url}/moto-api/reset", timeout=10)
    server.stop()


@pytest.fixture(scope="module")
def provisioned(moto_endpoint: str) -> Provisioned:
    return provision(system.TABLES, system.EVENT_QUEUES, moto_endpoint)


def client(service: str, endpoint_url: str) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def key_schema(keys: list[dict[str, str]]) -> tuple[str, str]:
    by_type = {key["KeyType"]: key["AttributeName"] for key in keys}
    return by_type["HASH"], by_type["RANGE"]


@pytest.mark.parametrize("table", system.TABLES, ids=lambda table: table.logical_id)
def test_each_table_is_created_as_system_describes_it(
    table: system.Table, moto_endpoint: str, provisioned: Provisioned
) -> None:
    dynamodb = client("dynamodb", moto_endpoint)

    description = dynamodb.describe_table(TableName=provisioned.table_names[table.logical_id])["Table"]

    assert description["TableName"] == table_name(table)
    assert description["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert key_schema(description["KeySchema"]) == (table.partition_key, table.sort_key)
    assert {attribute["AttributeType"] for attribute in description["AttributeDefinitions"]} == {"S"}
    created = {
        (index["IndexName"], key_schema(index["KeySchema"]), index["Projection"]["ProjectionType"], local)
        for local, field in ((False, "GlobalSecondaryIndexes"), (True, "LocalSecondaryIndexes"))
        for index in description.get(field, [])
    }
    assert created == {
        (index.name, (index.partition_key, index.sort_key), "ALL", index.local) for index in table.indexes
    }
    ttl = dynamodb.describe_time_to_live(TableName=table_name(table))["TimeToLiveDescription"]
    if table.ttl_attribute:
        assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": table.ttl_attribute}
    else:
        assert ttl["TimeToLiveStatus"] == "DISABLED"


def test_the_bus_and_the_key_exist(moto_endpoint: str, provisioned: Provisioned) -> None:
    assert provisioned.event_bus_name == EVENT_BUS_NAME
    client("events", moto_endpoint).describe_event_bus(Name=EVENT_BUS_NAME)
    key_id = provisioned.credentials_key_id
    assert client("kms", moto_endpoint).describe_key(KeyId=key_id)["KeyMetadata"]["Enabled"]


def test_the_environment_points_every_client_at_moto(
    monkeypatch: pytest.MonkeyPatch, moto_endpoint: str, provisioned: Provisioned
) -> None:
    monkeypatch.setattr(os, "environ", {**os.environ, "AWS_PROFILE": "production"})

    point_environment_at(moto_endpoint)

    assert "AWS_PROFILE" not in os.environ
    assert os.environ["AWS_ENDPOINT_URL"] == moto_endpoint
    assert os.environ["POWERTOOLS_TRACE_DISABLED"] == "true"
    tables = boto3.Session().client("dynamodb").list_tables()["TableNames"]
    assert set(tables) >= {table_name(table) for table in system.TABLES}


def test_a_ttl_attribute_is_enabled(moto_endpoint: str) -> None:
    table = system.Table(
        logical_id="ExpiringTable", env_var="X", partition_key="pk", sort_key="sk", ttl_attribute="ttl"
    )
    dynamodb = client("dynamodb", moto_endpoint)

    name = create_table(dynamodb, table)

    ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}


@pytest.mark.parametrize("spec", system.EVENT_QUEUES, ids=lambda spec: spec.name)
def test_each_event_queue_is_a_rule_on_the_bus_to_a_queue_with_a_dead_letter_queue(
    spec: system.EventQueue, moto_endpoint: str, provisioned: Provisioned
) -> None:
    (queue,) = [queue for queue in provisioned.queues if queue.spec == spec]
    sqs = client("sqs", moto_endpoint)
    events = client("events", moto_endpoint)

    attributes = sqs.get_queue_attributes(QueueUrl=queue.url, AttributeNames=["All"])["Attributes"]
    dead_letter_arn = sqs.get_queue_attributes(QueueUrl=queue.dead_letter_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": dead_letter_arn,
        "maxReceiveCount": spec.max_receive_count,
    }
    assert int(attributes["VisibilityTimeout"]) == LOCAL_VISIBILITY_TIMEOUT_SECONDS
    rule = events.describe_rule(Name=queue.rule_name, EventBusName=EVENT_BUS_NAME)
    assert json.loads(rule["EventPattern"]) == event_pattern(spec)
    (target,) = events.list_targets_by_rule(Rule=queue.rule_name, EventBusName=EVENT_BUS_NAME)["Targets"]
    assert target["Arn"] == queue.arn == attributes["QueueArn"]
