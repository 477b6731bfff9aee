"""Streams through the gateway emulation, for all seven providers, each from its own streaming API (loopback
fakes): pieces reach the client while the provider still holds the rest, usage follows OpenAI's rule, capacity
counts the provider's usage (or an estimate when the client leaves), and failures after the first byte end the
stream with an error event."""

import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from local_stack.gateway import HttpResponse
from tests.functional.conftest import Tenant
from tests.loopback_providers import (
    COMPLETION_TOKENS,
    LOOPBACK_PIECES,
    PROMPT_TOKENS,
    LoopbackProvider,
    StreamedToolCall,
    loopback_provider,
    openai_completion,
)

BEDROCK_KEY = "AKIALOOPBACKSTREAMS"
# Lowered for this module, so a silence longer than either is quick to provoke.
IDLE_TIMEOUT_SECONDS = 1.0
KEEPALIVE_AFTER_SECONDS = 1.0
CONSOLE_ORIGIN = "https://console.example"
PROVIDERS = ["openai", "groq", "perplexity", "anthropic", "gemini", "aws-bedrock", "aws-bedrock-invoke"]
MODELS = {
    "openai": "gpt-4o-mini",
    "groq": "llama-3.1-8b-instant",
    "perplexity": "sonar",
    "anthropic": "claude-haiku-4-5",
    "gemini": "gemini-2.5-flash",
    "aws-bedrock": "amazon.nova-lite-v1:0",
    "aws-bedrock-invoke": "anthropic.claude-3-5-haiku-20241022-v1:0",
}


@pytest.fixture(scope="module")
def bedrock() -> Iterator[LoopbackProvider]:
    """One Bedrock fake for the module: the completions function reads its endpoint once, when it first runs."""
    with loopback_provider("bedrock", api_key=BEDROCK_KEY) as server:
        os.environ["BEDROCK_ENDPOINT_URL"] = server.base_url
        os.environ["PROVIDER_IDLE_TIMEOUT_SECONDS"] = str(IDLE_TIMEOUT_SECONDS)
        os.environ["WHOLE_ANSWER_KEEPALIVE_AFTER_SECONDS"] = str(KEEPALIVE_AFTER_SECONDS)
        os.environ["CONSOLE_ORIGIN"] = CONSOLE_ORIGIN
        yield server
        for name in (
            "BEDROCK_ENDPOINT_URL",
            "PROVIDER_IDLE_TIMEOUT_SECONDS",
            "WHOLE_ANSWER_KEEPALIVE_AFTER_SECONDS",
            "CONSOLE_ORIGIN",
        ):
            del os.environ[name]


@dataclass
class Connected:
    tenant: Tenant
    provider: LoopbackProvider
    name: str
    connection_id: str

    @property
    def model(self) -> str:
        return f"{self.name}/{MODELS[self.name]}"

    def open(self, **fields: Any) -> HttpResponse:
        """POSTs a streamed completion and returns the response as it comes; the caller reads and finishes it."""
        body = {"model": self.model, "messages": [{"role": "user", "content": "Say hello"}], "stream": True, **fields}
        return self.post(body)

    def post(self, body: dict[str, Any], **extra_headers: str) -> HttpResponse:
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {self.tenant.admin_key}",
            **extra_headers,
        }
        path = f"{self.tenant.workspace_path}/environments/{self.tenant.environment_id}/chat/completions"
        return self.tenant.api.open("POST", path, json.dumps(body).encode(), headers)

    def tokens_used(self) -> int:
        report = self.tenant.api.get(f"{self.tenant.connections_path}/{self.connection_id}/capacity").body
        used: int = report["windows"][0]["tokensUsed"]
        return used


@pytest.fixture
def openai_connected(tenant: Tenant, bedrock: LoopbackProvider) -> Iterator[Connected]:
    with loopback_provider("openai") as server:
        config = {"apiKey": server.api_key or "", "baseUrl": server.base_url}
        capacity = [{"period": "day", "requests": 100, "tokens": 1_000_000}]
        body = {"name": "openai", "provider": "openai", "config": config, "capacity": capacity}
        created = tenant.api.post(tenant.connections_path, body)
        assert created.status == 201, created.text
        yield Connected(tenant, server, "openai", created.body["connectionId"])


@pytest.fixture(params=PROVIDERS)
def connected(request: pytest.FixtureRequest, tenant: Tenant, bedrock: LoopbackProvider) -> Iterator[Connected]:
    name: str = request.param
    capacity = [{"period": "day", "requests": 100, "tokens": 1_000_000}]
    if name.startswith("aws-bedrock"):
        config = {"region": "us-east-1", "accessKeyId": BEDROCK_KEY, "secretAccessKey": "loopback-secret"}
        created = tenant.api.post(
            tenant.connections_path, {"name": name, "provider": name, "config": config, "capacity": capacity}
        )
        assert created.status == 201, created.text
        yield Connected(tenant, bedrock, name, created.body["connectionId"])
        return
    with loopback_provider(name) as server:  # type: ignore[arg-type]
        config = {"apiKey": server.api_key or "", "baseUrl": server.base_url}
        created = tenant.api.post(
            tenant.connections_path, {"name": name, "provider": name, "config": config, "capacity": capacity}
        )
        assert created.status == 201, created.text
        yield Connected(tenant, server, name, created.body["connectionId"])


class EventReader:
    """Reads a streamed response's server-sent events one at a time, as a client would."""

    def __init__(self, response: HttpResponse):
        assert response.stream is not None and response.finish is not None
        self._response = response
        self._pieces = response.stream
        self._pending = response.body

    def next_event(self) -> str | None:
        while b"\n\n" not in self._pending:
            piece = next(self._pieces, None)
            if piece is None:
                return None
            self._pending += piece
        event, _, self._pending = self._pending.partition(b"\n\n")
        return event.decode().removeprefix("data: ")

    def next_chunk(self) -> Any:
        event = self.next_event()
        assert event is not None and event != "[DONE]", event
        return json.loads(event)

    def rest(self) -> list[str]:
        events = []
        while (event := self.next_event()) is not None:
            events.append(event)
        return events

    def finish(self) -> None:
        assert self._response.finish is not None
        self._response.finish()


def text_of(events: list[str]) -> str:
    chunks = [json.loads(event) for event in events if event != "[DONE]"]
    return "".join(choice["delta"].get("content") or "" for chunk in chunks for choice in chunk["choices"])


def test_each_piece_reaches_the_client_while_the_provider_holds_the_rest(connected: Connected) -> None:
    connected.provider.stream_with(list(LOOPBACK_PIECES))
    gate = connected.provider.hold_after(1)

    response = connected.open()
    reader = EventReader(response)
    first_text = ""
    while not first_text:
        chunk = reader.next_chunk()
        first_text = "".join(choice["delta"].get("content") or "" for choice in chunk["choices"])

    # the client has the first piece; the provider has sent nothing more and has not finished
    assert first_text == LOOPBACK_PIECES[0]
    assert [index for index, _ in connected.provider.sent_pieces] == [0]
    assert not connected.provider.stream_ended.is_set()
    gate.set()
    rest = reader.rest()
    reader.finish()

    assert response.status == 200
    assert dict(response.headers)["Content-Type"] == "text/event-stream"
    assert rest[-1] == "[DONE]"
    assert first_text + text_of(rest) == "".join(LOOPBACK_PIECES)
    assert chunk["model"] == connected.model
    assert all(json.loads(event)["object"] == "chat.completion.chunk" for event in rest[:-1])


def test_capacity_counts_the_streamed_usage_and_the_client_sees_it_only_when_asked(connected: Connected) -> None:
    unasked = EventReader(connected.open())
    unasked_events = unasked.rest()
    unasked.finish()
    after_one = connected.tokens_used()
    asked = EventReader(connected.open(stream_options={"include_usage": True}))
    asked_events = asked.rest()
    asked.finish()

    unasked_chunks = [json.loads(event) for event in unasked_events[:-1]]
    asked_chunks = [json.loads(event) for event in asked_events[:-1]]
    assert all(chunk["choices"] and "usage" not in chunk for chunk in unasked_chunks)
    assert asked_chunks[-1]["choices"] == []
    assert asked_chunks[-1]["usage"]["total_tokens"] == PROMPT_TOKENS + COMPLETION_TOKENS
    assert all(chunk["usage"] is None for chunk in asked_chunks[:-1])
    # both were reconciled to the provider's own usage, asked for upstream in either case
    assert after_one == PROMPT_TOKENS + COMPLETION_TOKENS
    assert connected.tokens_used() == 2 * (PROMPT_TOKENS + COMPLETION_TOKENS)


def test_tool_calls_stream_as_openai_tool_call_deltas(connected: Connected) -> None:
    connected.provider.stream_with([], tool_calls=[StreamedToolCall("call_1", "get_weather", {"city": "Oslo"})])

    reader = EventReader(connected.open(tools=[{"type": "function", "function": {"name": "get_weather"}}]))
    events = reader.rest()
    reader.finish()

    chunks = [json.loads(event) for event in events[:-1]]
    deltas = [
        call for chunk in chunks for choice in chunk["choices"] for call in choice["delta"].get("tool_calls") or []
    ]
    assert deltas[0]["function"]["name"] == "get_weather"
    assert json.loads("".join(delta["function"].get("arguments") or "" for delta in deltas)) == {"city": "Oslo"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_a_client_that_leaves_mid_stream_is_charged_what_was_produced(connected: Connected) -> None:
    connected.provider.stream_with(list(LOOPBACK_PIECES))
    gate = connected.provider.hold_after(2)
    reader = EventReader(connected.open())
    received = ""
    while received != "".join(LOOPBACK_PIECES[:2]):
        chunk = reader.next_chunk()
        received += "".join(choice["delta"].get("content") or "" for choice in chunk["choices"])

    reader.finish()  # the client goes away
    gate.set()

    # the upstream is let go, and the tokens are the prompt estimate plus a token per four characters sent
    assert connected.provider.stream_ended.wait(5)
    used = connected.tokens_used()
    assert 0 < used < PROMPT_TOKENS + COMPLETION_TOKENS + 20
    assert used != 1_000_000


def test_a_provider_failure_after_the_first_piece_ends_the_stream_with_an_error_event(connected: Connected) -> None:
    connected.provider.stream_with(list(LOOPBACK_PIECES), error_after=2)

    reader = EventReader(connected.open())
    events = reader.rest()
    reader.finish()

    assert events[-1] != "[DONE]"
    error = json.loads(events[-1])["error"]
    assert error["code"] in {"provider_error", "provider_rate_limited"}
    assert error["type"] in {"api_error", "rate_limit_error"}
    assert text_of(events[:-1]) == "".join(LOOPBACK_PIECES[:2])


def test_a_stream_cut_off_by_the_provider_ends_with_an_error_event_not_a_hang(connected: Connected) -> None:
    connected.provider.stream_with(list(LOOPBACK_PIECES), cut_after=1)

    reader = EventReader(connected.open())
    events = reader.rest()
    reader.finish()

    assert json.loads(events[-1])["error"]["code"] == "provider_stream_interrupted"


def test_an_answer_longer_than_the_idle_timeout_goes_through_while_pieces_keep_coming(connected: Connected) -> None:
    # five pieces 0.4 s apart: 2 s in all, twice the idle timeout, never silent for long
    pieces = [f"piece {index} " for index in range(5)]
    connected.provider.stream_with(pieces, interval=IDLE_TIMEOUT_SECONDS * 0.4)

    reader = EventReader(connected.open())
    events = reader.rest()
    reader.finish()

    assert events[-1] == "[DONE]"
    assert text_of(events) == "".join(pieces)


def test_a_silence_longer_than_the_idle_timeout_ends_the_stream(connected: Connected) -> None:
    connected.provider.stream_with(list(LOOPBACK_PIECES))
    gate = connected.provider.hold_after(1)
    timer = threading.Timer(IDLE_TIMEOUT_SECONDS * 5, gate.set)  # lets the fake go in any case
    timer.start()
    try:
        reader = EventReader(connected.open())
        events = reader.rest()
        reader.finish()
    finally:
        timer.cancel()
        gate.set()

    assert json.loads(events[-1])["error"]["code"] == "provider_timeout"


def test_a_refusal_before_the_first_piece_is_a_real_http_error(connected: Connected) -> None:
    connected.provider.fail_with(429, retry_after="7")

    response = connected.open()
    body = response.body + b"".join(response.stream or [])
    if response.finish is not None:
        response.finish()

    assert response.status == 429
    assert json.loads(body)["error"]["type"] == "rate_limit_error"


def whole(response: HttpResponse) -> bytes:
    body = response.body + b"".join(response.stream or [])
    if response.finish is not None:
        response.finish()
    return body


def test_a_whole_answer_that_comes_quickly_is_written_at_once(openai_connected: Connected) -> None:
    ask = {"model": openai_connected.model, "messages": [{"role": "user", "content": "x"}]}
    whole(openai_connected.post(ask))  # warm: the first request of an instance also opens its credentials

    response = openai_connected.post(ask)
    body = whole(response)

    assert response.status == 200
    assert not body.startswith(b" ")
    assert json.loads(body)["usage"]["total_tokens"] == PROMPT_TOKENS + COMPLETION_TOKENS
    assert dict(response.headers)["x-ratelimit-remaining-requests"] == "98"


def test_a_whole_answer_that_takes_long_keeps_the_line_open_with_blanks(openai_connected: Connected) -> None:
    openai_connected.provider.respond_with(
        openai_completion("Thought long.", model="gpt-4o-mini"), delay=KEEPALIVE_AFTER_SECONDS * 2.5
    )

    response = openai_connected.post({"model": openai_connected.model, "messages": [{"role": "user", "content": "x"}]})
    assert response.stream is not None
    pieces = list(response.stream)
    assert response.finish is not None
    response.finish()

    # blanks while the provider thinks (JSON allows leading whitespace), then the answer whole
    assert response.status == 200
    assert len(pieces) >= 2 and all(piece.strip() == b"" for piece in pieces[:-1])
    answer = json.loads(b"".join(pieces))
    assert answer["choices"][0]["message"]["content"] == "Thought long."
    assert openai_connected.tokens_used() == PROMPT_TOKENS + COMPLETION_TOKENS


def test_a_late_failure_of_a_whole_answer_is_told_in_the_body(openai_connected: Connected) -> None:
    slow = {"model": openai_connected.model, "messages": [{"role": "user", "content": "x"}]}
    openai_connected.provider.respond_with(
        {"error": {"message": "overloaded", "type": "server_error"}}, status=503, delay=KEEPALIVE_AFTER_SECONDS * 1.5
    )
    response = openai_connected.post(slow)
    body = whole(response)

    # the 200 had gone out when the provider failed
    assert response.status == 200
    error = json.loads(body)["error"]
    assert (error["code"], error["type"]) == ("provider_error", "api_error")


def test_the_streamed_route_answers_the_console_origin_with_cors_and_rate_limit_headers(
    openai_connected: Connected,
) -> None:
    body = {"model": openai_connected.model, "messages": [{"role": "user", "content": "x"}], "stream": True}

    response = openai_connected.post(body, Origin=CONSOLE_ORIGIN)
    whole(response)
    headers = dict(response.headers)

    assert headers["Access-Control-Allow-Origin"] == CONSOLE_ORIGIN
    assert "x-ratelimit-remaining-requests" in headers["Access-Control-Expose-Headers"]
    assert headers["x-ratelimit-remaining-requests"] == "99"
    assert headers["Cache-Control"] == "no-store"
