"""Many Lambda instances at once on one connection with a small minute limit: exactly the limit is
admitted, every other request is a 429 with Retry-After, and the stored counters match.

Each "instance" is a CompletionService with its own DynamoDB client, as separate Lambda instances would
have. moto is not a concurrent database, so only its calls take turns (OneCallAtATime); the instances
plan, retry and call the provider concurrently, and what keeps the limit is the conditions in the writes.
"""

import os
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, cast

import boto3
import pytest

from tests.event_fakes import InMemoryEventPublisher
from tests.functional.capacity.test_concurrent_admission import OneCallAtATime
from tests.functional.conftest import Tenant
from tests.loopback_providers import LoopbackProvider, loopback_provider
from vmx import wiring
from vmx.access.policy import Principal
from vmx.afterwards import Afterwards
from vmx.capacity.ledger import CounterScope, limits_for
from vmx.clock import utc_now
from vmx.completions.openai_models import ChatCompletionRequest
from vmx.deadline import Deadline
from vmx.events.models import CompletionRecorded
from vmx.settings import CompletionsSettings
from vmx.storage.capacity_store import DynamoCapacityCounters
from vmx.storage.connection_store import DynamoConnectionRepository
from vmx.tenancy.models import Role
from vmx.use_cases.completions import CompletionOutcome, CompletionService
from vmx.use_cases.connections import ConnectionScope
from vmx.use_cases.refusals import OverCapacity

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

INSTANCES = 16
REQUESTS_PER_INSTANCE = 3
MINUTE_LIMIT = 10


@pytest.fixture
def provider() -> Iterator[LoopbackProvider]:
    with loopback_provider("openai") as server:
        yield server


class FailureLog:
    def __init__(self) -> None:
        self.failed: list[dict[str, object] | None] = []

    def error(self, msg: object, *args: object, extra: dict[str, object] | None = None) -> None:
        self.failed.append(extra)

    def exception(self, msg: object, *args: object, extra: dict[str, object] | None = None) -> None:
        self.failed.append(extra)


def lambda_instance(turn: threading.Lock, now: datetime, events: InMemoryEventPublisher) -> CompletionService:
    settings = CompletionsSettings.from_environ(os.environ)
    service = wiring.gateway(settings, events).completions
    # one instant for the whole race, so it can never straddle a minute boundary
    service._clock = lambda: now
    client = OneCallAtATime(boto3.client("dynamodb", region_name=settings.aws_region), turn)
    service._counters = DynamoCapacityCounters(
        settings.capacity_table_name, settings.aws_region, client=cast("DynamoDBClient", client)
    )
    return service


def race(
    instances: list[tuple[CompletionService, Principal]],
    scope: ConnectionScope,
    request: ChatCompletionRequest,
    requests_per_instance: int,
) -> tuple[list[tuple[Principal, object]], FailureLog]:
    """Each instance sends its requests as its principal, all starting at once, and runs each answer's work after
    it; every outcome (a CompletionOutcome, or the OverCapacity refusal) with the principal that got it, and what
    that work logged as failed."""
    log = FailureLog()
    outcomes: list[tuple[Principal, object]] = []
    outcomes_lock = threading.Lock()
    start = threading.Barrier(len(instances))

    def serve(instance: CompletionService, principal: Principal) -> None:
        start.wait(timeout=10)
        for _ in range(requests_per_instance):
            afterwards = Afterwards()
            try:
                outcome: object = instance.complete(
                    principal, scope, request, "198.51.100.9", Deadline.after(30), afterwards
                )
            except OverCapacity as refused:
                outcome = refused
            afterwards.run(log, Deadline.after(30))
            with outcomes_lock:
                outcomes.append((principal, outcome))

    threads = [threading.Thread(target=serve, args=instance) for instance in instances]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes, log


def test_concurrent_instances_admit_exactly_the_limit(tenant: Tenant, provider: LoopbackProvider) -> None:
    created = tenant.api.post(
        tenant.connections_path,
        {
            "name": "busy",
            "provider": "openai",
            "config": {"apiKey": provider.api_key, "baseUrl": provider.base_url},
            "capacity": [{"period": "minute", "requests": MINUTE_LIMIT}],
        },
    ).body
    principal = Principal("racer", tenant.workspace_id, Role.GATEWAY, None, platform_admin=False)
    scope = ConnectionScope(tenant.workspace_id, tenant.environment_id)
    request = ChatCompletionRequest.model_validate(
        {"model": "busy/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    )
    turn, now, events = threading.Lock(), utc_now(), InMemoryEventPublisher()
    instances = [(lambda_instance(turn, now, events), principal) for _ in range(INSTANCES)]

    raced, log = race(instances, scope, request, REQUESTS_PER_INSTANCE)

    outcomes = [outcome for _, outcome in raced]
    admitted = [outcome for outcome in outcomes if isinstance(outcome, CompletionOutcome)]
    refused = [outcome for outcome in outcomes if isinstance(outcome, OverCapacity)]
    assert len(outcomes) == INSTANCES * REQUESTS_PER_INSTANCE
    assert len(admitted) == MINUTE_LIMIT
    assert len(refused) == len(outcomes) - MINUTE_LIMIT
    assert all(refusal.retry_after_seconds is not None and refusal.retry_after_seconds >= 1 for refusal in refused)
    assert len(provider.requests) == MINUTE_LIMIT
    assert log.failed == []
    statuses = [event.status for event in events.of_type(CompletionRecorded)]
    assert sorted(statuses) == [200] * MINUTE_LIMIT + [429] * (len(outcomes) - MINUTE_LIMIT)
    settings = CompletionsSettings.from_environ(os.environ)
    counters = DynamoCapacityCounters(settings.capacity_table_name, settings.aws_region)
    connection = DynamoConnectionRepository(settings.connections_table_name, settings.aws_region).get(
        tenant.workspace_id, tenant.environment_id, created["connectionId"]
    )
    assert connection is not None
    [minute] = counters.usage(CounterScope(created["connectionId"], None), limits_for(connection.capacity, None), now)
    assert minute.requests_used == MINUTE_LIMIT
