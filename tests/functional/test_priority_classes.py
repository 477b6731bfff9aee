"""Priority classes through the real handlers on moto: a connection's classes and a key's class as the API
takes them, completions counted in the caller's class, refusals naming the class and share, the capacity
report per class, and bursts of many instances at once per class."""

import json
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from infra import system
from tests.event_fakes import InMemoryEventPublisher
from tests.functional.api import faults_in
from tests.functional.conftest import Tenant
from tests.functional.test_completions_concurrency import lambda_instance, race
from tests.loopback_providers import LoopbackProvider, loopback_provider
from vmx import wiring
from vmx.access.policy import Principal
from vmx.capacity.ledger import CounterScope, limits_for
from vmx.clock import utc_now
from vmx.completions.openai_models import ChatCompletionRequest
from vmx.errors import Conflict, NotFound
from vmx.settings import CompletionsSettings, TenancySettings
from vmx.storage.capacity_store import DynamoCapacityCounters
from vmx.storage.connection_store import DynamoConnectionRepository
from vmx.tenancy.models import Role
from vmx.use_cases.completions import CompletionOutcome
from vmx.use_cases.connections import ConnectionScope
from vmx.use_cases.refusals import OverCapacity
from vmx.use_cases.tenancy import TenancyService

# production is guaranteed 60 % and may use all; batch is guaranteed nothing and capped at 40 %
CLASSES: dict[str, Any] = {
    "classes": [
        {"name": "production", "guaranteedPercent": 60},
        {"name": "batch", "maximumPercent": 40},
    ],
    "defaultClass": "production",
}


@pytest.fixture
def provider() -> Iterator[LoopbackProvider]:
    with loopback_provider("openai") as server:
        yield server


def connect(tenant: Tenant, provider: LoopbackProvider, **fields: Any) -> dict[str, Any]:
    body = {
        "name": "shared",
        "provider": "openai",
        "config": {"apiKey": provider.api_key, "baseUrl": provider.base_url},
        # a day: a test's requests cannot straddle its boundary, as a minute's could
        "capacity": [{"period": "day", "requests": 10}],
        "prioritization": CLASSES,
        **fields,
    }
    response = tenant.api.post(tenant.connections_path, body)
    assert response.status == 201, response.text
    created: dict[str, Any] = response.body
    return created


def gateway_key(tenant: Tenant, priority_class: str | None) -> str:
    response = tenant.api.post(
        f"{tenant.workspace_path}/api-keys",
        {"name": f"{priority_class} traffic", "role": "gateway", "priorityClass": priority_class},
    )
    assert response.status == 201, response.text
    token: str = response.body["apiKey"]
    return token


def ask(tenant: Tenant, key: str) -> Any:
    body = {"model": "shared/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    path = f"{tenant.workspace_path}/environments/{tenant.environment_id}/chat/completions"
    return tenant.api.as_key(key).post(path, body)


# --- the API ---


def test_a_connection_keeps_its_classes_and_an_update_can_remove_them(
    tenant: Tenant, provider: LoopbackProvider
) -> None:
    created = connect(tenant, provider)
    path = f"{tenant.connections_path}/{created['connectionId']}"

    shown = tenant.api.get(path).body["prioritization"]
    removed = tenant.api.patch(path, {"prioritization": None}).body
    kept_on_other_changes = tenant.api.patch(path, {"prioritization": CLASSES}).body
    renamed = tenant.api.patch(path, {"description": "shared by two teams"}).body

    assert shown == {
        "classes": [
            {"name": "production", "guaranteedPercent": 60, "maximumPercent": 100},
            {"name": "batch", "guaranteedPercent": 0, "maximumPercent": 40},
        ],
        "defaultClass": "production",
    }
    assert removed["prioritization"] is None
    assert kept_on_other_changes["prioritization"] == renamed["prioritization"] == shown


@pytest.mark.parametrize(
    ("prioritization", "field", "says"),
    [
        (
            {
                "classes": [{"name": "a", "guaranteedPercent": 70}, {"name": "b", "guaranteedPercent": 40}],
                "defaultClass": "a",
            },
            "prioritization.classes",
            "sum to 110",
        ),
        (
            {"classes": [{"name": "a", "guaranteedPercent": 50, "maximumPercent": 30}], "defaultClass": "a"},
            "prioritization.classes[0].maximumPercent",
            "below guaranteedPercent (50)",
        ),
        ({"classes": [{"name": "a"}], "defaultClass": "b"}, "prioritization.defaultClass", "not one of the classes"),
        ({"classes": [{"name": "a"}, {"name": "a"}], "defaultClass": "a"}, "prioritization.classes", "repeated: a"),
        (
            {"classes": [{"name": "Batch_Jobs"}], "defaultClass": "Batch_Jobs"},
            "prioritization.classes[0].name",
            "lower-case",
        ),
        (
            {"classes": [{"name": "a", "guaranteedPercent": 101}], "defaultClass": "a"},
            "prioritization.classes[0].guaranteedPercent",
            "100",
        ),
        ({"classes": [], "defaultClass": "a"}, "prioritization.classes", "at least 1"),
    ],
)
def test_classes_that_cannot_hold_are_refused_naming_the_field(
    tenant: Tenant, provider: LoopbackProvider, prioritization: dict[str, Any], field: str, says: str
) -> None:
    body = {"name": "x", "provider": "openai", "config": {"apiKey": "sk-test"}, "prioritization": prioritization}
    created = connect(tenant, provider, name="fine")

    refused = tenant.api.post(tenant.connections_path, body)
    refused_update = tenant.api.patch(
        f"{tenant.connections_path}/{created['connectionId']}", {"prioritization": prioritization}
    )

    for answer in (refused, refused_update):
        assert answer.status == 400, answer.text
        [detail] = [detail for detail in answer.error["details"] if detail["field"] == field]
        assert says in detail["message"]
    assert tenant.api.get(f"{tenant.connections_path}/{created['connectionId']}").body["prioritization"] == {
        **CLASSES,
        "classes": [
            {"maximumPercent": 100, **CLASSES["classes"][0]},
            {"guaranteedPercent": 0, **CLASSES["classes"][1]},
        ],
    }


def test_a_key_names_its_class_and_a_viewer_key_cannot(tenant: Tenant) -> None:
    keys = f"{tenant.workspace_path}/api-keys"

    created = tenant.api.post(keys, {"name": "batch jobs", "role": "gateway", "priorityClass": "batch"})
    viewer = tenant.api.post(keys, {"name": "reader", "role": "viewer", "priorityClass": "batch"})
    badly_named = tenant.api.post(keys, {"name": "odd", "role": "gateway", "priorityClass": "Batch!"})

    assert (created.status, created.body["priorityClass"]) == (201, "batch")
    listed = {key["keyId"]: key for key in tenant.api.get(keys).body["items"]}
    assert listed[created.body["keyId"]]["priorityClass"] == "batch"
    assert viewer.status == 400 and viewer.error["details"][0]["field"] == "priorityClass"
    assert badly_named.status == 400 and badly_named.error["details"][0]["field"] == "priorityClass"


# --- completions in a class ---


def test_a_class_at_its_maximum_gets_a_429_naming_class_and_share(tenant: Tenant, provider: LoopbackProvider) -> None:
    connect(tenant, provider)
    batch = gateway_key(tenant, "batch")

    with faults_in(system.COMPLETIONS) as recorded:
        answers = [ask(tenant, batch) for _ in range(5)]

    assert [answer.status for answer in answers] == [200] * 4 + [429]
    first, refused = answers[0], answers[4]
    # the headers tell batch's own room: 4 at most, 3 left after the first
    assert (first.headers["x-ratelimit-limit-requests"], first.headers["x-ratelimit-remaining-requests"]) == ("4", "3")
    assert refused.error["message"] == (
        "priority class 'batch' of AI connection 'shared' reached its maximum share of the per-day requests limit: "
        "4 requests"
    )
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert first.headers["x-vmx-priority-class"] == refused.headers["x-vmx-priority-class"] == "batch"
    assert 1 <= int(refused.headers["retry-after"]) <= 86_400
    details = [
        json.loads(entry["Detail"])
        for body in recorded.of("eventbridge.PutEvents")
        for entry in body["Entries"]
        if entry["DetailType"] == "CompletionRecorded"
    ]
    assert {detail["priorityClass"] for detail in details} == {"batch"}
    [limit] = [detail["refusedLimit"] for detail in details if detail["refusedByCapacity"]]
    assert limit == {
        "period": "day",
        "kind": "requests",
        "limit": 4,
        "dimension": None,
        "priorityClass": "batch",
        "share": "maximum",
    }


def test_production_gets_its_guarantee_after_others_took_the_shared_part(
    tenant: Tenant, provider: LoopbackProvider
) -> None:
    connect(tenant, provider)
    batch, production = gateway_key(tenant, "batch"), gateway_key(tenant, "production")
    for _ in range(4):
        assert ask(tenant, batch).status == 200

    production_answers = [ask(tenant, production) for _ in range(7)]

    assert [answer.status for answer in production_answers] == [200] * 6 + [429]
    # the connection's own limit refused the last one: all 10 are in use
    assert production_answers[-1].error["message"] == "AI connection 'shared' reached its per-day limit of 10 requests"


def test_a_key_without_a_class_or_with_one_the_connection_lacks_counts_in_the_default_class(
    tenant: Tenant, provider: LoopbackProvider
) -> None:
    created = connect(tenant, provider, prioritization={**CLASSES, "defaultClass": "batch"})
    classless, elsewhere = gateway_key(tenant, None), gateway_key(tenant, "nightly")

    answers = [ask(tenant, key) for key in (classless, elsewhere, classless, elsewhere, classless)]

    # both count in batch (the default here), capped at 4, and are told so
    assert [answer.status for answer in answers] == [200] * 4 + [429]
    assert {answer.headers["x-vmx-priority-class"] for answer in answers} == {"batch"}
    assert "priority class 'batch'" in answers[-1].error["message"]
    report = tenant.api.get(f"{tenant.connections_path}/{created['connectionId']}/capacity").body
    [day] = report["windows"]
    assert day["classes"] == [
        {
            "name": "production",
            "requestsUsed": 0,
            "requestsGuaranteed": 6,
            "requestsMaximum": 10,
            "requestsRemaining": 6,
            "tokensUsed": 0,
            "tokensGuaranteed": None,
            "tokensMaximum": None,
            "tokensRemaining": None,
        },
        {
            "name": "batch",
            "requestsUsed": 4,
            "requestsGuaranteed": 0,
            "requestsMaximum": 4,
            "requestsRemaining": 0,
            "tokensUsed": 0,
            "tokensGuaranteed": None,
            "tokensMaximum": None,
            "tokensRemaining": None,
        },
    ]


def test_per_ip_windows_are_not_divided_among_classes(tenant: Tenant, provider: LoopbackProvider) -> None:
    created = connect(
        tenant,
        provider,
        capacity=[{"period": "day", "requests": 10}, {"period": "day", "requests": 3, "dimension": "source-ip"}],
    )
    batch = gateway_key(tenant, "batch")

    answers = [ask(tenant, batch) for _ in range(4)]

    assert [answer.status for answer in answers] == [200] * 3 + [429]
    assert answers[-1].error["message"].startswith("AI connection 'shared' reached its per-day limit of 3 requests")
    windows = tenant.api.get(f"{tenant.connections_path}/{created['connectionId']}/capacity").body["windows"]
    assert [window["classes"] is None for window in windows] == [False, True]


# --- many instances at once ---

INSTANCES = 12
REQUESTS_PER_INSTANCE = 3


def burst(
    tenant: Tenant, classes_per_instance: list[str], turn: threading.Lock, events: InMemoryEventPublisher
) -> dict[str, list[object]]:
    """Each instance (a CompletionService with a DynamoDB client of its own) sends its requests in its class,
    all starting at once; the outcomes by class."""
    now = utc_now()
    scope = ConnectionScope(tenant.workspace_id, tenant.environment_id)
    request = ChatCompletionRequest.model_validate(
        {"model": "shared/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    )
    instances = [
        (
            lambda_instance(turn, now, events),
            Principal("racer", tenant.workspace_id, Role.GATEWAY, None, False, priority_class),
        )
        for priority_class in classes_per_instance
    ]

    raced, log = race(instances, scope, request, REQUESTS_PER_INSTANCE)

    assert log.failed == []
    outcomes: dict[str, list[object]] = {name: [] for name in classes_per_instance}
    for principal, outcome in raced:
        outcomes[str(principal.priority_class)].append(outcome)
    return outcomes


def admitted(outcomes: list[object]) -> int:
    return sum(isinstance(outcome, CompletionOutcome) for outcome in outcomes)


def stored_counts(tenant: Tenant, connection_id: str) -> tuple[int, list[int]]:
    settings = CompletionsSettings.from_environ(os.environ)
    connection = DynamoConnectionRepository(settings.connections_table_name, settings.aws_region).get(
        tenant.workspace_id, tenant.environment_id, connection_id
    )
    assert connection is not None and connection.prioritization is not None
    counters = DynamoCapacityCounters(settings.capacity_table_name, settings.aws_region)
    [window] = counters.usage(
        CounterScope(connection_id, None),
        limits_for(connection.capacity, None),
        utc_now(),
        connection.prioritization.classes,
    )
    return window.requests_used, [usage.requests_used for usage in window.classes]


def test_a_burst_of_batch_alone_never_passes_its_maximum_and_production_then_gets_its_guarantee(
    tenant: Tenant, provider: LoopbackProvider
) -> None:
    created = connect(tenant, provider)
    turn, events = threading.Lock(), InMemoryEventPublisher()

    batch_alone = burst(tenant, ["batch"] * INSTANCES, turn, events)
    production_after = burst(tenant, ["production"] * INSTANCES, turn, events)

    assert admitted(batch_alone["batch"]) == 4
    assert admitted(production_after["production"]) == 6
    assert len(provider.requests) == 10
    assert stored_counts(tenant, created["connectionId"]) == (10, [6, 4])


def test_a_mixed_burst_keeps_both_shares(tenant: Tenant, provider: LoopbackProvider) -> None:
    created = connect(tenant, provider)
    turn, events = threading.Lock(), InMemoryEventPublisher()

    outcomes = burst(tenant, ["batch", "production"] * (INSTANCES // 2), turn, events)

    batch, production = admitted(outcomes["batch"]), admitted(outcomes["production"])
    assert batch <= 4 and production >= 6 and batch + production == 10
    refusals = [outcome for outcome in outcomes["batch"] if isinstance(outcome, OverCapacity)]
    assert all(refusal.retry_after_seconds for refusal in refusals)
    assert stored_counts(tenant, created["connectionId"]) == (10, [production, batch])


def test_a_keys_class_can_change_without_a_new_key(tenant: Tenant, provider: LoopbackProvider) -> None:
    connect(tenant, provider)
    key = gateway_key(tenant, None)
    key_id = tenant.api.get(f"{tenant.workspace_path}/api-keys").body["items"][0]["keyId"]
    path = f"{tenant.workspace_path}/api-keys/{key_id}"

    changed = tenant.api.patch(path, {"priorityClass": "batch"})
    # the key has not been used yet, so no cached authorizer answer stands for its old class
    answers = [ask(tenant, key) for _ in range(5)]
    cleared = tenant.api.patch(path, {"priorityClass": None})
    unchanged = tenant.api.patch(path, {})

    assert (changed.status, changed.body["priorityClass"]) == (200, "batch")
    assert [answer.status for answer in answers] == [200] * 4 + [429]
    assert cleared.body["priorityClass"] is None and unchanged.body["priorityClass"] is None
    assert tenant.api.get(path).body["priorityClass"] is None


def test_a_keys_class_change_is_refused_where_it_cannot_apply(tenant: Tenant) -> None:
    keys = f"{tenant.workspace_path}/api-keys"
    viewer = tenant.api.post(keys, {"name": "reader", "role": "viewer"}).body["keyId"]
    revoked = tenant.api.post(keys, {"name": "gone", "role": "gateway"}).body["keyId"]
    assert tenant.api.delete(f"{keys}/{revoked}").status == 204

    for_viewer = tenant.api.patch(f"{keys}/{viewer}", {"priorityClass": "batch"})
    for_revoked = tenant.api.patch(f"{keys}/{revoked}", {"priorityClass": "batch"})
    badly_named = tenant.api.patch(f"{keys}/{viewer}", {"priorityClass": "Batch!"})
    other_field = tenant.api.patch(f"{keys}/{viewer}", {"role": "admin"})
    by_an_editor = tenant.as_role(Role.EDITOR).patch(f"{keys}/{revoked}", {"priorityClass": "batch"})

    assert (for_viewer.status, for_viewer.error["details"][0]["field"]) == (400, "priorityClass")
    assert (for_revoked.status, for_revoked.error["code"]) == (409, "key_revoked")
    assert tenant.api.get(f"{keys}/{revoked}").body["revokedAt"] is not None
    assert (badly_named.status, badly_named.error["details"][0]["field"]) == (400, "priorityClass")
    assert (other_field.status, other_field.error["details"][0]["field"]) == (400, "role")
    assert by_an_editor.status == 403


def test_a_class_change_racing_a_revoke_never_brings_the_key_back(tenant: Tenant, tenancy: TenancyService) -> None:
    """The change is read before the revoke and written after it: its one conditional update refuses."""
    repository = wiring.tenancy_repository(TenancySettings.from_environ(os.environ))
    issued = tenancy.issue_api_key(tenant.workspace_id, "racer", Role.GATEWAY, None, False, "test")
    read_before_the_revoke = repository.get_api_key(issued.key.key_id)
    assert read_before_the_revoke is not None
    tenancy.revoke_api_key(
        Principal("admin", tenant.workspace_id, Role.ADMIN, None, False), tenant.workspace_id, issued.key.key_id
    )

    with pytest.raises(Conflict) as refused:
        repository.set_api_key_class(read_before_the_revoke.key_id, "batch")
    with pytest.raises(NotFound):
        repository.set_api_key_class("00000000-0000-4000-8000-000000000000", "batch")

    assert refused.value.code == "key_revoked"
    kept = repository.get_api_key(issued.key.key_id)
    assert kept is not None and kept.revoked_at is not None and kept.priority_class is None


def test_a_providers_own_429_still_names_the_callers_class(tenant: Tenant, provider: LoopbackProvider) -> None:
    connect(tenant, provider)
    provider.fail_with(429, "slow down", retry_after="3")

    throttled = ask(tenant, gateway_key(tenant, "batch"))

    # the provider's limits are what refused it; the class is still the one it counted in
    assert (throttled.status, throttled.headers["retry-after"]) == (429, "3")
    assert throttled.headers["x-ratelimit-remaining-requests"] == "0"
    assert throttled.headers["x-vmx-priority-class"] == "batch"
