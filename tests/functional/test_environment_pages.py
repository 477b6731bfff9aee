"""The environments of a workspace list in pages, newest first, as the other lists do; a bad `limit` or
`nextToken` is a 400 (item 14 of issue 11)."""

import pytest

from tests.functional.api import Api
from tests.functional.conftest import Tenant
from vmx.tenancy.models import EnvironmentCreate, Role, WorkspaceCreate


def test_environments_list_in_pages_newest_first(tenant: Tenant) -> None:
    environments = f"{tenant.workspace_path}/environments"
    for name in ("staging", "qa", "production"):
        assert tenant.api.post(environments, {"name": name}).status == 201

    first = tenant.api.get(f"{environments}?limit=3").body
    second = tenant.api.get(f"{environments}?limit=3&nextToken={first['nextToken']}").body
    whole = tenant.api.get(environments).body

    assert [item["name"] for item in first["items"]] == ["production", "qa", "staging"]
    assert [item["name"] for item in second["items"]] == ["development"]
    assert second["nextToken"] is None
    assert [item["name"] for item in whole["items"]] == ["production", "qa", "staging", "development"]
    assert whole["nextToken"] is None


def test_a_page_continues_after_its_last_environment_even_when_that_one_is_deleted(tenant: Tenant) -> None:
    environments = f"{tenant.workspace_path}/environments"
    staging = tenant.api.post(environments, {"name": "staging"}).body
    tenant.api.post(environments, {"name": "qa"})

    first = tenant.api.get(f"{environments}?limit=2").body
    tenant.api.delete(f"{environments}/{staging['environmentId']}")
    rest = tenant.api.get(f"{environments}?limit=2&nextToken={first['nextToken']}").body

    assert [item["name"] for item in first["items"]] == ["qa", "staging"]
    assert [item["name"] for item in rest["items"]] == ["development"]


def test_an_environment_limited_key_pages_through_its_own_environments_only(tenant: Tenant) -> None:
    staging = tenant.new_environment("staging")
    tenant.new_environment("qa")
    limited = tenant.as_role(Role.VIEWER, [staging, tenant.environment_id])
    environments = f"{tenant.workspace_path}/environments"

    first = limited.get(f"{environments}?limit=1").body
    second = limited.get(f"{environments}?limit=1&nextToken={first['nextToken']}").body

    assert [item["name"] for item in first["items"] + second["items"]] == ["staging", "development"]
    assert second["nextToken"] is None


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=-1", "limit=ten", "limit=1.5", "limit="])
def test_a_bad_limit_is_refused(tenant: Tenant, query: str) -> None:
    response = tenant.api.get(f"{tenant.workspace_path}/environments?{query}")

    assert response.status == 400, response.text
    assert response.error["details"][0]["field"] == "limit"


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",
        "eyJ9",
        # well formed, for another list: a workspace page's key
        "eyJwayI6eyJTIjoiV1MjMSJ9LCJzayI6eyJTIjoiV09SS1NQQUNFIn19",
        "x" * 4097,
    ],
)
def test_a_bad_next_token_is_refused(tenant: Tenant, token: str) -> None:
    response = tenant.api.get(f"{tenant.workspace_path}/environments?nextToken={token}")

    assert response.status == 400, response.text
    assert response.error["details"][0]["field"] == "nextToken"


def test_a_token_of_another_workspaces_environments_does_not_continue_this_one(
    tenant: Tenant, platform_admin: Api
) -> None:
    tenant.new_environment("staging")
    token = platform_admin.get(f"{tenant.workspace_path}/environments?limit=1").body["nextToken"]
    other = tenant.service.add_workspace(WorkspaceCreate(name="Other"), created_by="test")
    tenant.service.add_environment(other.workspace_id, EnvironmentCreate(name="a"), created_by="test")

    response = platform_admin.get(f"/api/v1/workspaces/{other.workspace_id}/environments?nextToken={token}")

    assert token is not None
    assert response.status == 400, response.text
    assert response.error["details"][0]["field"] == "nextToken"
