"""From an Authorization header to the stored API key, or to nothing."""

from datetime import UTC, datetime

import pytest

from tests.fakes import InMemoryTenancyRepository
from vmx.access.authentication import authenticate
from vmx.access.keys import issue_key
from vmx.tenancy.models import ApiKey, Role, Workspace

CREATED = datetime(2025, 1, 1, tzinfo=UTC)


def stored_key(tenancy: InMemoryTenancyRepository, revoked: bool = False) -> tuple[ApiKey, str]:
    new_key = issue_key()
    key = ApiKey(
        key_id=new_key.key_id,
        workspace_id="ws-acme",
        name="ci",
        role=Role.EDITOR,
        environment_ids=None,
        platform_admin=False,
        secret_hash=new_key.secret_hash,
        created_at=CREATED,
        created_by="bootstrap",
        revoked_at=CREATED if revoked else None,
    )
    tenancy.add_api_key(key)
    return key, new_key.token.get_secret_value()


@pytest.fixture
def tenancy() -> InMemoryTenancyRepository:
    repository = InMemoryTenancyRepository()
    repository.add_workspace(
        Workspace(workspace_id="ws-acme", name="Acme", description=None, created_at=CREATED, created_by="bootstrap")
    )
    return repository


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_a_stored_key_presented_as_a_bearer_token_authenticates(
    tenancy: InMemoryTenancyRepository, scheme: str
) -> None:
    key, token = stored_key(tenancy)

    assert authenticate(tenancy, f"{scheme} {token}") == key


def test_spaces_around_the_token_are_ignored(tenancy: InMemoryTenancyRepository) -> None:
    key, token = stored_key(tenancy)

    assert authenticate(tenancy, f"Bearer   {token}  ") == key


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Bearer garbage", "Basic dXNlcjpwYXNz", "Token vmx_x", "vmx_only"],
)
def test_a_missing_or_garbled_header_authenticates_nobody(
    tenancy: InMemoryTenancyRepository, header: str | None
) -> None:
    stored_key(tenancy)

    assert authenticate(tenancy, header) is None


def test_a_token_without_the_bearer_scheme_authenticates_nobody(tenancy: InMemoryTenancyRepository) -> None:
    _, token = stored_key(tenancy)

    assert authenticate(tenancy, token) is None
    assert authenticate(tenancy, f"Basic {token}") is None


def test_a_well_formed_token_of_an_unknown_key_authenticates_nobody(tenancy: InMemoryTenancyRepository) -> None:
    stored_key(tenancy)
    never_stored = issue_key().token.get_secret_value()

    assert authenticate(tenancy, f"Bearer {never_stored}") is None


def test_a_revoked_key_authenticates_nobody(tenancy: InMemoryTenancyRepository) -> None:
    _, token = stored_key(tenancy, revoked=True)

    assert authenticate(tenancy, f"Bearer {token}") is None


def test_a_known_key_id_with_the_wrong_secret_authenticates_nobody(tenancy: InMemoryTenancyRepository) -> None:
    key, _ = stored_key(tenancy)
    someone_elses_secret = issue_key().token.get_secret_value()[-43:]

    assert authenticate(tenancy, f"Bearer vmx_{key.key_id}_{someone_elses_secret}") is None


def test_a_key_whose_workspace_is_gone_no_longer_authenticates(tenancy: InMemoryTenancyRepository) -> None:
    _, token = stored_key(tenancy)
    tenancy.delete_workspace_if_empty("ws-acme")

    assert authenticate(tenancy, f"Bearer {token}") is None
