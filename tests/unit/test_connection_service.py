"""AI connection use cases over in-memory storage and a reversible cipher."""

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.builders import ROLE_ARN, World, create_request, patch, principal
from vmx.connections.models import MASK, Connection
from vmx.errors import Conflict, Forbidden, InvalidInput, NotFound, PreconditionFailed
from vmx.providers.catalog import ProviderId
from vmx.tenancy.models import Role
from vmx.use_cases.connections import ConnectionScope

BEDROCK_KEYS = {"region": "us-east-1", "accessKeyId": "AKIAEXAMPLE", "secretAccessKey": "wJalrXUtnFEMI"}


def opened(world: World, connection: Connection) -> dict[str, str]:
    secrets = world.cipher.open(connection.secrets, connection.encryption_context)
    return {name: secret.get_secret_value() for name, secret in secrets.items()}


def stored(world: World, connection: Connection) -> Connection | None:
    return world.connections.get(connection.workspace_id, connection.environment_id, connection.connection_id)


def existing(world: World, **fields: Any) -> Connection:
    return world.connection_service.create(world.admin(), world.scope, create_request(**fields))


def concurrent_description_change(world: World, connection_id: str, description: str) -> None:
    """Another request's PATCH landing between our read and our write."""
    world.connection_service.update(
        world.admin(), world.scope, connection_id, patch(description=description), expected_version=None
    )


# Create


def test_create_stores_the_connection_with_its_secrets_sealed_for_it(world: World) -> None:
    editor = world.editor()

    connection = world.connection_service.create(
        editor, world.scope, create_request(config={"apiKey": "sk-original", "baseUrl": "https://proxy.example.com/"})
    )

    assert stored(world, connection) == connection
    assert connection.settings == {"baseUrl": "https://proxy.example.com"}
    assert "sk-original" not in str(connection.settings)
    assert set(connection.secrets) == {"apiKey"}
    assert world.cipher.sealed_for(connection.secrets["apiKey"]) == (connection.encryption_context, "apiKey")
    assert connection.encryption_context.connection_id == connection.connection_id
    assert opened(world, connection) == {"apiKey": "sk-original"}
    assert connection.masked_config() == {"baseUrl": "https://proxy.example.com", "apiKey": MASK}


def test_create_records_who_when_and_version_one(world: World) -> None:
    editor = world.editor()

    connection = world.connection_service.create(editor, world.scope, create_request())

    assert (connection.created_by, connection.updated_by) == (editor.key_id, editor.key_id)
    assert connection.version == 1
    assert connection.created_at == connection.updated_at == connection.credentials_updated_at
    assert (connection.workspace_id, connection.environment_id) == (world.workspace_id, world.environment_id)
    assert world.tenancy.connection_count(world.workspace_id, world.environment_id) == 1


def test_create_keeps_the_request_fields(world: World) -> None:
    connection = existing(world, name="Claude", provider="anthropic", config={"apiKey": "sk-ant-1"})

    assert (connection.name, connection.provider, connection.description) == (
        "Claude",
        ProviderId.ANTHROPIC,
        "OpenAI connection for production workloads",
    )
    assert [(entry.period.value, entry.requests, entry.tokens) for entry in connection.capacity] == [
        ("minute", 100, 100000)
    ]
    assert connection.allowed_models == ["gpt-4o", "gpt-4o-mini"]


def test_create_seals_every_bedrock_key_and_keeps_the_rest_as_settings(world: World) -> None:
    connection = existing(world, provider="aws-bedrock", config={**BEDROCK_KEYS, "sessionToken": "FwoG"})

    assert connection.settings == {"region": "us-east-1"}
    assert opened(world, connection) == {
        "accessKeyId": "AKIAEXAMPLE",
        "secretAccessKey": "wJalrXUtnFEMI",
        "sessionToken": "FwoG",
    }


def test_a_bedrock_connection_with_a_role_has_no_secrets(world: World) -> None:
    connection = existing(world, provider="aws-bedrock", config={"region": "us-east-1", "iamRoleArn": ROLE_ARN})

    assert connection.secrets == {}
    assert connection.settings == {"region": "us-east-1", "iamRoleArn": ROLE_ARN}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"config": {"apiKey": MASK}}, "config.apiKey"),
        ({"config": {"apiKey": "sk-1", "organization": "org"}}, "config.organization"),
        ({"config": {}}, "config.apiKey"),
        ({"provider": "google", "config": {"apiKey": "k"}}, "provider"),
    ],
)
def test_create_refuses_an_invalid_config_and_stores_nothing(world: World, fields: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        existing(world, **fields)

    assert field in [detail.field for detail in caught.value.details]
    assert world.connections.list_all(world.workspace_id, world.environment_id) == []


@pytest.mark.parametrize("name", ["OpenAI Production", "openai production", "OPENAI PRODUCTION"])
def test_a_name_is_unique_in_its_environment_whatever_its_case(world: World, name: str) -> None:
    existing(world, name="OpenAI Production")

    with pytest.raises(Conflict) as caught:
        existing(world, name=name)

    assert caught.value.code == "name_taken"
    assert world.tenancy.connection_count(world.workspace_id, world.environment_id) == 1


def test_the_same_name_may_be_used_in_another_environment(world: World) -> None:
    staging = world.another_environment()
    existing(world, name="OpenAI Production")

    connection = world.connection_service.create(world.admin(), staging, create_request(name="OpenAI Production"))

    assert connection.environment_id == staging.environment_id


def test_create_in_an_unknown_workspace_or_environment_is_not_found(world: World) -> None:
    unknown_workspace = ConnectionScope("ws-unknown", world.environment_id)
    unknown_environment = ConnectionScope(world.workspace_id, "env-unknown")

    with pytest.raises(NotFound, match="workspace ws-unknown"):
        world.connection_service.create(world.platform_admin(), unknown_workspace, create_request())
    with pytest.raises(NotFound, match="environment env-unknown"):
        world.connection_service.create(world.admin(), unknown_environment, create_request())


@pytest.mark.parametrize("role", [Role.VIEWER, Role.GATEWAY])
def test_only_editors_and_admins_create(world: World, role: Role) -> None:
    with pytest.raises(Forbidden):
        world.connection_service.create(principal(world.workspace_id, role), world.scope, create_request())

    assert world.connections.list_all(world.workspace_id, world.environment_id) == []


def test_authorization_comes_before_looking_anything_up(world: World) -> None:
    # Given a key of another workspace, and a request that would fail on every other check
    outsider = principal("ws-globex", Role.ADMIN)
    nowhere = ConnectionScope("ws-unknown", "env-unknown")

    # Then it is refused for what it is, not for what is missing
    with pytest.raises(Forbidden):
        world.connection_service.create(outsider, nowhere, create_request(provider="google"))
    with pytest.raises(Forbidden):
        world.connection_service.get(outsider, world.scope, "conn-missing")
    with pytest.raises(Forbidden):
        world.connection_service.update(outsider, world.scope, "conn-missing", patch(name=None), None)
    with pytest.raises(Forbidden):
        world.connection_service.delete(outsider, world.scope, "conn-missing", None)
    with pytest.raises(Forbidden):
        world.connection_service.list_page(outsider, world.scope, 10, "garbage", "google")


def test_a_viewer_is_refused_an_update_before_its_patch_is_looked_at(world: World) -> None:
    connection = existing(world)
    viewer = principal(world.workspace_id, Role.VIEWER)

    with pytest.raises(Forbidden):
        world.connection_service.update(viewer, world.scope, connection.connection_id, patch(name=None), 99)


# Read


def test_get_returns_the_stored_connection_to_a_viewer(world: World) -> None:
    connection = existing(world)

    assert (
        world.connection_service.get(principal(world.workspace_id, Role.VIEWER), world.scope, connection.connection_id)
        == connection
    )


def test_get_of_an_unknown_connection_or_environment_is_not_found(world: World) -> None:
    connection = existing(world)

    with pytest.raises(NotFound, match="AI connection conn-missing not found"):
        world.connection_service.get(world.admin(), world.scope, "conn-missing")
    with pytest.raises(NotFound, match="environment env-unknown"):
        world.connection_service.get(
            world.admin(), ConnectionScope(world.workspace_id, "env-unknown"), connection.connection_id
        )


def test_a_connection_is_not_found_through_another_environment(world: World) -> None:
    connection = existing(world)
    staging = world.another_environment()

    with pytest.raises(NotFound):
        world.connection_service.get(world.admin(), staging, connection.connection_id)


def test_an_environment_limited_key_reads_only_its_environments(world: World) -> None:
    connection = existing(world)
    staging = world.another_environment()
    limited = principal(world.workspace_id, Role.VIEWER, environment_ids={staging.environment_id})

    with pytest.raises(Forbidden, match=world.environment_id):
        world.connection_service.get(limited, world.scope, connection.connection_id)


# List


def page_through(world: World, limit: int, provider: str | None = None) -> list[list[str]]:
    pages: list[list[str]] = []
    token = None
    while True:
        page = world.connection_service.list_page(world.admin(), world.scope, limit, token, provider)
        pages.append([connection.name for connection in page.items])
        token = page.next_token
        if token is None:
            return pages


@settings(max_examples=15, deadline=None)
@given(st.integers(min_value=0, max_value=7), st.integers(min_value=1, max_value=4))
def test_listing_pages_through_every_connection_newest_first(count: int, limit: int) -> None:
    world = World.create()
    for number in range(count):
        existing(world, name=f"connection {number}")

    pages = page_through(world, limit)

    assert [name for page in pages for name in page] == [f"connection {number}" for number in reversed(range(count))]
    assert all(0 < len(page) <= limit for page in pages) or count == 0


def test_listing_can_be_filtered_by_provider(world: World) -> None:
    existing(world, name="gpt")
    existing(world, name="claude", provider="anthropic", config={"apiKey": "sk-ant"})
    existing(world, name="gpt 2")

    assert page_through(world, 1, provider="openai") == [["gpt 2"], ["gpt"]]
    assert page_through(world, 10, provider="anthropic") == [["claude"]]


def test_listing_refuses_an_unknown_provider_filter(world: World) -> None:
    with pytest.raises(InvalidInput, match="gemini"):
        world.connection_service.list_page(world.admin(), world.scope, 10, None, "google")


def test_listing_an_unknown_environment_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        world.connection_service.list_page(
            world.admin(), ConnectionScope(world.workspace_id, "env-unknown"), 10, None, None
        )


def test_a_page_token_does_not_continue_another_environments_list(world: World) -> None:
    staging = world.another_environment()
    for number in range(3):
        world.connection_service.create(world.admin(), staging, create_request(name=f"c{number}"))
    staging_token = world.connection_service.list_page(world.admin(), staging, 1, None, None).next_token
    assert staging_token is not None

    with pytest.raises(InvalidInput) as caught:
        world.connection_service.list_page(world.admin(), world.scope, 1, staging_token, None)

    assert caught.value.details[0].field == "nextToken"


# Update


def test_fields_left_out_of_a_patch_are_unchanged(world: World) -> None:
    before = existing(world)

    after = world.connection_service.update(
        world.editor(), world.scope, before.connection_id, patch(name="Renamed"), None
    )

    assert after.name == "Renamed"
    unchanged = {
        "description",
        "provider",
        "settings",
        "secrets",
        "capacity",
        "allowed_models",
        "created_at",
        "created_by",
    }
    assert after.model_dump(include=unchanged) == before.model_dump(include=unchanged)
    assert stored(world, before) == after


@pytest.mark.parametrize(("field", "wire"), [("description", "description"), ("allowed_models", "allowedModels")])
def test_null_clears_an_optional_field(world: World, field: str, wire: str) -> None:
    before = existing(world)
    assert getattr(before, field) is not None

    after = world.connection_service.update(
        world.admin(), world.scope, before.connection_id, patch(**{wire: None}), None
    )

    assert getattr(after, field) is None
    assert after.name == before.name


@pytest.mark.parametrize("field", ["name", "provider", "config", "capacity"])
def test_null_is_refused_for_a_required_field(world: World, field: str) -> None:
    before = existing(world)

    with pytest.raises(InvalidInput) as caught:
        world.connection_service.update(world.admin(), world.scope, before.connection_id, patch(**{field: None}), None)

    assert [detail.field for detail in caught.value.details] == [field]
    assert stored(world, before) == before


def test_capacity_and_allowed_models_are_replaced_whole(world: World) -> None:
    before = existing(world)

    after = world.connection_service.update(
        world.admin(),
        world.scope,
        before.connection_id,
        patch(capacity=[{"period": "day", "tokens": 5}], allowedModels=["o3"]),
        None,
    )

    assert [(entry.period.value, entry.requests, entry.tokens) for entry in after.capacity] == [("day", None, 5)]
    assert after.allowed_models == ["o3"]


def test_changing_the_provider_without_a_config_is_refused(world: World) -> None:
    before = existing(world)

    with pytest.raises(InvalidInput) as caught:
        world.connection_service.update(
            world.admin(), world.scope, before.connection_id, patch(provider="anthropic"), None
        )

    assert [detail.field for detail in caught.value.details] == ["config"]
    assert stored(world, before) == before


def test_naming_the_current_provider_without_a_config_changes_nothing_of_it(world: World) -> None:
    before = existing(world)

    after = world.connection_service.update(
        world.admin(), world.scope, before.connection_id, patch(provider="openai"), None
    )

    assert (after.provider, after.secrets, after.settings) == (before.provider, before.secrets, before.settings)


def test_changing_the_provider_with_its_full_config_drops_the_old_secrets(world: World) -> None:
    before = existing(world, config={"apiKey": "sk-original"})

    after = world.connection_service.update(
        world.admin(),
        world.scope,
        before.connection_id,
        patch(provider="aws-bedrock", config={"region": "eu-west-1", "iamRoleArn": ROLE_ARN}),
        None,
    )

    assert after.provider is ProviderId.AWS_BEDROCK
    assert after.settings == {"region": "eu-west-1", "iamRoleArn": ROLE_ARN}
    assert after.secrets == {}
    assert after.credentials_updated_at == after.updated_at > before.credentials_updated_at


def test_changing_the_provider_seals_its_new_secrets_for_the_connection(world: World) -> None:
    before = existing(world, provider="aws-bedrock", config={"region": "us-east-1", "iamRoleArn": ROLE_ARN})

    after = world.connection_service.update(
        world.admin(), world.scope, before.connection_id, patch(provider="groq", config={"apiKey": "gsk_1"}), None
    )

    assert after.settings == {}
    assert opened(world, after) == {"apiKey": "gsk_1"}
    assert world.cipher.sealed_for(after.secrets["apiKey"])[0] == before.encryption_context


def test_changing_the_provider_refuses_the_mask_for_the_old_secret(world: World) -> None:
    before = existing(world)

    with pytest.raises(InvalidInput) as caught:
        world.connection_service.update(
            world.admin(), world.scope, before.connection_id, patch(provider="groq", config={"apiKey": MASK}), None
        )

    assert [detail.field for detail in caught.value.details] == ["config.apiKey"]


def test_rotating_a_secret_reseals_it_and_marks_the_credentials_updated(world: World) -> None:
    before = existing(world)

    after = world.connection_service.update(
        world.admin(), world.scope, before.connection_id, patch(config={"apiKey": "sk-rotated"}), None
    )

    assert opened(world, after) == {"apiKey": "sk-rotated"}
    assert world.cipher.sealed_for(after.secrets["apiKey"]) == (before.encryption_context, "apiKey")
    assert after.credentials_updated_at == after.updated_at > before.credentials_updated_at


@pytest.mark.parametrize(
    "body",
    [{"capacity": [{"period": "hour", "requests": 10}]}, {"description": "changed"}],
    ids=["capacity", "description"],
)
def test_a_change_that_keeps_the_secrets_keeps_their_timestamp(world: World, body: dict[str, Any]) -> None:
    before = existing(world)

    after = world.connection_service.update(world.admin(), world.scope, before.connection_id, patch(**body), None)

    assert after.secrets == before.secrets
    assert after.credentials_updated_at == before.credentials_updated_at
    assert after.updated_at > before.updated_at


@pytest.mark.parametrize(
    "body", [{"config": {"apiKey": MASK}}, {"config": {}}, {}], ids=["masked-secret", "empty-config", "empty"]
)
def test_a_patch_that_changes_nothing_writes_nothing(world: World, body: dict[str, Any]) -> None:
    before = existing(world)

    after = world.connection_service.update(world.admin(), world.scope, before.connection_id, patch(**body), None)

    assert after == before
    assert world.connections.get(world.scope.workspace_id, world.scope.environment_id, before.connection_id) == before


def test_a_settings_change_keeps_the_stored_keys(world: World) -> None:
    before = existing(world, provider="aws-bedrock", config=BEDROCK_KEYS)

    after = world.connection_service.update(
        world.admin(), world.scope, before.connection_id, patch(config={"region": "eu-central-1"}), None
    )

    assert after.settings == {"region": "eu-central-1"}
    assert after.secrets == before.secrets
    assert after.credentials_updated_at == before.credentials_updated_at


def test_a_bedrock_connection_switches_from_a_role_to_access_keys(world: World) -> None:
    before = existing(world, provider="aws-bedrock", config={"region": "us-east-1", "iamRoleArn": ROLE_ARN})

    after = world.connection_service.update(
        world.admin(),
        world.scope,
        before.connection_id,
        patch(config={"iamRoleArn": None, "accessKeyId": "AKIA2", "secretAccessKey": "s2"}),
        None,
    )

    assert after.settings == {"region": "us-east-1"}
    assert opened(world, after) == {"accessKeyId": "AKIA2", "secretAccessKey": "s2"}


def test_a_bedrock_connection_switches_from_access_keys_to_a_role(world: World) -> None:
    before = existing(world, provider="aws-bedrock", config={**BEDROCK_KEYS, "sessionToken": "t"})

    after = world.connection_service.update(
        world.admin(),
        world.scope,
        before.connection_id,
        patch(config={"iamRoleArn": ROLE_ARN, "accessKeyId": None, "secretAccessKey": None, "sessionToken": None}),
        None,
    )

    assert after.settings == {"region": "us-east-1", "iamRoleArn": ROLE_ARN}
    assert after.secrets == {}
    assert after.credentials_updated_at == after.updated_at


def test_a_new_base_url_needs_the_api_key_again(world: World) -> None:
    before = existing(world)

    with pytest.raises(InvalidInput, match="resend apiKey"):
        world.connection_service.update(
            world.admin(),
            world.scope,
            before.connection_id,
            patch(config={"baseUrl": "https://elsewhere.example.com"}),
            None,
        )
    after = world.connection_service.update(
        world.admin(),
        world.scope,
        before.connection_id,
        patch(config={"baseUrl": "https://elsewhere.example.com", "apiKey": "sk-elsewhere"}),
        None,
    )

    assert after.settings == {"baseUrl": "https://elsewhere.example.com"}
    assert opened(world, after) == {"apiKey": "sk-elsewhere"}


def test_each_update_adds_one_to_the_version_and_records_who(world: World) -> None:
    admin, editor = world.admin(), world.editor()
    connection = world.connection_service.create(admin, world.scope, create_request())

    versions = []
    for number in range(3):
        connection = world.connection_service.update(
            editor, world.scope, connection.connection_id, patch(description=f"v{number}"), None
        )
        versions.append(connection.version)

    assert versions == [2, 3, 4]
    assert (connection.created_by, connection.updated_by) == (admin.key_id, editor.key_id)


def test_renaming_to_a_taken_name_is_a_conflict(world: World) -> None:
    existing(world, name="gpt")
    other = existing(world, name="claude")

    with pytest.raises(Conflict) as caught:
        world.connection_service.update(world.admin(), world.scope, other.connection_id, patch(name="GPT"), None)

    assert caught.value.code == "name_taken"
    assert stored(world, other) == other


def test_a_connection_may_change_the_case_of_its_own_name(world: World) -> None:
    before = existing(world, name="gpt")

    after = world.connection_service.update(world.admin(), world.scope, before.connection_id, patch(name="GPT"), None)

    assert after.name == "GPT"


def test_updating_an_unknown_connection_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        world.connection_service.update(world.admin(), world.scope, "conn-missing", patch(description="x"), None)


def test_if_match_with_the_current_version_updates(world: World) -> None:
    before = existing(world)

    after = world.connection_service.update(world.admin(), world.scope, before.connection_id, patch(description="x"), 1)

    assert after.version == 2


def test_a_stale_if_match_is_a_failed_precondition(world: World) -> None:
    connection = existing(world)
    concurrent_description_change(world, connection.connection_id, "theirs")

    with pytest.raises(PreconditionFailed):
        world.connection_service.update(world.admin(), world.scope, connection.connection_id, patch(name="mine"), 1)

    current = stored(world, connection)
    assert current is not None
    assert (current.name, current.description, current.version) == (connection.name, "theirs", 2)


def test_if_match_fails_when_a_concurrent_change_lands_between_read_and_write(world: World) -> None:
    connection = existing(world)
    world.connections.interleave(lambda: concurrent_description_change(world, connection.connection_id, "theirs"))

    with pytest.raises(PreconditionFailed):
        world.connection_service.update(world.admin(), world.scope, connection.connection_id, patch(name="mine"), 1)

    current = stored(world, connection)
    assert current is not None
    assert (current.name, current.description) == (connection.name, "theirs")


def test_without_if_match_a_lost_race_is_retried_and_no_update_is_lost(world: World) -> None:
    # Given another request changes the description while ours is in flight
    connection = existing(world)
    world.connections.interleave(lambda: concurrent_description_change(world, connection.connection_id, "theirs"))

    # When we rename without If-Match
    world.connection_service.update(world.admin(), world.scope, connection.connection_id, patch(name="mine"), None)

    # Then both changes are there, one version each
    current = stored(world, connection)
    assert current is not None
    assert (current.name, current.description, current.version) == ("mine", "theirs", 3)


def test_a_connection_that_keeps_changing_gives_up_with_a_failed_precondition(world: World) -> None:
    connection = existing(world)
    world.connections.interleave(
        *[lambda n=n: concurrent_description_change(world, connection.connection_id, f"theirs {n}") for n in range(5)]
    )

    with pytest.raises(PreconditionFailed) as caught:
        world.connection_service.update(world.admin(), world.scope, connection.connection_id, patch(name="mine"), None)

    assert caught.value.code == "concurrent_update"
    current = stored(world, connection)
    assert current is not None
    assert (current.name, current.version) == (connection.name, 6)


# Delete


def test_delete_removes_the_connection_and_its_count(world: World) -> None:
    connection = existing(world)

    world.connection_service.delete(world.editor(), world.scope, connection.connection_id, 1)

    assert stored(world, connection) is None
    assert world.tenancy.connection_count(world.workspace_id) == 0
    with pytest.raises(NotFound):
        world.connection_service.get(world.admin(), world.scope, connection.connection_id)


def test_delete_with_a_stale_if_match_is_a_failed_precondition(world: World) -> None:
    connection = existing(world)
    concurrent_description_change(world, connection.connection_id, "theirs")

    with pytest.raises(PreconditionFailed):
        world.connection_service.delete(world.admin(), world.scope, connection.connection_id, 1)

    assert stored(world, connection) is not None


def test_delete_with_if_match_fails_when_a_change_lands_before_the_write(world: World) -> None:
    connection = existing(world)
    world.connections.interleave(lambda: concurrent_description_change(world, connection.connection_id, "theirs"))

    with pytest.raises(PreconditionFailed):
        world.connection_service.delete(world.admin(), world.scope, connection.connection_id, 1)

    assert stored(world, connection) is not None


def test_delete_without_if_match_retries_a_lost_race(world: World) -> None:
    connection = existing(world)
    world.connections.interleave(lambda: concurrent_description_change(world, connection.connection_id, "theirs"))

    world.connection_service.delete(world.admin(), world.scope, connection.connection_id, None)

    assert stored(world, connection) is None


def test_deleting_an_unknown_connection_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        world.connection_service.delete(world.admin(), world.scope, "conn-missing", None)


@pytest.mark.parametrize("role", [Role.VIEWER, Role.GATEWAY])
def test_only_editors_and_admins_delete(world: World, role: Role) -> None:
    connection = existing(world)

    with pytest.raises(Forbidden):
        world.connection_service.delete(
            principal(world.workspace_id, role), world.scope, connection.connection_id, None
        )

    assert stored(world, connection) == connection
