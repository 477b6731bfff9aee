"""Writers that race: names stay unique and no update is lost.

Both racers finish every read before either writes, the worst interleaving for a read-then-write
design; the writes then reach DynamoDB one after the other (moto is not a concurrent database), so
what decides the outcome is the condition inside each write, exactly as in AWS.
"""

import os
import threading
from collections.abc import Callable
from typing import Any

import pytest

from tests.event_fakes import InMemoryEventPublisher
from tests.functional.conftest import Tenant
from vmx import wiring
from vmx.access.policy import Principal
from vmx.connections.models import Connection, ConnectionCreate, ConnectionPatch
from vmx.errors import Conflict, PreconditionFailed
from vmx.settings import ConnectionsSettings
from vmx.storage.connection_store import DynamoConnectionRepository
from vmx.tenancy.models import Role
from vmx.use_cases.connections import ConnectionScope


class ReadsThenWritesInTurn(DynamoConnectionRepository):
    """Holds each racer's first write until every racer is ready to write, then lets writes through
    one at a time. A racer's retry (after a fresh read) is not held."""

    def __init__(self, racers: int, **kwargs: Any):
        super().__init__(**kwargs)
        self._ready = threading.Barrier(racers)
        self._lined_up = threading.local()
        self._turn = threading.Lock()

    def _line_up(self) -> None:
        if not getattr(self._lined_up, "done", False):
            self._lined_up.done = True
            self._ready.wait(timeout=10)

    def add(self, connection: Connection) -> None:
        self._line_up()
        with self._turn:
            super().add(connection)

    def replace(self, previous: Connection, updated: Connection) -> None:
        self._line_up()
        with self._turn:
            super().replace(previous, updated)


def race(racers: int, attempt: Callable[[int], object]) -> list[object]:
    results: list[object] = [None] * racers

    def run(index: int) -> None:
        try:
            results[index] = attempt(index)
        except Exception as exc:  # noqa: BLE001 - the outcome of each racer is what the test checks
            results[index] = exc

    threads = [threading.Thread(target=run, args=(index,)) for index in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


@pytest.fixture
def racing_service(tenant: Tenant) -> Callable[[int], Any]:
    settings = ConnectionsSettings.from_environ(os.environ)

    def build(racers: int) -> Any:
        repository = ReadsThenWritesInTurn(
            racers,
            table_name=settings.connections_table_name,
            tenancy_table_name=settings.tenancy_table_name,
            region=settings.aws_region,
        )
        service = wiring.connection_service(settings, InMemoryEventPublisher())
        service._connections = repository
        return service

    return build


def admin(tenant: Tenant) -> Principal:
    return Principal("racer", tenant.workspace_id, Role.ADMIN, None, platform_admin=False)


def test_concurrent_creates_of_one_name_admit_exactly_one(tenant: Tenant, racing_service: Callable[[int], Any]) -> None:
    racers = 4
    service = racing_service(racers)
    scope = ConnectionScope(tenant.workspace_id, tenant.environment_id)

    results = race(
        racers,
        lambda index: service.create(
            admin(tenant),
            scope,
            ConnectionCreate(
                name=["Shared", "shared", "SHARED", "Shared"][index], provider="openai", config={"apiKey": "k"}
            ),
        ),
    )

    created = [result for result in results if isinstance(result, Connection)]
    conflicts = [result for result in results if isinstance(result, Conflict)]
    assert (len(created), len(conflicts)) == (1, racers - 1)
    assert len(tenant.api.get(tenant.connections_path).body["items"]) == 1


def test_concurrent_unconditional_updates_are_all_applied(tenant: Tenant, racing_service: Callable[[int], Any]) -> None:
    racers = 3
    scope = ConnectionScope(tenant.workspace_id, tenant.environment_id)
    created = tenant.api.post(tenant.connections_path, {"name": "c", "provider": "openai", "config": {"apiKey": "k"}})
    connection_id = created.body["connectionId"]
    service = racing_service(racers)

    results = race(
        racers,
        lambda index: service.update(
            admin(tenant), scope, connection_id, ConnectionPatch(allowed_models=[f"model-{index}"]), None
        ),
    )

    assert all(isinstance(result, Connection) for result in results)
    final = tenant.api.get(f"{tenant.connections_path}/{connection_id}").body
    assert final["version"] == 1 + racers


def test_concurrent_conditional_updates_admit_one_and_refuse_the_rest(
    tenant: Tenant, racing_service: Callable[[int], Any]
) -> None:
    racers = 3
    scope = ConnectionScope(tenant.workspace_id, tenant.environment_id)
    created = tenant.api.post(tenant.connections_path, {"name": "c", "provider": "openai", "config": {"apiKey": "k"}})
    connection_id = created.body["connectionId"]
    service = racing_service(racers)

    results = race(
        racers,
        lambda index: service.update(
            admin(tenant), scope, connection_id, ConnectionPatch(description=f"writer {index}"), 1
        ),
    )

    assert sum(isinstance(result, Connection) for result in results) == 1
    assert sum(isinstance(result, PreconditionFailed) for result in results) == racers - 1
