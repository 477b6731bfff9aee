"""Events on the local stack: a completion through a loopback provider that reports rate limits makes
discoveredCapacity appear on the connection, and usage shows the request, within a couple of seconds."""

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from tests.loopback_providers import LoopbackProvider, loopback_provider

DELIVERY_SECONDS = 15


def api(local_stack: dict[str, str]) -> tuple[str, dict[str, str]]:
    base = f"{local_stack['baseUrl']}/api/v1/workspaces/{local_stack['workspaceId']}/environments/{local_stack['environmentId']}"
    return base, {"Authorization": f"Bearer {local_stack['apiKey']}"}


def eventually(check: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + DELIVERY_SECONDS
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.25)


def connect_and_ask(local_stack: dict[str, str], provider: LoopbackProvider, kind: str, model: str) -> str:
    base, headers = api(local_stack)
    name = f"{kind}-{uuid.uuid4().hex[:8]}"
    created = requests.post(
        f"{base}/ai-connections",
        json={"name": name, "provider": kind, "config": {"apiKey": provider.api_key, "baseUrl": provider.base_url}},
        headers=headers,
        timeout=10,
    )
    assert created.status_code == 201, created.text
    answered = requests.post(
        f"{base}/chat/completions",
        json={"model": f"{name}/{model}", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10},
        headers=headers,
        timeout=20,
    )
    assert answered.status_code == 200, answered.text
    connection_id: str = created.json()["connectionId"]
    return connection_id


def discovered(local_stack: dict[str, str], connection_id: str, model: str) -> Any:
    base, headers = api(local_stack)
    connection = requests.get(f"{base}/ai-connections/{connection_id}", headers=headers, timeout=10).json()
    return ((connection.get("discoveredCapacity") or {}).get("models") or {}).get(model)


@pytest.fixture
def openai_provider() -> Iterator[LoopbackProvider]:
    with loopback_provider("openai") as server:
        yield server


@pytest.fixture
def groq_provider() -> Iterator[LoopbackProvider]:
    with loopback_provider("groq") as server:
        yield server


def test_openai_limits_are_discovered_per_minute(
    local_stack: dict[str, str], openai_provider: LoopbackProvider
) -> None:
    connection_id = connect_and_ask(local_stack, openai_provider, "openai", "gpt-4o-mini")

    found = eventually(lambda: discovered(local_stack, connection_id, "gpt-4o-mini"))

    assert found is not None, "discoveredCapacity did not appear"
    assert found["source"] == "response-headers"
    assert {"period": "minute", "requests": 10000, "tokens": 30000000}.items() <= found["capacity"][0].items()


def test_groq_requests_are_per_day_and_tokens_per_minute(
    local_stack: dict[str, str], groq_provider: LoopbackProvider
) -> None:
    connection_id = connect_and_ask(local_stack, groq_provider, "groq", "llama-3.3-70b-versatile")

    found = eventually(lambda: discovered(local_stack, connection_id, "llama-3.3-70b-versatile"))

    assert found is not None, "discoveredCapacity did not appear"
    by_period = {limit["period"]: limit for limit in found["capacity"]}
    assert by_period["day"].get("requests") is not None
    assert by_period["minute"].get("tokens") is not None


def test_usage_shows_the_request(local_stack: dict[str, str], openai_provider: LoopbackProvider) -> None:
    connection_id = connect_and_ask(local_stack, openai_provider, "openai", "gpt-4o-mini")
    base, headers = api(local_stack)
    now = datetime.now(UTC)
    window = {
        "from": (now - timedelta(hours=2)).isoformat(),
        "to": (now + timedelta(hours=1)).isoformat(),
        "granularity": "hour",
    }

    def buckets() -> Any:
        response = requests.get(
            f"{base}/ai-connections/{connection_id}/usage", params=window, headers=headers, timeout=10
        )
        assert response.status_code == 200, response.text
        return response.json()["buckets"]

    found = eventually(buckets)

    assert found, "usage did not appear"
    assert sum(bucket["requests"] for bucket in found) == 1
    assert sum(bucket["totalTokens"] for bucket in found) > 0


def test_bad_usage_ranges_are_400(local_stack: dict[str, str]) -> None:
    base, headers = api(local_stack)
    path = f"{base}/ai-connections/{uuid.uuid4()}/usage"

    backwards = requests.get(
        path, params={"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, headers=headers, timeout=10
    )
    naive = requests.get(
        path, params={"from": "2026-01-01T00:00:00", "to": "2026-01-02T00:00:00Z"}, headers=headers, timeout=10
    )

    assert backwards.status_code == 400
    assert naive.status_code == 400
    assert naive.json()["error"]["details"][0]["field"] == "from"
