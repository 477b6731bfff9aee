"""`python -m vmx.admin bootstrap` against a deployed stack (moto's CloudFormation) and its refusal to repeat."""

import dataclasses
import json
import os
import uuid

import boto3
import pytest

from infra.system import CONNECTIONS_TABLE, TENANCY_TABLE
from local_stack.emulator import create_table
from vmx import wiring
from vmx.admin import main
from vmx.settings import AuthorizerSettings
from vmx.tenancy.models import Role


def deploy_stack(name: str) -> dict[str, str]:
    """Fresh, empty tables and a stack whose outputs name them, as `cdk deploy` leaves it."""
    suffix = uuid.uuid4().hex[:8]
    dynamodb = boto3.client("dynamodb")
    tables = {
        f"{table.logical_id}Name": create_table(
            dynamodb, dataclasses.replace(table, logical_id=table.logical_id + suffix)
        )
        for table in (TENANCY_TABLE, CONNECTIONS_TABLE)
    }
    outputs = {
        **tables,
        "ApiUrl": "https://api.example.com/prod/",
        "EventBusName": "vmx-bootstrap-events",
        "EventOutboxQueueUrl": "https://sqs.us-east-1.amazonaws.com/000000000000/vmx-bootstrap-outbox",
    }
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))
    return outputs


def test_bootstrap_reads_the_stack_outputs_and_prints_a_working_admin_key(
    aws: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a deployed stack, and a shell that knows nothing of its tables
    outputs = deploy_stack("VmxAiConnectionsTest")
    for variable in ("TENANCY_TABLE_NAME", "CONNECTIONS_TABLE_NAME"):
        monkeypatch.delenv(variable)

    # When
    first = main(["bootstrap", "--stack-name", "VmxAiConnectionsTest"])
    printed = json.loads(capsys.readouterr().out)
    again = main(["bootstrap", "--stack-name", "VmxAiConnectionsTest"])

    # Then
    assert first == 0
    assert printed["baseUrl"] == "https://api.example.com/prod/"
    assert printed["apiKey"].startswith("vmx_")
    assert again == 1
    assert "already exist" in capsys.readouterr().err
    settings = AuthorizerSettings.from_environ({**os.environ, "TENANCY_TABLE_NAME": outputs["TenancyTableName"]})
    key = wiring.tenancy_repository(settings).get_api_key(printed["keyId"])
    assert key is not None
    assert (key.role, key.platform_admin, key.workspace_id) == (Role.ADMIN, True, printed["workspaceId"])


def test_bootstrap_names_a_stack_that_is_not_ours(aws: None) -> None:
    boto3.client("cloudformation").create_stack(
        StackName="SomethingElse", TemplateBody=json.dumps({"Resources": {"T": {"Type": "AWS::SNS::Topic"}}})
    )

    with pytest.raises(SystemExit, match="lacks the outputs"):
        main(["bootstrap", "--stack-name", "SomethingElse"])
