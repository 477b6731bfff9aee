"""Under the OpenAI base URL (an environment's path) every error reads as OpenAI's `{"error": {"message", "type",
"param", "code"}}`, whoever answers it: the gateway (a bad or missing key, a path no route has, a method the path
lacks) or the completions function (issue 11, item 10). Through the local stack's gateway and the real handlers."""

from typing import Any

import pytest

from local_stack.gateway import ApiGateway
from tests.functional.api import Api, ApiResponse
from tests.functional.conftest import Tenant

OPENAI_FIELDS = {"message", "type", "param", "code"}
OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    415: "invalid_request_error",
}


def openai_error(response: ApiResponse) -> dict[str, Any]:
    """The error, having checked it is OpenAI's shape: the gateway's own errors may add our REST `details`."""
    assert response.headers["content-type"] == "application/json"
    assert set(response.body) == {"error"}
    error: dict[str, Any] = response.error
    assert OPENAI_FIELDS <= set(error) <= OPENAI_FIELDS | {"details"}, error
    assert isinstance(error["message"], str) and error["message"]
    assert error["type"] == OPENAI_TYPES[response.status]
    assert error["param"] is None or isinstance(error["param"], str)
    assert isinstance(error["code"], str)
    return error


def base_url(tenant: Tenant) -> str:
    return f"{tenant.workspace_path}/environments/{tenant.environment_id}"


CHAT = {"model": "missing/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("token", ["vmx_not-a-key", None], ids=["bad key", "no key"])
@pytest.mark.parametrize(("method", "route"), [("POST", "/chat/completions"), ("GET", "/models")])
def test_a_refused_key_is_an_openai_authentication_error(
    tenant: Tenant, token: str | None, method: str, route: str
) -> None:
    response = tenant.api.as_key(token).request(method, base_url(tenant) + route, CHAT if method == "POST" else None)

    assert response.status == 401
    error = openai_error(response)
    assert (error["code"], error["message"]) == ("unauthorized", "Unauthorized")


@pytest.mark.parametrize("route", ["/embeddings", "/models/gpt-4o/extra", "/chat/completions/1", "/responses"])
def test_a_path_no_route_has_under_the_base_url_is_an_openai_404(tenant: Tenant, route: str) -> None:
    response = tenant.api.post(base_url(tenant) + route, CHAT)

    assert response.status == 404
    assert openai_error(response)["code"] == "not_found"


@pytest.mark.parametrize(
    ("method", "route", "allowed"),
    [("GET", "/chat/completions", "POST"), ("PUT", "/chat/completions", "POST"), ("POST", "/models", "GET")],
)
def test_a_method_a_route_lacks_is_an_openai_405_naming_its_methods(
    tenant: Tenant, method: str, route: str, allowed: str
) -> None:
    response = tenant.api.request(method, base_url(tenant) + route, CHAT)

    assert response.status == 405
    assert response.headers["allow"] == allowed
    assert openai_error(response)["code"] == "method_not_allowed"


def test_the_functions_refusals_are_openai_errors_exactly(tenant: Tenant) -> None:
    completions = base_url(tenant) + "/chat/completions"
    answers = [
        tenant.api.post(completions, {"messages": []}),
        tenant.api.post(completions, raw=b"{not json"),
        tenant.api.post(completions, raw=b"{}", headers={"Content-Type": "text/plain"}),
    ]

    assert [answer.status for answer in answers] == [400, 400, 415]
    for answer in answers:
        assert set(openai_error(answer)) == OPENAI_FIELDS


def test_the_rest_routes_keep_their_shape_where_the_gateway_answers_for_both(
    tenant: Tenant, gateway: ApiGateway
) -> None:
    """The gateway's own errors read as our REST shape too: code, message and details."""
    refused = Api(gateway, "vmx_not-a-key").get(tenant.connections_path)
    wrong_method = tenant.api.request("PUT", tenant.connections_path, {})

    assert (refused.status, wrong_method.status) == (401, 405)
    for answer in (refused, wrong_method):
        assert answer.error["details"] == []
        assert isinstance(answer.error["code"], str) and isinstance(answer.error["message"], str)
    assert wrong_method.headers["allow"] == "GET, POST"
