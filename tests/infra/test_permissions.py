"""Each function role allows exactly what its spec asks for, and nothing else."""

import pytest

from infra.provider_access import CUSTOMER_ROLES
from infra.system import (
    AUTHORIZER,
    BEDROCK_QUOTAS,
    CAPACITY_TABLE,
    COMPLETIONS,
    CONNECTION_REMAINS,
    CONNECTIONS,
    CONNECTIONS_TABLE,
    DISCOVERY,
    EVENT_OUTBOX,
    EVENT_QUEUES,
    FUNCTIONS,
    TABLES,
    TENANCY,
    TENANCY_TABLE,
    USAGE,
    USAGE_TABLE,
    WORK_QUEUES,
    Function,
)
from tests.infra.synthesized import Synthesized

TABLES_BY_ID = {table.logical_id: table for table in TABLES}
TRACING = {("xray:PutTraceSegments", "*"), ("xray:PutTelemetryRecords", "*")}
# What Lambda's SQS event source needs of the consumer's role, on its queue alone.
CONSUME_MESSAGES = {
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
}


def dynamodb_grants(synthesized: Synthesized, function_name: str) -> dict[str, set[str]]:
    """The DynamoDB actions the function's role allows, by resource: a table, or `Table/index/name`."""
    grants: dict[str, set[str]] = {}
    for action, resource in synthesized.grants(function_name):
        if action.startswith("dynamodb:"):
            grants.setdefault(resource, set()).add(action)
    return grants


def expected_dynamodb_grants(spec: Function) -> dict[str, set[str]]:
    """The spec's actions on each table, exactly, and Query on the table's indexes where Query is granted."""
    grants = {table_id: set(actions) for table_id, actions in spec.tables.items()}
    for table_id, actions in spec.tables.items():
        if "dynamodb:Query" in actions:
            grants |= {f"{table_id}/index/{index.name}": {"dynamodb:Query"} for index in TABLES_BY_ID[table_id].indexes}
    return grants


def expected_grants(synthesized: Synthesized, spec: Function) -> set[tuple[str, str]]:
    function = synthesized.stack.functions[spec.name]
    own_logs = synthesized.logical_id(function.log_group)
    key = synthesized.logical_id(synthesized.stack.credentials_key.key)
    grants = {("logs:CreateLogStream", own_logs), ("logs:PutLogEvents", own_logs)} | TRACING
    grants |= {(action, resource) for resource, actions in expected_dynamodb_grants(spec).items() for action in actions}
    grants |= {(action, key) for action in spec.kms_actions}
    if spec.assumes_provider_roles:
        grants.add(("sts:AssumeRole", CUSTOMER_ROLES))
    if spec.publishes_events:
        grants.add(("events:PutEvents", synthesized.logical_id(synthesized.stack.events.bus)))
    for queue in EVENT_QUEUES:
        if queue.consumer == spec.name:
            queue_id = synthesized.logical_id(synthesized.stack.event_queues[queue.name].queue)
            grants |= {(action, queue_id) for action in CONSUME_MESSAGES}
    for work in WORK_QUEUES:
        queue_id = synthesized.logical_id(synthesized.stack.work_queues[work.name].queue)
        if work.consumer == spec.name:
            grants |= {(action, queue_id) for action in CONSUME_MESSAGES}
        if spec.name in work.senders:
            grants.add(("sqs:SendMessage", queue_id))
    return grants


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda spec: spec.name)
def test_each_role_allows_exactly_what_the_spec_asks_for(synthesized: Synthesized, spec: Function) -> None:
    assert synthesized.grants(spec.name) == expected_grants(synthesized, spec)


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda spec: spec.name)
def test_each_role_is_its_own_and_has_no_managed_policy(synthesized: Synthesized, spec: Function) -> None:
    role_id = synthesized.logical_id(synthesized.stack.functions[spec.name].role)

    assert synthesized.properties(synthesized.function_id(spec.name))["Role"] == {"Fn::GetAtt": [role_id, "Arn"]}
    assert "ManagedPolicyArns" not in synthesized.properties(role_id)


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda spec: spec.name)
def test_only_tracing_uses_a_wildcard_resource(synthesized: Synthesized, spec: Function) -> None:
    """The one acknowledged AwsSolutions-IAM5 finding on function roles must stay the X-Ray statement."""
    assert {grant for grant in synthesized.grants(spec.name) if "*" in grant[1]} == TRACING | (
        {("sts:AssumeRole", CUSTOMER_ROLES)} if spec.assumes_provider_roles else set()
    )


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda spec: spec.name)
def test_each_role_has_exactly_the_dynamodb_actions_of_its_spec(synthesized: Synthesized, spec: Function) -> None:
    assert dynamodb_grants(synthesized, spec.name) == expected_dynamodb_grants(spec)


def test_the_authorizer_may_only_get_items_from_the_tenancy_table(synthesized: Synthesized) -> None:
    assert dynamodb_grants(synthesized, AUTHORIZER.name) == {TENANCY_TABLE.logical_id: {"dynamodb:GetItem"}}
    assert not any(action.startswith("kms:") for action, _ in synthesized.grants(AUTHORIZER.name))


def test_connections_cannot_create_delete_or_query_tenancy_items(synthesized: Synthesized) -> None:
    grants = dynamodb_grants(synthesized, CONNECTIONS.name)

    assert grants[TENANCY_TABLE.logical_id] == {"dynamodb:GetItem", "dynamodb:UpdateItem"}
    assert not any(resource.startswith(f"{TENANCY_TABLE.logical_id}/index/") for resource in grants)


def test_tenancy_may_only_query_and_delete_connections(synthesized: Synthesized) -> None:
    grants = dynamodb_grants(synthesized, TENANCY.name)

    assert grants[CONNECTIONS_TABLE.logical_id] == {"dynamodb:Query", "dynamodb:DeleteItem"}


def test_tenancy_has_no_access_to_the_credentials_key(synthesized: Synthesized) -> None:
    assert not any(action.startswith("kms:") for action, _ in synthesized.grants(TENANCY.name))


def test_connections_may_only_generate_data_keys_for_one_connection_context(synthesized: Synthesized) -> None:
    kms_statements = [
        statement
        for statement in synthesized.role_statements(CONNECTIONS.name)
        if str(statement["Action"]).startswith("kms:")
    ]

    assert len(kms_statements) == 1
    statement = kms_statements[0]
    assert statement["Action"] == "kms:GenerateDataKey"
    assert statement["Condition"] == {
        "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["workspaceId", "environmentId", "connectionId"]},
        "Null": {
            "kms:EncryptionContext:workspaceId": "false",
            "kms:EncryptionContext:environmentId": "false",
            "kms:EncryptionContext:connectionId": "false",
        },
    }
    assert ("kms:Decrypt", synthesized.logical_id(synthesized.stack.credentials_key.key)) not in synthesized.grants(
        CONNECTIONS.name
    )


def test_only_the_functions_that_publish_may_put_events_and_only_on_the_bus(synthesized: Synthesized) -> None:
    bus_id = synthesized.logical_id(synthesized.stack.events.bus)
    putting = {
        spec.name: {resource for action, resource in synthesized.grants(spec.name) if action.startswith("events:")}
        for spec in FUNCTIONS
    }

    assert {name for name, resources in putting.items() if resources} == {
        TENANCY.name,
        CONNECTIONS.name,
        EVENT_OUTBOX.name,
        COMPLETIONS.name,
        BEDROCK_QUOTAS.name,
    }
    assert all(resources <= {bus_id} for resources in putting.values())
    assert {
        action for spec in FUNCTIONS for action, _ in synthesized.grants(spec.name) if action.startswith("events:")
    } == {"events:PutEvents"}


def test_the_consumers_may_only_update_connections_or_write_usage(synthesized: Synthesized) -> None:
    assert dynamodb_grants(synthesized, DISCOVERY.name) == {
        CONNECTIONS_TABLE.logical_id: {"dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"}
    }
    assert dynamodb_grants(synthesized, USAGE.name) == {
        USAGE_TABLE.logical_id: {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"}
    }
    for consumer in (DISCOVERY, USAGE, CONNECTION_REMAINS):
        assert not any(
            action.startswith(("kms:", "sts:", "events:")) for action, _ in synthesized.grants(consumer.name)
        )


def test_connection_remains_may_only_find_and_delete_items_and_bury_connections(synthesized: Synthesized) -> None:
    grants = dynamodb_grants(synthesized, CONNECTION_REMAINS.name)

    assert grants[CAPACITY_TABLE.logical_id] == {"dynamodb:Query", "dynamodb:BatchWriteItem"}
    assert grants[USAGE_TABLE.logical_id] == {"dynamodb:Query", "dynamodb:PutItem", "dynamodb:BatchWriteItem"}
    assert grants[CONNECTIONS_TABLE.logical_id] == {"dynamodb:Query", "dynamodb:BatchWriteItem"}
    assert TENANCY_TABLE.logical_id not in grants


def test_each_consumer_reads_its_own_queue_only(synthesized: Synthesized) -> None:
    for queue in (*EVENT_QUEUES, *WORK_QUEUES):
        deliveries = synthesized.stack.work_queues if queue in WORK_QUEUES else synthesized.stack.event_queues
        queue_id = synthesized.logical_id(deliveries[queue.name].queue)
        readers = {
            spec.name
            for spec in FUNCTIONS
            if any(
                resource == queue_id and action in CONSUME_MESSAGES
                for action, resource in synthesized.grants(spec.name)
            )
        }
        assert readers == {queue.consumer}


def test_bedrock_quotas_scans_connections_and_decrypts_one_connection_at_a_time(synthesized: Synthesized) -> None:
    """It reads quotas with each connection's own role or keys; it never writes a connection itself."""
    assert dynamodb_grants(synthesized, BEDROCK_QUOTAS.name) == {CONNECTIONS_TABLE.logical_id: {"dynamodb:Scan"}}
    (kms_statement,) = [
        statement
        for statement in synthesized.role_statements(BEDROCK_QUOTAS.name)
        if str(statement["Action"]).startswith("kms:")
    ]
    assert kms_statement["Action"] == "kms:Decrypt"
    assert set(kms_statement["Condition"]["Null"]) == {
        "kms:EncryptionContext:workspaceId",
        "kms:EncryptionContext:environmentId",
        "kms:EncryptionContext:connectionId",
    }
    assert ("sts:AssumeRole", CUSTOMER_ROLES) in synthesized.grants(BEDROCK_QUOTAS.name)
