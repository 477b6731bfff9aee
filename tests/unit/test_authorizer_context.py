"""The authorizer's verdict, flattened into API Gateway's context and read back by the handlers."""

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmx.access.context import authorizer_context, principal_from_context
from vmx.access.policy import Principal
from vmx.errors import Unauthenticated
from vmx.tenancy.models import ApiKey, Role


def api_key(
    environment_ids: list[str] | None,
    role: Role = Role.EDITOR,
    platform_admin: bool = False,
    priority_class: str | None = None,
) -> ApiKey:
    return ApiKey(
        key_id="0b7c9f5e-3d1a-4c2b-9e8f-1a2b3c4d5e6f",
        workspace_id="9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a",
        name="ci",
        role=role,
        environment_ids=environment_ids,
        platform_admin=platform_admin,
        secret_hash="0" * 64,
        created_at=datetime(2025, 1, 1, tzinfo=UTC),
        created_by="bootstrap",
        priority_class=priority_class,
    )


api_keys = st.builds(
    api_key,
    environment_ids=st.one_of(st.none(), st.lists(st.uuids().map(str), max_size=5, unique=True)),
    role=st.sampled_from(Role),
    platform_admin=st.booleans(),
    priority_class=st.none() | st.from_regex(r"[a-z0-9][a-z0-9-]{0,31}", fullmatch=True),
)


@settings(max_examples=50, deadline=None)
@given(api_keys)
def test_a_key_survives_the_trip_through_the_context(key: ApiKey) -> None:
    context = authorizer_context(key)

    assert all(isinstance(value, str) for value in context.values())
    assert principal_from_context(context) == Principal(
        key_id=key.key_id,
        workspace_id=key.workspace_id,
        role=key.role,
        environment_ids=None if key.environment_ids is None else frozenset(key.environment_ids),
        platform_admin=key.platform_admin,
        priority_class=key.priority_class,
    )


def test_a_key_limited_to_no_environment_stays_limited() -> None:
    assert principal_from_context(authorizer_context(api_key(environment_ids=[]))).environment_ids == frozenset()


def test_an_unlimited_key_stays_unlimited() -> None:
    assert principal_from_context(authorizer_context(api_key(environment_ids=None))).environment_ids is None


@pytest.mark.parametrize("context", [None, {}, {"workspaceId": "ws", "role": "admin"}])
def test_without_the_authorizer_context_a_request_is_unauthenticated(context: dict[str, Any] | None) -> None:
    with pytest.raises(Unauthenticated):
        principal_from_context(context)
