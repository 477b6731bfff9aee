"""Each function role allows exactly what its spec asks for, and nothing else."""

import pytest

from infra.system import AUTHORIZER, CONNECTIONS, FUNCTIONS, TABLES, TENANCY, Access, Function
from tests.infra.synthesized import Synthesized

TABLES_BY_ID = {table.logical_id: table for table in TABLES}
READ = {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"}
WRITE = {
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:BatchWriteItem",
}
TABLE_ACTIONS = {Access.READ: READ, Access.READ_WRITE: READ | WRITE}
TRACING = {("xray:PutTraceSegments", "*"), ("xray:PutTelemetryRecords", "*")}


def expected_grants(synthesized: Synthesized, spec: Function) -> set[tuple[str, str]]:
    function = synthesized.stack.functions[spec.name]
    own_logs = synthesized.logical_id(function.log_group)
    key = synthesized.logical_id(synthesized.stack.credentials_key.key)
    grants = {("logs:CreateLogStream", own_logs), ("logs:PutLogEvents", own_logs)} | TRACING
    for table_id, access in spec.tables.items():
        grants |= {(action, table_id) for action in TABLE_ACTIONS[access]}
        grants |= {("dynamodb:Query", f"{table_id}/index/{index.name}") for index in TABLES_BY_ID[table_id].indexes}
    grants |= {(action, key) for action in spec.kms_actions}
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
    assert {grant for grant in synthesized.grants(spec.name) if grant[1] == "*"} == TRACING


def test_the_authorizer_can_only_read(synthesized: Synthesized) -> None:
    actions = {action for action, _ in synthesized.grants(AUTHORIZER.name)}

    assert "dynamodb:GetItem" in actions
    assert not actions & WRITE
    assert not any(action.startswith("kms:") for action in actions)


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
