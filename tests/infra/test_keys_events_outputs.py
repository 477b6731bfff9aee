"""The credentials key, the event bus, and the outputs the bootstrap command reads by name."""

from typing import Any

from infra.system import TABLES
from tests.infra.synthesized import Synthesized


def only(synthesized: Synthesized, resource_type: str) -> tuple[str, dict[str, Any]]:
    ((logical_id, resource),) = synthesized.of_type(resource_type).items()
    return logical_id, resource


def test_the_credentials_key_rotates_and_outlives_the_stack(synthesized: Synthesized) -> None:
    key_id = synthesized.logical_id(synthesized.stack.credentials_key.key)
    key = synthesized.resources[key_id]
    _, alias = only(synthesized, "AWS::KMS::Alias")

    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == key["UpdateReplacePolicy"] == "Retain"
    assert alias["Properties"]["TargetKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert alias["Properties"]["AliasName"] == f"alias/{synthesized.stack.stack_name}/credentials"


def test_the_event_bus_is_named_after_the_stack(synthesized: Synthesized) -> None:
    _, bus = only(synthesized, "AWS::Events::EventBus")

    assert bus["Properties"]["Name"] == f"{synthesized.stack.stack_name}-events"


def test_the_outputs_the_bootstrap_reads_exist(synthesized: Synthesized) -> None:
    outputs = synthesized.template.to_json()["Outputs"]
    key_id = synthesized.logical_id(synthesized.stack.credentials_key.key)
    bus_id, _ = only(synthesized, "AWS::Events::EventBus")

    assert {"ApiUrl", "TenancyTableName", "ConnectionsTableName", "CredentialsKeyArn", "EventBusName"} <= set(outputs)
    for table in TABLES:
        assert outputs[f"{table.logical_id}Name"]["Value"] == {"Ref": table.logical_id}
    assert outputs["CredentialsKeyArn"]["Value"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert outputs["EventBusName"]["Value"] == {"Ref": bus_id}
    assert outputs["ApiUrl"]["Value"]["Fn::Join"][1][0] == "https://"
