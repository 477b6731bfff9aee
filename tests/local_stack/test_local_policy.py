"""Evaluating a Lambda authorizer's policy and context as API Gateway does."""

from typing import Any

import pytest

from local_stack.gateway import AuthorizerConfigurationError, authorizer_context, is_allowed, method_arn

ARN = method_arn("GET", "/api/v1/workspaces/ws_1")
PREFIX = "arn:aws:execute-api:us-east-1:000000000000:local/local"


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def statement(effect: str, resource: str | list[str], action: str = "execute-api:Invoke") -> dict[str, Any]:
    return {"Effect": effect, "Action": action, "Resource": resource}


def test_an_allow_on_the_exact_arn_allows() -> None:
    assert is_allowed(policy(statement("Allow", ARN)), ARN)


def test_nothing_matching_denies() -> None:
    assert not is_allowed(policy(), ARN)
    assert not is_allowed(policy(statement("Allow", f"{PREFIX}/POST/*")), ARN)
    assert not is_allowed(policy(statement("Allow", ARN, action="execute-api:ManageConnections")), ARN)


def test_deny_wins_over_allow() -> None:
    document = policy(statement("Allow", f"{PREFIX}/*"), statement("Deny", f"{PREFIX}/GET/api/v1/*"))

    assert not is_allowed(document, ARN)
    assert is_allowed(document, method_arn("POST", "/api/v1/workspaces"))


@pytest.mark.parametrize(
    "resource",
    ["*", f"{PREFIX}/*", f"{PREFIX}/*/api/v1/workspaces/*", f"{PREFIX}/GET/api/v1/workspaces/ws_?"],
)
def test_wildcards_match_any_characters(resource: str) -> None:
    assert is_allowed(policy(statement("Allow", resource, action="execute-api:*")), ARN)


def test_a_single_statement_and_resource_lists_are_accepted() -> None:
    document = {"Statement": {"Effect": "Allow", "Action": ["*"], "Resource": ["arn:other", ARN]}}

    assert is_allowed(document, ARN)


def test_the_context_reaches_the_integration_as_strings_with_the_principal() -> None:
    result = {
        "principalId": "key_1",
        "policyDocument": policy(),
        "context": {"workspaceId": "ws_1", "limit": 5, "admin": True},
    }

    assert authorizer_context(result) == {
        "workspaceId": "ws_1",
        "limit": "5",
        "admin": "true",
        "principalId": "key_1",
    }


@pytest.mark.parametrize(
    "result",
    [
        None,
        {"policyDocument": {}},
        {"principalId": "p"},
        {"principalId": "p", "policyDocument": {}, "context": {"nested": {"a": 1}}},
    ],
)
def test_a_malformed_result_is_a_configuration_error(result: Any) -> None:
    with pytest.raises(AuthorizerConfigurationError):
        authorizer_context(result)
