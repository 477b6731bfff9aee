"""The official openai SDK against the local stack, through a connection to a loopback provider."""

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import requests

from tests.loopback_providers import LOOPBACK_ANSWER, LOOPBACK_PIECES, LoopbackProvider, loopback_provider


@pytest.fixture(scope="module")
def provider() -> Iterator[LoopbackProvider]:
    with loopback_provider("openai") as server:
        yield server


def connect(local_stack: dict[str, str], provider: LoopbackProvider, **fields: Any) -> str:
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    url = (
        f"{local_stack['baseUrl']}/api/v1/workspaces/{local_stack['workspaceId']}"
        f"/environments/{local_stack['environmentId']}/ai-connections"
    )
    body: dict[str, Any] = {
        "name": name,
        "provider": "openai",
        "config": {"apiKey": provider.api_key, "baseUrl": provider.base_url},
    }
    response = requests.post(
        url, json={**body, **fields}, headers={"Authorization": f"Bearer {local_stack['apiKey']}"}, timeout=10
    )
    assert response.status_code == 201, response.text
    return name


@pytest.fixture
def client(local_stack: dict[str, str]) -> openai.OpenAI:
    base_url = (
        f"{local_stack['baseUrl']}/api/v1/workspaces/{local_stack['workspaceId']}"
        f"/environments/{local_stack['environmentId']}"
    )
    # no retries: a 429 must surface, not be waited out
    return openai.OpenAI(base_url=base_url, api_key=local_stack["apiKey"], max_retries=0, timeout=20)


def test_a_completion(client: openai.OpenAI, local_stack: dict[str, str], provider: LoopbackProvider) -> None:
    name = connect(local_stack, provider)

    completion = client.chat.completions.create(
        model=f"{name}/gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}], max_tokens=20
    )

    assert completion.choices[0].message.content == LOOPBACK_ANSWER
    assert completion.model == f"{name}/gpt-4o-mini"
    assert completion.usage is not None and completion.usage.total_tokens > 0


def test_a_stream(client: openai.OpenAI, local_stack: dict[str, str], provider: LoopbackProvider) -> None:
    name = connect(local_stack, provider)

    stream = client.chat.completions.create(
        model=f"{name}/gpt-4o-mini",
        messages=[{"role": "user", "content": "Say hello"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == LOOPBACK_ANSWER
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


def test_the_model_list(client: openai.OpenAI, local_stack: dict[str, str], provider: LoopbackProvider) -> None:
    name = connect(local_stack, provider, allowedModels=["gpt-4o", "gpt-4o-mini"])

    models = {model.id for model in client.models.list()}

    assert {f"{name}/gpt-4o", f"{name}/gpt-4o-mini"} <= models


def test_spent_capacity_raises_rate_limit_error(
    client: openai.OpenAI, local_stack: dict[str, str], provider: LoopbackProvider
) -> None:
    # a day window: the two requests cannot straddle its boundary, as they could a minute's
    name = connect(local_stack, provider, capacity=[{"period": "day", "requests": 1}])
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
    client.chat.completions.create(model=f"{name}/gpt-4o-mini", messages=messages)

    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model=f"{name}/gpt-4o-mini", messages=messages)

    assert f"AI connection '{name}' reached its per-day limit of 1 requests" in str(refused.value)
    assert 1 <= int(refused.value.response.headers["retry-after"]) <= 86_400
    assert refused.value.response.headers["x-ratelimit-remaining-requests"] == "0"


def readme_example(marker: str) -> str:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    return readme.split(f"<!-- e2e:{marker} -->")[1].split("<!-- e2e:end -->")[0].split("```python")[1].split("```")[0]


def readme_names(local_stack: dict[str, str], provider: LoopbackProvider) -> dict[str, Any]:
    """What the README's examples name, with an `openai-prod` connection in a fresh environment of its own."""
    headers = {"Authorization": f"Bearer {local_stack['apiKey']}"}
    environment = requests.post(
        f"{local_stack['baseUrl']}/api/v1/workspaces/{local_stack['workspaceId']}/environments",
        json={"name": f"sdk-example-{uuid.uuid4().hex[:8]}"},
        headers=headers,
        timeout=10,
    ).json()["environmentId"]
    connection: dict[str, Any] = {
        "name": "openai-prod",
        "provider": "openai",
        "config": {"apiKey": provider.api_key, "baseUrl": provider.base_url},
    }
    created = requests.post(
        f"{local_stack['baseUrl']}/api/v1/workspaces/{local_stack['workspaceId']}/environments/{environment}/ai-connections",
        json=connection,
        headers=headers,
        timeout=10,
    )
    assert created.status_code == 201, created.text
    return {
        "BASE_URL": local_stack["baseUrl"],
        "WS": local_stack["workspaceId"],
        "ENV": environment,
        "API_KEY": local_stack["apiKey"],
    }


def test_the_readme_sdk_example_runs(local_stack: dict[str, str], provider: LoopbackProvider) -> None:
    names = readme_names(local_stack, provider)

    exec(compile(readme_example("sdk"), "README.md", "exec"), names)  # noqa: S102 - the README's own example

    assert "openai-prod/gpt-4o-mini" in names["models"]


def test_the_readme_stream_example_prints_each_piece_as_the_provider_sends_it(
    local_stack: dict[str, str], provider: LoopbackProvider
) -> None:
    names = readme_names(local_stack, provider)
    exec(compile(readme_example("sdk"), "README.md", "exec"), names)  # noqa: S102 - defines `client`
    provider.stream_with(list(LOOPBACK_PIECES))
    gate = provider.hold_after(1)
    printed: list[tuple[str, int]] = []

    def recording_print(*values: Any, **_: Any) -> None:
        """What the example prints, with how many pieces the provider had sent by then."""
        text = "".join(str(value) for value in values)
        printed.append((text, len(provider.sent_pieces)))
        if text:
            gate.set()  # the first piece is on the client's screen: let the provider go on

    exec(compile(readme_example("stream"), "README.md", "exec"), {**names, "print": recording_print})  # noqa: S102

    pieces = [(text, sent) for text, sent in printed if text]
    assert pieces[0] == (LOOPBACK_PIECES[0], 1)
    assert "".join(text for text, _ in pieces[:-1]) == LOOPBACK_ANSWER
    assert pieces[-1][0].strip().endswith("tokens")
