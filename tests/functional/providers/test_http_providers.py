"""OpenAI, Groq, Perplexity, Anthropic and Gemini adapters over real HTTP, against loopback fakes."""

import json
import socket
import time
from typing import Any

import pytest
from pydantic import SecretStr

from tests.functional.providers.conftest import HTTP_PROVIDERS, NOW, call_through
from tests.loopback_providers import (
    ANTHROPIC_RATE_LIMIT_HEADERS,
    LOOPBACK_ANSWER,
    OPENAI_RATE_LIMIT_HEADERS,
    Kind,
    anthropic_message,
    gemini_response,
    loopback_provider,
    openai_completion,
)
from tests.unit.completions.samples import CLOCK_TOOL, TOOL_ROUND_TRIP, WEATHER_TOOL, chat_request
from vmx.completions.anthropic import messages_body
from vmx.completions.gemini import generate_content_body
from vmx.completions.providers import ProviderCall, ProviderError, Transports, call_provider
from vmx.providers.catalog import ProviderId

PATHS = {
    "openai": "/v1/chat/completions",
    "groq": "/openai/v1/chat/completions",
    "perplexity": "/chat/completions",
    "anthropic": "/v1/messages",
    "gemini": "/v1beta/models/gemini-2.5-flash:generateContent",
}
RATE_LIMIT_HEADERS = {"openai": OPENAI_RATE_LIMIT_HEADERS, "groq": OPENAI_RATE_LIMIT_HEADERS}
each_provider = pytest.mark.parametrize(("kind", "provider", "model"), HTTP_PROVIDERS)


@each_provider
def test_each_provider_answers_in_openais_shape_with_its_rate_limit_headers(
    kind: Kind, provider: ProviderId, model: str, transports: Transports
) -> None:
    with loopback_provider(kind) as server:
        result = call_through(server, provider, model, chat_request(), transports)

    assert [request.path for request in server.requests] == [PATHS[kind]]
    answer = result.completion
    assert answer.choices[0].message.content == LOOPBACK_ANSWER
    assert answer.choices[0].finish_reason == "stop"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.usage.total_tokens) == (12, 7, 19)
    assert model in answer.model
    expected_limits = ANTHROPIC_RATE_LIMIT_HEADERS if kind == "anthropic" else RATE_LIMIT_HEADERS.get(kind, {})
    assert result.rate_limit_headers == expected_limits


def test_openai_compatible_providers_get_the_request_as_the_client_sent_it(transports: Transports) -> None:
    request = chat_request(
        TOOL_ROUND_TRIP,
        tools=[WEATHER_TOOL],
        tool_choice="auto",
        stream=True,
        stream_options={"include_usage": True},
        seed=7,
        response_format={"type": "text"},
        user="user-1",
    )

    with loopback_provider("openai") as server:
        call_through(server, ProviderId.OPENAI, "gpt-4o-mini", request, transports)

    sent = server.requests[0]
    assert sent.headers["authorization"] == f"Bearer {server.api_key}"
    assert sent.body == {
        "model": "gpt-4o-mini",
        "messages": TOOL_ROUND_TRIP,
        "tools": [WEATHER_TOOL],
        "tool_choice": "auto",
        "seed": 7,
        "response_format": {"type": "text"},
        "user": "user-1",
    }


def test_a_compatible_providers_extras_are_kept_and_its_gaps_filled(transports: Transports) -> None:
    body = openai_completion("x" * 40, model="sonar")
    del body["usage"], body["id"]
    body["choices"][0]["finish_reason"] = "eos"
    body["citations"] = ["https://example.com/source"]

    with loopback_provider("perplexity") as server:
        server.respond_with(body)
        answer = call_through(server, ProviderId.PERPLEXITY, "sonar", chat_request(), transports).completion

    assert answer.choices[0].finish_reason == "stop"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (8, 10)
    assert answer.id.startswith("chatcmpl-")
    assert answer.model_dump()["citations"] == ["https://example.com/source"]


def test_anthropic_gets_the_translated_conversation_and_its_tool_use_comes_back(transports: Transports) -> None:
    request = chat_request(TOOL_ROUND_TRIP, tools=[WEATHER_TOOL, CLOCK_TOOL], user="user-1")
    tool_use = {"id": "toolu_1", "name": "get_weather", "input": {"city": "Paris", "unit": "c"}}

    with loopback_provider("anthropic") as server:
        server.respond_with(anthropic_message(None, tool_uses=[tool_use], stop_reason="tool_use"))
        answer = call_through(server, ProviderId.ANTHROPIC, "claude-sonnet-4-5", request, transports).completion

    sent = server.requests[0]
    assert sent.headers["x-api-key"] == server.api_key
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.body == {
        "model": "claude-sonnet-4-5",
        **messages_body(request, "Anthropic"),
        "metadata": {"user_id": "user-1"},
    }
    call = (answer.choices[0].message.tool_calls or [])[0]
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == (
        "toolu_1",
        "get_weather",
        {"city": "Paris", "unit": "c"},
    )
    assert answer.choices[0].finish_reason == "tool_calls"
    assert answer.created == int(NOW.timestamp())


def test_gemini_gets_the_translated_conversation_and_its_function_call_comes_back(transports: Transports) -> None:
    request = chat_request(TOOL_ROUND_TRIP, tools=[WEATHER_TOOL, CLOCK_TOOL], max_tokens=50)

    with loopback_provider("gemini") as server:
        server.respond_with(gemini_response(None, function_calls=[{"name": "get_time", "args": {}}]))
        answer = call_through(server, ProviderId.GEMINI, "models/gemini-2.5-flash", request, transports).completion

    sent = server.requests[0]
    assert sent.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert sent.headers["x-goog-api-key"] == server.api_key
    assert sent.body == generate_content_body(request, "Google Gemini")
    assert [call.function.name for call in answer.choices[0].message.tool_calls or []] == ["get_time"]
    assert answer.choices[0].finish_reason == "tool_calls"


def test_a_model_id_cannot_leave_geminis_model_path(transports: Transports) -> None:
    with loopback_provider("gemini") as server:
        call_through(server, ProviderId.GEMINI, "../../v1/other", chat_request(), transports)

    assert server.requests[0].path == "/v1beta/models/..%2F..%2Fv1%2Fother:generateContent"


@each_provider
def test_a_rate_limit_answers_429_with_the_providers_retry_after(
    kind: Kind, provider: ProviderId, model: str, transports: Transports
) -> None:
    with loopback_provider(kind) as server:
        server.fail_with(429, "Rate limit reached for requests", retry_after="7")
        with pytest.raises(ProviderError) as raised:
            call_through(server, provider, model, chat_request(), transports)

    error = raised.value
    assert (error.status, error.code, error.retry_after) == (429, "provider_rate_limited", "7")
    assert "Rate limit reached for requests" in error.message
    if kind in ("openai", "groq", "anthropic"):
        remaining = {name: value for name, value in error.rate_limit_headers.items() if "remaining" in name}
        assert remaining and set(remaining.values()) == {"0"}


@each_provider
def test_refused_credentials_answer_502_and_never_repeat_the_key(
    kind: Kind, provider: ProviderId, model: str, transports: Transports
) -> None:
    with loopback_provider(kind) as server, pytest.raises(ProviderError) as raised:
        call_through(server, provider, model, chat_request(), transports, api_key="sk-wrong-key-123")

    error = raised.value
    assert (error.status, error.code) == (502, "provider_authentication_failed")
    assert "credentials" in error.message and "sk-wrong-key-123" not in error.message


@each_provider
def test_a_refused_request_answers_400_with_the_providers_message(
    kind: Kind, provider: ProviderId, model: str, transports: Transports
) -> None:
    with loopback_provider(kind) as server:
        server.fail_with(400, "max_tokens: 100000 > 8192, which is the maximum")
        with pytest.raises(ProviderError) as raised:
            call_through(server, provider, model, chat_request(), transports)

    assert (raised.value.status, raised.value.code) == (400, "provider_rejected_request")
    assert raised.value.message.endswith("(HTTP 400): max_tokens: 100000 > 8192, which is the maximum")


@each_provider
@pytest.mark.parametrize("status", [500, 503])
def test_a_provider_failure_answers_502(
    kind: Kind, provider: ProviderId, model: str, status: int, transports: Transports
) -> None:
    with loopback_provider(kind) as server:
        server.fail_with(status, "Internal error")
        with pytest.raises(ProviderError) as raised:
            call_through(server, provider, model, chat_request(), transports)

    assert (raised.value.status, raised.value.code) == (502, "provider_error")


@each_provider
def test_a_stalled_provider_answers_504_at_the_timeout(
    kind: Kind, provider: ProviderId, model: str, transports: Transports
) -> None:
    with loopback_provider(kind) as server:
        server.stall()
        started = time.monotonic()
        with pytest.raises(ProviderError) as raised:
            call_through(server, provider, model, chat_request(), transports, timeout_seconds=0.5)
        elapsed = time.monotonic() - started

    assert (raised.value.status, raised.value.code) == (504, "provider_timeout")
    assert raised.value.message.endswith("did not answer within 0.5 s")
    assert 0.4 < elapsed < 10  # gave up long before the stalled provider (30 s)


def test_an_unreachable_provider_answers_502(transports: Transports) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    call = ProviderCall(
        ProviderId.OPENAI,
        "gpt-4o-mini",
        {"baseUrl": f"http://127.0.0.1:{port}/v1"},
        {"apiKey": SecretStr("sk-test")},
        chat_request(),
        2.0,
    )

    with pytest.raises(ProviderError) as raised:
        call_provider(call, transports)

    assert (raised.value.status, raised.value.code) == (502, "provider_unreachable")


@pytest.mark.parametrize("body", [["not", "an", "object"], {"choices": []}, {"unexpected": True}])
def test_an_unreadable_answer_is_a_502(body: Any, transports: Transports) -> None:
    with loopback_provider("openai") as server:
        server.respond_with(body)
        with pytest.raises(ProviderError) as raised:
            call_through(server, ProviderId.OPENAI, "gpt-4o-mini", chat_request(), transports)

    assert (raised.value.status, raised.value.code) == (502, "provider_invalid_response")


def test_a_connection_whose_config_no_longer_validates_answers_502(transports: Transports) -> None:
    call = ProviderCall(ProviderId.ANTHROPIC, "claude", {"baseUrl": "ftp://old.example"}, {}, chat_request(), 1.0)

    with pytest.raises(ProviderError) as raised:
        call_provider(call, transports)

    assert (raised.value.status, raised.value.code) == (502, "connection_misconfigured")


def test_a_non_text_part_is_refused_before_any_call(transports: Transports) -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    request = chat_request([{"role": "user", "content": [image]}])

    with loopback_provider("anthropic") as server, pytest.raises(ProviderError) as raised:
        call_through(server, ProviderId.ANTHROPIC, "claude-sonnet-4-5", request, transports)

    assert (raised.value.status, raised.value.code) == (400, "unsupported_content")
    assert server.requests == []
