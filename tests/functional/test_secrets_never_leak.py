"""A canary secret goes in through every route, failing requests included, and must never come out:
not in a response body or header, and not in any log line."""

import logging
import uuid

import pytest

from tests.functional.api import Api
from tests.functional.conftest import Tenant
from vmx.tenancy.models import Role

CANARY = "sk-CANARY-" + uuid.uuid4().hex


def drive_every_route(tenant: Tenant, platform_admin: Api) -> None:
    api, connections = tenant.api, tenant.connections_path
    bedrock = {
        "name": "bedrock canary",
        "provider": "aws-bedrock",
        "config": {"region": "us-east-1", "accessKeyId": CANARY, "secretAccessKey": CANARY, "sessionToken": CANARY},
    }
    created = api.post(connections, {"name": "canary", "provider": "openai", "config": {"apiKey": CANARY}}).body
    api.post(connections, bedrock)
    path = f"{connections}/{created['connectionId']}"
    # failures that carry the secret in the request
    api.post(connections, {"name": "canary", "provider": "openai", "config": {"apiKey": CANARY}})
    api.post(connections, {"name": "bad", "provider": "openai", "config": {"apiKey": CANARY, "oops": CANARY}})
    api.post(connections, {"name": "bad", "provider": "openai", "config": {"apiKey": [CANARY]}})
    api.post(connections, {"name": "bad", "provider": "google", "config": {"apiKey": CANARY}})
    api.post(connections, {"name": "bad", "provider": "aws-bedrock", "config": {"region": "x", "accessKeyId": CANARY}})
    api.post(connections, {"name": CANARY + "/", "provider": "openai", "config": {"apiKey": CANARY}})
    api.post(connections, raw=('{"config": {"apiKey": "' + CANARY).encode())
    api.post(connections, {"config": {"apiKey": CANARY}, "padding": "x" * 70_000})
    api.as_key(CANARY).get(connections)
    api.as_key(None).post(connections, {"name": "x", "provider": "openai", "config": {"apiKey": CANARY}})
    tenant.as_role(Role.VIEWER).post(connections, {"name": "x", "provider": "openai", "config": {"apiKey": CANARY}})
    # successful reads and writes
    api.get(connections)
    api.get(path)
    api.patch(path, {"config": {"apiKey": CANARY + "-rotated"}})
    api.patch(path, {"config": {"baseUrl": "https://proxy.example.com"}})
    api.patch(path, {"config": {"apiKey": CANARY, "baseUrl": "http://evil.example.com"}})
    api.patch(path, {"provider": "anthropic", "config": {"apiKey": CANARY}}, headers={"If-Match": '"999"'})
    api.get("/api/v1/providers")
    api.get(f"{tenant.workspace_path}/api-keys")
    api.delete(f"{tenant.workspace_path}/environments/{tenant.environment_id}")
    api.delete(path)
    platform_admin.delete(f"{tenant.workspace_path}?force=true")


def test_the_canary_never_leaves_the_system(
    tenant: Tenant, platform_admin: Api, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api = tenant.api
    start = len(api.captured)

    drive_every_route(tenant, platform_admin)

    responses = api.captured[start:]
    assert len(responses) > 20
    statuses = {response.status for response in responses}
    assert {200, 201, 204, 400, 401, 403, 409, 412}.issubset(statuses)
    for response in responses:
        assert CANARY not in response.text
        assert all(CANARY not in value for value in response.headers.values())
    output = capfd.readouterr()
    assert CANARY not in output.out
    assert CANARY not in output.err
    assert all(CANARY not in record.getMessage() and CANARY not in str(record.__dict__) for record in caplog.records)
