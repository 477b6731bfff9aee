"""No event the connection API publishes carries a secret, whatever it changes."""

from tests.unit.builders import World, create_request, patch


def test_connection_events_never_carry_the_secret(world: World) -> None:
    canary = "sk-CANARY-events-7f3a"
    created = world.connection_service.create(
        world.admin(), world.scope, create_request(provider="openai", config={"apiKey": canary})
    )
    world.connection_service.update(
        world.admin(), world.scope, created.connection_id, patch(config={"apiKey": canary + "-rotated"}), None
    )
    world.connection_service.delete(world.admin(), world.scope, created.connection_id, None)

    published = [event.model_dump_json() for event in world.events.published]
    assert [type(event).__name__ for event in world.events.published] == [
        "ConnectionCreated",
        "ConnectionUpdated",
        "ConnectionDeleted",
    ]
    assert all(canary not in event for event in published)
