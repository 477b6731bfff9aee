"""Who may do what, and the reasons given when not."""

import pytest

from tests.unit.builders import principal
from vmx.access.policy import Action, authorize, require_platform_admin
from vmx.errors import Forbidden
from vmx.tenancy.models import Role

WORKSPACE = "ws-acme"
OTHER_WORKSPACE = "ws-globex"
PRODUCTION, STAGING = "env-production", "env-staging"

# The role matrix as documented: admin everything; editor manages and uses connections and reads;
# viewer reads; gateway only sends completions.
ALLOWED = {
    Role.ADMIN: {Action.READ, Action.MANAGE_CONNECTIONS, Action.ADMINISTER, Action.USE_CONNECTIONS},
    Role.EDITOR: {Action.READ, Action.MANAGE_CONNECTIONS, Action.USE_CONNECTIONS},
    Role.VIEWER: {Action.READ},
    Role.GATEWAY: {Action.USE_CONNECTIONS},
}
MATRIX = [(role, action, action in ALLOWED[role]) for role in Role for action in Action]


@pytest.mark.parametrize(("role", "action", "allowed"), MATRIX)
@pytest.mark.parametrize("environment_id", [None, PRODUCTION])
def test_each_role_may_do_what_the_matrix_says_in_its_workspace(
    role: Role, action: Action, allowed: bool, environment_id: str | None
) -> None:
    key = principal(WORKSPACE, role, key_id="key-1")

    if allowed:
        authorize(key, action, WORKSPACE, environment_id)
    else:
        with pytest.raises(Forbidden) as caught:
            authorize(key, action, WORKSPACE, environment_id)
        assert caught.value.message == f"API key key-1 has role '{role.value}', which cannot {action.value}"


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("action", list(Action))
def test_no_role_reaches_another_workspace(role: Role, action: Action) -> None:
    key = principal(WORKSPACE, role, key_id="key-1")

    with pytest.raises(Forbidden) as caught:
        authorize(key, action, OTHER_WORKSPACE, PRODUCTION)

    assert "key-1" in caught.value.message
    assert WORKSPACE in caught.value.message
    assert OTHER_WORKSPACE in caught.value.message


@pytest.mark.parametrize("action", [Action.READ, Action.MANAGE_CONNECTIONS, Action.USE_CONNECTIONS])
def test_an_environment_limited_key_works_in_its_environments(action: Action) -> None:
    key = principal(WORKSPACE, Role.EDITOR, environment_ids={PRODUCTION, STAGING})

    authorize(key, action, WORKSPACE, PRODUCTION)
    authorize(key, action, WORKSPACE, STAGING)


@pytest.mark.parametrize("action", [Action.READ, Action.MANAGE_CONNECTIONS, Action.USE_CONNECTIONS])
def test_an_environment_limited_key_is_refused_other_environments_by_name(action: Action) -> None:
    key = principal(WORKSPACE, Role.EDITOR, environment_ids={STAGING}, key_id="key-1")

    with pytest.raises(Forbidden) as caught:
        authorize(key, action, WORKSPACE, PRODUCTION)

    assert caught.value.message == (
        f"API key key-1 is limited to environments {STAGING}; it cannot access environment {PRODUCTION}"
    )


@pytest.mark.parametrize("action", [Action.MANAGE_CONNECTIONS, Action.ADMINISTER, Action.USE_CONNECTIONS])
def test_an_environment_limited_key_cannot_act_workspace_wide(action: Action) -> None:
    key = principal(WORKSPACE, Role.ADMIN, environment_ids={PRODUCTION}, key_id="key-1")

    with pytest.raises(Forbidden) as caught:
        authorize(key, action, WORKSPACE)

    assert "key-1" in caught.value.message
    assert f"cannot {action.value} workspace-wide" in caught.value.message


def test_an_environment_limited_key_may_read_workspace_wide() -> None:
    authorize(principal(WORKSPACE, Role.VIEWER, environment_ids={PRODUCTION}), Action.READ, WORKSPACE)


def test_the_role_is_checked_before_the_environment_limit() -> None:
    key = principal(WORKSPACE, Role.VIEWER, environment_ids={PRODUCTION}, key_id="key-1")

    with pytest.raises(Forbidden, match="has role 'viewer', which cannot manage connections"):
        authorize(key, Action.MANAGE_CONNECTIONS, WORKSPACE, STAGING)


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("workspace_id", [WORKSPACE, OTHER_WORKSPACE])
@pytest.mark.parametrize("environment_id", [None, PRODUCTION, STAGING])
def test_a_platform_admin_may_do_anything_anywhere(
    action: Action, workspace_id: str, environment_id: str | None
) -> None:
    key = principal(WORKSPACE, Role.ADMIN, environment_ids={STAGING}, platform_admin=True)

    authorize(key, action, workspace_id, environment_id)
    assert key.can_reach_workspace(workspace_id)


def test_a_key_reaches_only_its_own_workspace() -> None:
    key = principal(WORKSPACE, Role.ADMIN)

    assert (key.can_reach_workspace(WORKSPACE), key.can_reach_workspace(OTHER_WORKSPACE)) == (True, False)


def test_platform_admin_only_operations_name_the_key_and_the_operation() -> None:
    with pytest.raises(Forbidden) as caught:
        require_platform_admin(principal(WORKSPACE, Role.ADMIN, key_id="key-1"), "create workspaces")

    assert caught.value.message == "only a platform-admin API key can create workspaces; key key-1 is not one"
    require_platform_admin(principal(WORKSPACE, Role.ADMIN, platform_admin=True), "create workspaces")
