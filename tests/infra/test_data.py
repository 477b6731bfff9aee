"""The tables: exactly the keys and indexes of system.TABLES and of the pynamodb items, kept safe."""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import astuple
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_iam as iam
from pynamodb.models import Model

from infra.data import Data
from infra.system import CONNECTIONS_TABLE, TABLES, TENANCY_TABLE, Index, Table
from tests.infra.synthesized import Synthesized
from vmx.storage.items import connection_items, tenancy_items

# Which pynamodb item factory writes to which table.
ITEMS_BY_TABLE: dict[str, Callable[[str, str], Any]] = {
    TENANCY_TABLE.logical_id: tenancy_items,
    CONNECTIONS_TABLE.logical_id: connection_items,
}


def key_schema(elements: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    return {element["KeyType"]: element["AttributeName"] for element in elements}


def spec_keys(partition_key: str, sort_key: str) -> dict[str, str]:
    return {"HASH": partition_key, "RANGE": sort_key}


def template_indexes(properties: dict[str, Any]) -> dict[tuple[str, bool], dict[str, Any]]:
    """Indexes by (name, is local)."""
    return {
        (index["IndexName"], local): index
        for local, key in ((False, "GlobalSecondaryIndexes"), (True, "LocalSecondaryIndexes"))
        for index in properties.get(key, [])
    }


@pytest.mark.parametrize("spec", TABLES, ids=lambda spec: spec.logical_id)
def test_each_table_has_the_keys_and_indexes_of_its_spec(synthesized: Synthesized, spec: Table) -> None:
    properties = synthesized.properties(spec.logical_id)

    assert key_schema(properties["KeySchema"]) == spec_keys(spec.partition_key, spec.sort_key)
    indexes = template_indexes(properties)
    assert set(indexes) == {(index.name, index.local) for index in spec.indexes}
    for index in spec.indexes:
        assert key_schema(indexes[index.name, index.local]["KeySchema"]) == spec_keys(
            index.partition_key, index.sort_key
        )
        assert indexes[index.name, index.local]["Projection"] == {"ProjectionType": "ALL"}
    assert {definition["AttributeType"] for definition in properties["AttributeDefinitions"]} == {"S"}


@pytest.mark.parametrize("spec", TABLES, ids=lambda spec: spec.logical_id)
def test_each_table_is_on_demand_recoverable_encrypted_and_retained(synthesized: Synthesized, spec: Table) -> None:
    table = synthesized.resources[spec.logical_id]
    properties = table["Properties"]

    assert table["Type"] == "AWS::DynamoDB::Table"
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"] == {"SSEEnabled": True}
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"
    assert properties["DeletionProtectionEnabled"] is True


@pytest.mark.parametrize("spec", TABLES, ids=lambda spec: spec.logical_id)
def test_time_to_live_is_on_exactly_when_the_spec_names_an_attribute(synthesized: Synthesized, spec: Table) -> None:
    time_to_live = synthesized.properties(spec.logical_id).get("TimeToLiveSpecification")

    if spec.ttl_attribute is None:
        assert time_to_live is None
    else:
        assert time_to_live == {"AttributeName": spec.ttl_attribute, "Enabled": True}


# The capacity counters use the low-level client (see vmx.storage.capacity_store), so they have no items.
@pytest.mark.parametrize(
    "spec", [spec for spec in TABLES if spec.logical_id in ITEMS_BY_TABLE], ids=lambda spec: spec.logical_id
)
def test_the_pynamodb_items_match_the_table_they_are_stored_in(synthesized: Synthesized, spec: Table) -> None:
    properties = synthesized.properties(spec.logical_id)
    indexes = {name: index for (name, _), index in template_indexes(properties).items()}
    items: tuple[type[Model], ...] = astuple(ITEMS_BY_TABLE[spec.logical_id]("table", "eu-west-1"))

    for item in items:
        schema = item._get_schema()
        assert key_schema(schema["key_schema"]) == key_schema(properties["KeySchema"]), item.__name__
        for index in schema["global_secondary_indexes"] + schema["local_secondary_indexes"]:
            assert index["index_name"] in indexes, item.__name__
            template_index = indexes[index["index_name"]]
            assert key_schema(index["key_schema"]) == key_schema(template_index["KeySchema"])
            assert index["projection"] == template_index["Projection"]


def test_a_local_index_on_another_partition_key_is_refused() -> None:
    misdeclared = Table(
        logical_id="Misdeclared",
        env_var="MISDECLARED_TABLE_NAME",
        partition_key="pk",
        sort_key="sk",
        indexes=(Index(name="byOther", partition_key="other", sort_key="sk2", local=True),),
    )

    with pytest.raises(ValueError, match="shares the table's partition key"):
        Data(Stack(App(), "Scratch"), "Data", tables=(misdeclared,))


@pytest.mark.parametrize("actions", [(), ("dynamodb:GetItem", "kms:Decrypt")], ids=["none", "not-dynamodb"])
def test_a_grant_of_anything_but_dynamodb_actions_is_refused(actions: tuple[str, ...]) -> None:
    stack = Stack(App(), "Scratch")
    data = Data(stack, "Data", tables=(TENANCY_TABLE,))
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))

    with pytest.raises(ValueError, match="DynamoDB actions"):
        data.grant(role, TENANCY_TABLE.logical_id, actions)
