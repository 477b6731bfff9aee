"""A fresh capacity table per test on moto, and a client that records the DynamoDB operations it sends."""

import dataclasses
import os
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from infra.system import CAPACITY_TABLE
from local_stack.emulator import create_table
from vmx.storage.capacity_store import DynamoCapacityCounters

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


@pytest.fixture
def capacity_table(aws: None) -> Iterator[str]:
    client = boto3.client("dynamodb")
    name = create_table(client, dataclasses.replace(CAPACITY_TABLE, logical_id=f"Capacity{uuid.uuid4().hex}"))
    yield name
    client.delete_table(TableName=name)


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


@pytest.fixture
def counters(capacity_table: str, dynamodb: "DynamoDBClient") -> DynamoCapacityCounters:
    return DynamoCapacityCounters(capacity_table, os.environ["AWS_REGION"], client=dynamodb)
