"""The local stack's moto server: DynamoDB calls atomic under concurrency, transactions rolled back item by
item, kept-alive connections."""

import sys
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
import urllib3
from botocore.exceptions import ClientError

from local_stack.moto_server import MotoServer

TABLE = "moto-server-test"


@pytest.fixture(scope="module")
def endpoint_url() -> Iterator[str]:
    server = MotoServer()
    server.start()
    yield server.endpoint_url
    requests.post(f"{server.endpoint_url}/moto-api/reset", timeout=10)
    server.stop()


def dynamodb(endpoint_url: str) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


@pytest.fixture(scope="module")
def table(endpoint_url: str) -> str:
    dynamodb(endpoint_url).create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    )
    return TABLE


def key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": "item"}}


@pytest.fixture
def threads_switch_often() -> Iterator[None]:
    # moto's server threads then interleave inside a call, where a read-then-write race would show
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


@pytest.mark.usefixtures("threads_switch_often")
def test_concurrent_conditional_writes_never_pass_the_condition_together(endpoint_url: str, table: str) -> None:
    # 8 writers race on one counter capped at 120: exactly 120 increments succeed, as DynamoDB guarantees
    client = dynamodb(endpoint_url)
    admitted = []
    lock = threading.Lock()

    def writer() -> None:
        mine = 0
        for _ in range(25):
            try:
                client.update_item(
                    TableName=table,
                    Key=key("counter"),
                    UpdateExpression="ADD used :one",
                    ConditionExpression="attribute_not_exists(used) OR used < :limit",
                    ExpressionAttributeValues={":one": {"N": "1"}, ":limit": {"N": "120"}},
                )
                mine += 1
            except ClientError as error:
                assert error.response["Error"]["Code"] == "ConditionalCheckFailedException"
        with lock:
            admitted.append(mine)

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(admitted) == 120
    stored = client.get_item(TableName=table, Key=key("counter"), ConsistentRead=True)["Item"]
    assert stored["used"] == {"N": "120"}


def test_a_cancelled_transaction_leaves_every_item_as_it_was(endpoint_url: str, table: str) -> None:
    client = dynamodb(endpoint_url)
    client.put_item(TableName=table, Item={**key("existing"), "count": {"N": "1"}, "tag": {"S": "before"}})
    client.put_item(TableName=table, Item={**key("untouched"), "count": {"N": "7"}})

    with pytest.raises(ClientError) as refused:
        client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": {**key("new"), "count": {"N": "5"}}}},
                {
                    "Update": {
                        "TableName": table,
                        "Key": key("existing"),
                        "UpdateExpression": "ADD #count :two REMOVE tag",
                        "ExpressionAttributeNames": {"#count": "count"},
                        "ExpressionAttributeValues": {":two": {"N": "2"}},
                    }
                },
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": key("untouched"),
                        "ConditionExpression": "#count > :ten",
                        "ExpressionAttributeNames": {"#count": "count"},
                        "ExpressionAttributeValues": {":ten": {"N": "10"}},
                    }
                },
            ]
        )

    assert refused.value.response["Error"]["Code"] == "TransactionCanceledException"
    reasons = [reason["Code"] for reason in refused.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "ConditionalCheckFailed"]
    assert "Item" not in client.get_item(TableName=table, Key=key("new"), ConsistentRead=True)
    existing = client.get_item(TableName=table, Key=key("existing"), ConsistentRead=True)["Item"]
    assert existing == {**key("existing"), "count": {"N": "1"}, "tag": {"S": "before"}}
    untouched = client.get_item(TableName=table, Key=key("untouched"), ConsistentRead=True)["Item"]
    assert untouched == {**key("untouched"), "count": {"N": "7"}}


def test_a_transaction_that_succeeds_writes_every_item(endpoint_url: str, table: str) -> None:
    client = dynamodb(endpoint_url)
    client.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": table, "Item": {**key("first"), "count": {"N": "1"}}}},
            {"Put": {"TableName": table, "Item": {**key("second"), "count": {"N": "2"}}}},
        ]
    )
    for name, count in (("first", "1"), ("second", "2")):
        assert client.get_item(TableName=table, Key=key(name), ConsistentRead=True)["Item"]["count"] == {"N": count}


def test_connections_are_kept_alive(endpoint_url: str) -> None:
    pool = urllib3.connection_from_url(endpoint_url, maxsize=1)
    for _ in range(3):
        response = pool.request("GET", "/moto-api/data.json")
        assert response.status == 200
    assert pool.num_connections == 1
