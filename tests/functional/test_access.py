"""Authentication (401) and authorization (403) across routes, and the API key lifecycle."""

import uuid

import pytest

from tests.functional.conftest import Tenant
from tests.functional.test_connections_api import OPENAI_SEED
from vmx.tenancy.models import Role


def test_missing_malformed_unknown_and_revoked_keys_are_401(tenant: Tenant) -> None:
    created = tenant.api.post(f"{tenant.workspace_path}/api-keys", {"name": "temp", "role": "viewer"})
    token = created.body["apiKey"]
    revoke = tenant.api.delete(f"{tenant.workspace_path}/api-keys/{created.body['keyId']}")
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")

    responses = {
        "missing": tenant.api.as_key(None).get(tenant.connections_path),
        "not bearer": tenant.api.as_key(None).get(tenant.connections_path, headers={"Authorization": f"Basic {token}"}),
        "garbage": tenant.api.as_key("nonsense").get(tenant.connections_path),
        "unknown": tenant.api.as_key(f"vmx_{uuid.uuid4()}_{'A' * 43}").get(tenant.connections_path),
        "wrong secret": tenant.api.as_key(forged).get(tenant.connections_path),
        "revoked": tenant.api.as_key(token).get(tenant.connections_path),
    }

    assert revoke.status == 204
    assert {name: response.status for name, response in responses.items()} == dict.fromkeys(responses, 401)
    assert all(response.error["code"] == "unauthorized" for response in responses.values())


def test_keys_are_scoped_to_their_workspace(tenant: Tenant, platform_admin: object) -> None:
    other_workspace = f"/api/v1/workspaces/{uuid.uuid4()}"

    response = tenant.api.get(f"{other_workspace}/environments")

    assert response.status == 403
    assert tenant.workspace_id in response.error["message"]


@pytest.mark.parametrize(
    ("role", "can_read", "can_write", "can_administer"),
    [
        (Role.ADMIN, True, True, True),
        (Role.EDITOR, True, True, False),
        (Role.VIEWER, True, False, False),
        (Role.GATEWAY, False, False, False),
    ],
)
def test_roles_decide_what_a_key_may_do(
    tenant: Tenant, role: Role, can_read: bool, can_write: bool, can_administer: bool
) -> None:
    api = tenant.as_role(role)

    read = api.get(tenant.connections_path)
    write = api.post(tenant.connections_path, OPENAI_SEED)
    administer = api.post(f"{tenant.workspace_path}/environments", {"name": f"env for {role}"})

    assert read.status == (200 if can_read else 403)
    assert write.status == (201 if can_write else 403)
    assert administer.status == (201 if can_administer else 403)
    for response in (read, write, administer):
        if response.status == 403:
            assert response.error["code"] == "forbidden"
            assert f"'{role}'" in response.error["message"]


def test_environment_limited_keys_stay_in_their_environments(tenant: Tenant) -> None:
    staging = tenant.new_environment("staging")
    api = tenant.as_role(Role.EDITOR, [tenant.environment_id])

    own = api.post(tenant.connections_path, OPENAI_SEED)
    other = api.post(f"{tenant.workspace_path}/environments/{staging}/ai-connections", OPENAI_SEED)
    listed = api.get(f"{tenant.workspace_path}/environments")

    assert own.status == 201
    assert other.status == 403
    assert staging in other.error["message"]
    assert [item["environmentId"] for item in listed.body["items"]] == [tenant.environment_id]


def test_api_keys_are_shown_once_listed_without_secrets_and_revocable(tenant: Tenant) -> None:
    keys = f"{tenant.workspace_path}/api-keys"

    created = tenant.api.post(keys, {"name": "ci", "role": "editor", "environmentIds": [tenant.environment_id]})
    listed = tenant.api.get(keys)
    fetched = tenant.api.get(f"{keys}/{created.body['keyId']}")
    revoked = tenant.api.delete(f"{keys}/{created.body['keyId']}")
    after = tenant.api.get(f"{keys}/{created.body['keyId']}")

    assert created.status == 201
    token = created.body["apiKey"]
    assert token.startswith("vmx_") and len(token) >= 4 + 43
    assert created.body["environmentIds"] == [tenant.environment_id]
    assert token not in listed.text and token not in fetched.text
    assert created.body["keyId"] in [item["keyId"] for item in listed.body["items"]]
    assert "apiKey" not in fetched.body and "secretHash" not in fetched.body
    assert revoked.status == 204
    assert after.body["revokedAt"] is not None


def test_api_key_requests_are_validated(tenant: Tenant) -> None:
    keys = f"{tenant.workspace_path}/api-keys"

    bad_role = tenant.api.post(keys, {"name": "x", "role": "owner"})
    unknown_environment = tenant.api.post(keys, {"name": "x", "role": "viewer", "environmentIds": [str(uuid.uuid4())]})
    escalation = tenant.api.post(keys, {"name": "x", "role": "admin", "platformAdmin": True})

    assert (bad_role.status, bad_role.error["details"][0]["field"]) == (400, "role")
    assert unknown_environment.status == 404
    assert escalation.status == 403
    assert "platform-admin" in escalation.error["message"]


def test_only_platform_admins_create_and_list_every_workspace(tenant: Tenant, platform_admin: object) -> None:
    from tests.functional.api import Api

    assert isinstance(platform_admin, Api)
    refused = tenant.api.post("/api/v1/workspaces", {"name": "Another"})
    created = platform_admin.post("/api/v1/workspaces", {"name": "Another"})
    everything = platform_admin.get("/api/v1/workspaces?limit=100")
    own_only = tenant.api.get("/api/v1/workspaces")

    assert refused.status == 403
    assert created.status == 201
    assert created.body["workspaceId"] in [item["workspaceId"] for item in everything.body["items"]]
    assert [item["workspaceId"] for item in own_only.body["items"]] == [tenant.workspace_id]
