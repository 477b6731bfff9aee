"""templates/bedrock-connection-role.json, the role a Bedrock connection assumes (issue 13, item 3): it passes
cfn-lint, and its trust policy admits exactly the roles the stack outputs, only with the connection's externalId,
the one the gateway sends when it assumes the role."""

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from cfnlint.api import ManualArgs, lint_file

from infra.stack import BEDROCK_ROLE_ASSUMERS, PROJECT_ROOT
from infra.system import FUNCTIONS
from tests.infra.synthesized import Synthesized
from vmx.completions.aws_access import AssumedRoles, credentials_for
from vmx.completions.bedrock import access_of
from vmx.providers.config import BedrockConfig

TEMPLATE_PATH = PROJECT_ROOT / "templates" / "bedrock-connection-role.json"
GATEWAY = "arn:aws:iam::111122223333:role/VmxAiConnections-CompletionsRole"
QUOTAS = "arn:aws:iam::111122223333:role/VmxAiConnections-BedrockQuotasRole"
EXTERNAL_ID = "vmx-7f3a9c2e"
ROLE = "arn:aws:iam::444455556666:role/vmx-bedrock-connection"


def template() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(TEMPLATE_PATH.read_text(encoding="utf-8"))
    return loaded


def resolved(value: Any, parameters: dict[str, Any], conditions: dict[str, bool]) -> Any:
    """The template's value with its parameters given: Ref, Fn::If and AWS::NoValue, what the trust policy uses."""
    if isinstance(value, list):
        items = [resolved(item, parameters, conditions) for item in value]
        return [item for item in items if item is not NO_VALUE]
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            return NO_VALUE if value["Ref"] == "AWS::NoValue" else parameters[value["Ref"]]
        if set(value) == {"Fn::If"}:
            condition, when_true, when_false = value["Fn::If"]
            return resolved(when_true if conditions[condition] else when_false, parameters, conditions)
        return {key: resolved(item, parameters, conditions) for key, item in value.items()}
    return value


NO_VALUE = object()


def trust_policy(completions: str, quotas: str, external_id: str) -> dict[str, Any]:
    parameters = {"CompletionsRoleArn": completions, "BedrockQuotasRoleArn": quotas, "ExternalId": external_id}
    conditions = {"QuotasRoleGiven": quotas != ""}
    document = template()["Resources"]["ConnectionRole"]["Properties"]["AssumeRolePolicyDocument"]
    policy: dict[str, Any] = resolved(document, parameters, conditions)
    return policy


def may_assume(policy: dict[str, Any], caller: str, request: dict[str, Any]) -> bool:
    """IAM's answer for sts:AssumeRole by `caller` with `request`'s parameters, for the Allow statements used here."""
    for statement in policy["Statement"]:
        principals = statement["Principal"]["AWS"]
        if statement["Effect"] != "Allow" or statement["Action"] != "sts:AssumeRole":
            continue
        if caller not in (principals if isinstance(principals, list) else [principals]):
            continue
        wanted = statement.get("Condition", {}).get("StringEquals", {}).get("sts:ExternalId")
        if wanted is None or request.get("ExternalId") == wanted:
            return True
    return False


def test_cfn_lint_finds_nothing() -> None:
    matches = lint_file(Path(TEMPLATE_PATH), config=ManualArgs(regions=["us-east-1", "eu-west-1"]))

    assert [str(match) for match in matches] == []


def test_the_stack_outputs_the_roles_of_every_function_that_assumes_connection_roles(synthesized: Synthesized) -> None:
    outputs = synthesized.template.to_json()["Outputs"]

    assert set(BEDROCK_ROLE_ASSUMERS) == {function.name for function in FUNCTIONS if function.assumes_provider_roles}
    for function, output in BEDROCK_ROLE_ASSUMERS.items():
        role_id = synthesized.logical_id(synthesized.stack.functions[function].role)
        assert outputs[output]["Value"] == {"Fn::GetAtt": [role_id, "Arn"]}


@pytest.mark.parametrize(
    ("caller", "external_id", "admitted"),
    [
        (GATEWAY, EXTERNAL_ID, True),
        (QUOTAS, EXTERNAL_ID, True),
        (GATEWAY, "vmx-someone-else", False),
        (GATEWAY, None, False),
        ("arn:aws:iam::999988887777:role/Other", EXTERNAL_ID, False),
    ],
)
def test_only_the_stacks_roles_with_the_external_id_may_assume_it(
    caller: str, external_id: str | None, admitted: bool
) -> None:
    request = {} if external_id is None else {"ExternalId": external_id}

    assert may_assume(trust_policy(GATEWAY, QUOTAS, EXTERNAL_ID), caller, request) is admitted


def test_without_the_quotas_role_only_the_completions_role_is_trusted() -> None:
    policy = trust_policy(GATEWAY, "", EXTERNAL_ID)

    assert policy["Statement"][0]["Principal"]["AWS"] == [GATEWAY]
    assert not may_assume(policy, QUOTAS, {"ExternalId": EXTERNAL_ID})


def test_the_gateway_assumes_the_role_with_what_the_trust_policy_asks_for() -> None:
    """A connection made from the template's outputs: its AssumeRole request is the one the policy admits."""
    config = BedrockConfig.model_validate({"region": "us-east-1", "iamRoleArn": ROLE, "externalId": EXTERNAL_ID})
    sts = boto3.client("sts", region_name="us-east-1")
    sent: list[dict[str, Any]] = []
    with Stubber(sts) as stubbed:
        stubbed.add_response(
            "assume_role",
            {
                "Credentials": {
                    "AccessKeyId": "ASIAEXAMPLEEXAMPLE00",
                    "SecretAccessKey": "secret-example-secret-example-secret-0000",
                    "SessionToken": "token-example",
                    "Expiration": "2030-01-01T00:00:00Z",
                }
            },
        )
        sts.meta.events.register("provide-client-params.sts.AssumeRole", lambda params, **_: sent.append(params))
        credentials_for(access_of(config), AssumedRoles(sts))

    (request,) = sent
    assert request["RoleArn"] == ROLE
    assert may_assume(trust_policy(GATEWAY, QUOTAS, EXTERNAL_ID), GATEWAY, request)


def test_its_permissions_are_the_bedrock_calls_the_gateway_makes() -> None:
    statements = template()["Resources"]["ConnectionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    actions = {
        action
        for statement in statements
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }

    # Converse needs InvokeModel and ConverseStream InvokeModelWithResponseStream; guardrails ApplyGuardrail
    assert {
        "bedrock:InvokeModel",
        "bedrock:InvokeModelWithResponseStream",
        "bedrock:ApplyGuardrail",
        "bedrock:GetFoundationModel",
        "servicequotas:ListServiceQuotas",
    } <= actions
    invoke = next(statement for statement in statements if statement["Sid"] == "ConverseAndInvoke")
    assert invoke["Resource"] == {"Ref": "ModelArns"}
