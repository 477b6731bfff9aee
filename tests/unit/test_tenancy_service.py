"""Workspace, environment and API key use cases over in-memory storage."""

import hashlib
import uuid

import pytest

from tests.unit.builders import World, create_request, principal
from vmx.access.authentication import authenticate
from vmx.access.policy import Principal
from vmx.errors import Conflict, Forbidden, InvalidInput, NotFound
from vmx.events.models import ConnectionDeleted
from vmx.tenancy.models import ApiKey, ApiKeyCreate, ApiKeyPatch, EnvironmentCreate, Role, WorkspaceCreate
from vmx.use_cases.connections import ConnectionScope
from vmx.use_cases.tenancy import IssuedKey


def add_connection(world: World, scope: ConnectionScope, name: str) -> str:
    return world.connection_service.create(world.platform_admin(), scope, create_request(name=name)).connection_id


def issue(
    world: World, by: Principal, workspace_id: str | None = None, role: Role = Role.EDITOR, **fields: object
) -> IssuedKey:
    """POST .../api-keys with a body in wire form."""
    request = ApiKeyCreate.model_validate({"name": "ci", "role": role.value, **fields})
    return world.tenancy_service.create_api_key(by, workspace_id or world.workspace_id, request)


def stored_keys(world: World, workspace_id: str) -> list[ApiKey]:
    return world.tenancy.list_api_keys(workspace_id, 100, None).items


# Workspaces


def test_only_a_platform_admin_creates_workspaces(world: World) -> None:
    with pytest.raises(Forbidden, match="create workspaces"):
        world.tenancy_service.create_workspace(world.admin(), WorkspaceCreate(name="Globex"))

    creator = world.platform_admin()
    workspace = world.tenancy_service.create_workspace(creator, WorkspaceCreate(name="Globex", description="B2B"))

    assert world.tenancy.get_workspace(workspace.workspace_id) == workspace
    assert (workspace.name, workspace.description, workspace.created_by) == ("Globex", "B2B", creator.key_id)


def test_a_platform_admin_lists_every_workspace_newest_first_in_pages(world: World) -> None:
    for name in ["B", "C", "D"]:
        world.tenancy_service.add_workspace(WorkspaceCreate(name=name), created_by="bootstrap")

    first = world.tenancy_service.list_workspaces(world.platform_admin(), 3, None)
    second = world.tenancy_service.list_workspaces(world.platform_admin(), 3, first.next_token)

    assert [workspace.name for workspace in first.items + second.items] == ["D", "C", "B", "Acme"]
    assert second.next_token is None


def test_any_other_key_lists_only_its_own_workspace(world: World) -> None:
    world.another_workspace()

    page = world.tenancy_service.list_workspaces(principal(world.workspace_id, Role.VIEWER), 10, None)

    assert [workspace.workspace_id for workspace in page.items] == [world.workspace_id]
    assert page.next_token is None


def test_a_gateway_key_cannot_list_workspaces(world: World) -> None:
    with pytest.raises(Forbidden, match="'gateway'"):
        world.tenancy_service.list_workspaces(principal(world.workspace_id, Role.GATEWAY), 10, None)


def test_a_workspace_is_read_by_its_own_keys_only(world: World) -> None:
    other = world.another_workspace()

    assert (
        world.tenancy_service.get_workspace(principal(world.workspace_id, Role.VIEWER), world.workspace_id).name
        == "Acme"
    )
    with pytest.raises(Forbidden):
        world.tenancy_service.get_workspace(world.admin(), other.workspace_id)
    with pytest.raises(NotFound):
        world.tenancy_service.get_workspace(world.platform_admin(), "ws-unknown")


def test_an_empty_workspace_is_deleted_with_its_environments_and_keys(world: World) -> None:
    world.another_environment()
    issue(world, world.admin())
    other = world.another_workspace()
    other_key = issue(world, world.platform_admin(), other.workspace_id)

    world.tenancy_service.delete_workspace(world.admin(), world.workspace_id, force=False)

    assert world.tenancy.get_workspace(world.workspace_id) is None
    assert world.tenancy.list_environments(world.workspace_id) == []
    assert stored_keys(world, world.workspace_id) == []
    assert stored_keys(world, other.workspace_id) == [other_key.key]
    assert world.tenancy.get_environment(other.workspace_id, other.environment_id) is not None


def test_a_workspace_with_connections_is_not_deleted_without_force(world: World) -> None:
    staging = world.another_environment()
    connection_id = add_connection(world, staging, "gpt")

    with pytest.raises(Conflict) as caught:
        world.tenancy_service.delete_workspace(world.admin(), world.workspace_id, force=False)

    assert caught.value.code == "not_empty"
    assert world.tenancy.get_workspace(world.workspace_id) is not None
    assert world.connections.get(world.workspace_id, staging.environment_id, connection_id) is not None


def test_a_forced_workspace_delete_removes_the_connections_of_every_environment(world: World) -> None:
    staging = world.another_environment()
    removed = [add_connection(world, world.scope, "gpt"), add_connection(world, staging, "gpt")]
    other = world.another_workspace()
    add_connection(world, other, "gpt")

    admin = world.admin()
    world.tenancy_service.delete_workspace(admin, world.workspace_id, force=True)

    assert world.connections.list_all(world.workspace_id, world.environment_id) == []
    assert world.connections.list_all(world.workspace_id, staging.environment_id) == []
    assert world.tenancy.get_workspace(world.workspace_id) is None
    assert world.tenancy.list_environments(world.workspace_id) == []
    assert len(world.connections.list_all(other.workspace_id, other.environment_id)) == 1
    # each removed connection is told, as its own delete tells it, so that its remains are removed too
    deleted = world.events.of_type(ConnectionDeleted)
    assert sorted(event.connection_id for event in deleted) == sorted(removed)
    assert {event.actor for event in deleted} == {admin.key_id}


@pytest.mark.parametrize("role", [Role.EDITOR, Role.VIEWER, Role.GATEWAY])
def test_only_admins_delete_a_workspace(world: World, role: Role) -> None:
    with pytest.raises(Forbidden):
        world.tenancy_service.delete_workspace(principal(world.workspace_id, role), world.workspace_id, force=True)

    assert world.tenancy.get_workspace(world.workspace_id) is not None


def test_deleting_an_unknown_workspace_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        world.tenancy_service.delete_workspace(world.platform_admin(), "ws-unknown", force=True)


# Environments


def test_an_admin_creates_an_environment(world: World) -> None:
    admin = world.admin()

    environment = world.tenancy_service.create_environment(admin, world.workspace_id, EnvironmentCreate(name="staging"))

    assert world.tenancy.get_environment(world.workspace_id, environment.environment_id) == environment
    assert environment.created_by == admin.key_id


@pytest.mark.parametrize("name", ["production", "Production", "PRODUCTION"])
def test_environment_names_are_unique_in_a_workspace_whatever_their_case(world: World, name: str) -> None:
    with pytest.raises(Conflict) as caught:
        world.tenancy_service.create_environment(world.admin(), world.workspace_id, EnvironmentCreate(name=name))

    assert caught.value.code == "name_taken"


def test_another_workspace_may_reuse_an_environment_name(world: World) -> None:
    other = world.tenancy_service.add_workspace(WorkspaceCreate(name="Globex"), created_by="bootstrap")

    environment = world.tenancy_service.create_environment(
        world.platform_admin(), other.workspace_id, EnvironmentCreate(name="Production")
    )

    assert world.tenancy.get_environment(other.workspace_id, environment.environment_id) == environment


def test_creating_an_environment_needs_an_admin_of_the_whole_workspace(world: World) -> None:
    limited_admin = principal(world.workspace_id, Role.ADMIN, environment_ids={world.environment_id})

    with pytest.raises(Forbidden):
        world.tenancy_service.create_environment(world.editor(), world.workspace_id, EnvironmentCreate(name="qa"))
    with pytest.raises(Forbidden):
        world.tenancy_service.create_environment(limited_admin, world.workspace_id, EnvironmentCreate(name="qa"))


def test_creating_an_environment_in_an_unknown_workspace_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        world.tenancy_service.create_environment(world.platform_admin(), "ws-unknown", EnvironmentCreate(name="qa"))


def test_an_environment_limited_key_lists_only_its_environments(world: World) -> None:
    staging = world.another_environment()
    limited = principal(world.workspace_id, Role.VIEWER, environment_ids={staging.environment_id})

    listed = world.tenancy_service.list_environments(limited, world.workspace_id, 20, None)
    everything = world.tenancy_service.list_environments(world.admin(), world.workspace_id, 20, None)

    assert [environment.environment_id for environment in listed.items] == [staging.environment_id]
    assert [environment.name for environment in everything.items] == ["staging", "production"]


def test_an_environment_is_read_within_the_keys_reach(world: World) -> None:
    staging = world.another_environment()
    limited = principal(world.workspace_id, Role.VIEWER, environment_ids={staging.environment_id})

    assert world.tenancy_service.get_environment(limited, world.workspace_id, staging.environment_id).name == "staging"
    with pytest.raises(Forbidden):
        world.tenancy_service.get_environment(limited, world.workspace_id, world.environment_id)
    with pytest.raises(NotFound):
        world.tenancy_service.get_environment(world.admin(), world.workspace_id, "env-unknown")


def test_an_empty_environment_is_deleted(world: World) -> None:
    staging = world.another_environment()

    world.tenancy_service.delete_environment(world.admin(), world.workspace_id, staging.environment_id, force=False)

    assert world.tenancy.get_environment(world.workspace_id, staging.environment_id) is None
    assert world.tenancy.get_environment(world.workspace_id, world.environment_id) is not None


def test_an_environment_with_connections_is_not_deleted_without_force(world: World) -> None:
    add_connection(world, world.scope, "gpt")

    with pytest.raises(Conflict) as caught:
        world.tenancy_service.delete_environment(world.admin(), world.workspace_id, world.environment_id, force=False)

    assert caught.value.code == "not_empty"
    assert world.tenancy.get_environment(world.workspace_id, world.environment_id) is not None
    assert world.tenancy.connection_count(world.workspace_id, world.environment_id) == 1


def test_a_forced_environment_delete_removes_its_connections_first(world: World) -> None:
    staging = world.another_environment()
    add_connection(world, world.scope, "gpt")
    add_connection(world, world.scope, "claude")
    kept = add_connection(world, staging, "gpt")

    world.tenancy_service.delete_environment(world.admin(), world.workspace_id, world.environment_id, force=True)

    assert world.tenancy.get_environment(world.workspace_id, world.environment_id) is None
    assert world.connections.list_all(world.workspace_id, world.environment_id) == []
    assert world.tenancy.connection_count(world.workspace_id) == 1
    assert world.connections.get(world.workspace_id, staging.environment_id, kept) is not None


def test_a_forced_delete_sweeps_again_for_a_connection_created_meanwhile(world: World) -> None:
    # Given a connection is created while the forced delete removes the existing one
    add_connection(world, world.scope, "gpt")
    world.connections.interleave(lambda: add_connection(world, world.scope, "late"))

    # When the environment is deleted with force
    world.tenancy_service.delete_environment(world.admin(), world.workspace_id, world.environment_id, force=True)

    # Then the late connection went too
    assert world.connections.list_all(world.workspace_id, world.environment_id) == []
    assert world.tenancy.get_environment(world.workspace_id, world.environment_id) is None


def test_deleting_an_unknown_environment_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        world.tenancy_service.delete_environment(world.admin(), world.workspace_id, "env-unknown", force=True)


# API keys


def test_a_new_key_is_shown_once_and_only_its_hash_is_stored(world: World) -> None:
    admin = world.admin()

    issued = issue(world, admin, role=Role.EDITOR)

    token = issued.token.get_secret_value()
    secret = token[-43:]
    [stored] = stored_keys(world, world.workspace_id)
    assert stored == issued.key
    assert stored.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in stored.model_dump_json()
    assert token.startswith(f"vmx_{stored.key_id}_")
    assert (stored.role, stored.created_by, stored.revoked_at, stored.platform_admin) == (
        Role.EDITOR,
        admin.key_id,
        None,
        False,
    )
    assert authenticate(world.tenancy, f"Bearer {token}") == stored


def test_reading_a_key_back_never_shows_the_token(world: World) -> None:
    issued = issue(world, world.admin())

    read = world.tenancy_service.get_api_key(world.admin(), world.workspace_id, issued.key.key_id)

    assert read == issued.key
    assert issued.token.get_secret_value() not in read.model_dump_json()


def test_only_a_platform_admin_creates_platform_admin_keys(world: World) -> None:
    with pytest.raises(Forbidden, match="create platform-admin keys"):
        issue(world, world.admin(), role=Role.ADMIN, platformAdmin=True)

    issued = issue(world, world.platform_admin(), role=Role.ADMIN, platformAdmin=True)

    assert stored_keys(world, world.workspace_id) == [issued.key]
    assert issued.key.platform_admin


@pytest.mark.parametrize("role", [Role.EDITOR, Role.VIEWER, Role.GATEWAY])
def test_a_platform_admin_key_must_have_role_admin(world: World, role: Role) -> None:
    with pytest.raises(InvalidInput) as caught:
        issue(world, world.platform_admin(), role=role, platformAdmin=True)

    assert caught.value.details[0].field == "role"
    assert stored_keys(world, world.workspace_id) == []


def test_a_key_may_be_limited_to_existing_environments(world: World) -> None:
    staging = world.another_environment()

    issued = issue(world, world.admin(), environmentIds=[world.environment_id, staging.environment_id])

    assert issued.key.environment_ids == [world.environment_id, staging.environment_id]


def test_a_key_cannot_be_limited_to_an_unknown_environment(world: World) -> None:
    unknown = str(uuid.uuid4())

    with pytest.raises(NotFound, match=unknown):
        issue(world, world.admin(), environmentIds=[world.environment_id, unknown])

    assert stored_keys(world, world.workspace_id) == []


def test_a_key_cannot_be_limited_to_another_workspaces_environment(world: World) -> None:
    other = world.another_workspace()

    with pytest.raises(NotFound):
        issue(world, world.platform_admin(), environmentIds=[other.environment_id])

    assert stored_keys(world, world.workspace_id) == []


@pytest.mark.parametrize("role", [Role.EDITOR, Role.VIEWER, Role.GATEWAY])
def test_only_workspace_admins_manage_keys(world: World, role: Role) -> None:
    key = principal(world.workspace_id, role)

    with pytest.raises(Forbidden):
        issue(world, key)
    with pytest.raises(Forbidden):
        world.tenancy_service.list_api_keys(key, world.workspace_id, 10, None)


def test_an_environment_limited_admin_cannot_create_keys(world: World) -> None:
    with pytest.raises(Forbidden, match="workspace-wide"):
        issue(world, principal(world.workspace_id, Role.ADMIN, environment_ids={world.environment_id}))


def test_creating_a_key_in_an_unknown_workspace_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        issue(world, world.platform_admin(), "ws-unknown")


def test_keys_are_listed_newest_first_in_pages(world: World) -> None:
    names = ["first", "second", "third"]
    for name in names:
        issue(world, world.admin(), name=name)

    first = world.tenancy_service.list_api_keys(world.admin(), world.workspace_id, 2, None)
    second = world.tenancy_service.list_api_keys(world.admin(), world.workspace_id, 2, first.next_token)

    assert [key.name for key in first.items + second.items] == list(reversed(names))
    assert second.next_token is None


def test_revoking_a_key_sets_revoked_at_once(world: World) -> None:
    issued = issue(world, world.admin())

    revoked = world.tenancy_service.revoke_api_key(world.admin(), world.workspace_id, issued.key.key_id)
    again = world.tenancy_service.revoke_api_key(world.admin(), world.workspace_id, issued.key.key_id)

    assert revoked.revoked_at is not None
    assert revoked.revoked_at > issued.key.created_at
    assert again == revoked
    assert world.tenancy.get_api_key(issued.key.key_id) == revoked
    assert authenticate(world.tenancy, f"Bearer {issued.token.get_secret_value()}") is None


def test_only_a_platform_admin_revokes_a_platform_admin_key(world: World) -> None:
    issued = issue(world, world.platform_admin(), role=Role.ADMIN, platformAdmin=True)

    with pytest.raises(Forbidden):
        world.tenancy_service.revoke_api_key(world.admin(), world.workspace_id, issued.key.key_id)

    assert world.tenancy.get_api_key(issued.key.key_id) == issued.key


def test_a_key_of_another_workspace_is_not_found_through_this_one(world: World) -> None:
    # Given a key of another workspace
    other = world.another_workspace()
    foreign = issue(world, world.platform_admin(), other.workspace_id)

    # Then it is not found through this workspace, by its admin or by a platform admin
    for caller in (world.admin(), world.platform_admin()):
        with pytest.raises(NotFound):
            world.tenancy_service.get_api_key(caller, world.workspace_id, foreign.key.key_id)
        with pytest.raises(NotFound):
            world.tenancy_service.revoke_api_key(caller, world.workspace_id, foreign.key.key_id)
    assert world.tenancy.get_api_key(foreign.key.key_id) == foreign.key


def test_an_unknown_key_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        world.tenancy_service.get_api_key(world.admin(), world.workspace_id, str(uuid.uuid4()))


# A key's priority class


def test_a_keys_class_changes_only_where_its_admin_may_and_never_on_a_revoked_key(world: World) -> None:
    platform_key = issue(world, world.platform_admin(), role=Role.ADMIN, platformAdmin=True)
    foreign = issue(world, world.platform_admin(), world.another_workspace().workspace_id, role=Role.GATEWAY)
    revoked = issue(world, world.admin(), role=Role.GATEWAY)
    world.tenancy_service.revoke_api_key(world.admin(), world.workspace_id, revoked.key.key_id)
    limited_admin = principal(world.workspace_id, Role.ADMIN, environment_ids={world.environment_id})
    to_batch = ApiKeyPatch.model_validate({"priorityClass": "batch"})
    service = world.tenancy_service

    with pytest.raises(Forbidden):
        service.change_api_key(world.admin(), world.workspace_id, platform_key.key.key_id, to_batch)
    with pytest.raises(NotFound):
        service.change_api_key(world.platform_admin(), world.workspace_id, foreign.key.key_id, to_batch)
    with pytest.raises(Forbidden):
        service.change_api_key(limited_admin, world.workspace_id, revoked.key.key_id, to_batch)
    for patch in (to_batch, ApiKeyPatch()):
        with pytest.raises(Conflict) as refused:
            service.change_api_key(world.admin(), world.workspace_id, revoked.key.key_id, patch)
        assert refused.value.code == "key_revoked"

    assert world.tenancy.get_api_key(platform_key.key.key_id) == platform_key.key
    assert world.tenancy.get_api_key(foreign.key.key_id) == foreign.key
