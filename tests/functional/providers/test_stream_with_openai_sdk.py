"""The official openai SDK reads what `event_stream` writes, sent piece by piece over loopback HTTP."""

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai
import pytest
from aws_lambda_powertools import Logger

from vmx.completions.calls import ProviderError
from vmx.completions.openai_models import ChatCompletionChunk, Usage
from vmx.completions.streams import ChunkFrame
from vmx.http.openai_errors import event_stream

FRAME = ChunkFrame("chatcmpl-1", 1_700_000_000, "conn/model")
USAGE = Usage(prompt_tokens=10, completion_tokens=5, total_tokens=15)
MESSAGES: list[Any] = [{"role": "user", "content": "Weather in Oslo?"}]

# Given the request's JSON body, the chunks the gateway relays for it.
Answer = Callable[[dict[str, Any]], Iterator[ChatCompletionChunk]]


@contextmanager
def serving(answer: Answer) -> Iterator[str]:
    """A chat completions endpoint that writes each event as `event_stream` produces it, then closes."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
            include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.end_headers()
            for event in event_stream(answer(request), include_usage, Logger(service="tests")):
                self.wfile.write(event)
                self.wfile.flush()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(api_key="unused", base_url=base_url, max_retries=0, timeout=10)


def checks_the_weather(request: dict[str, Any]) -> Iterator[ChatCompletionChunk]:
    """Text, then a tool call whose arguments come in three pieces; usage at the end when asked, as the
    gateway relays it."""
    yield FRAME.role()
    yield FRAME.text("Let me ")
    yield FRAME.text("check.")
    yield FRAME.tool_call_start(0, "call_1", "get_weather")
    yield FRAME.tool_call_arguments(0, '{"ci')
    yield FRAME.tool_call_arguments(0, 'ty":"Os')
    yield FRAME.tool_call_arguments(0, 'lo"}')
    yield FRAME.finish("tool_calls")
    if (request.get("stream_options") or {}).get("include_usage"):
        yield FRAME.usage(USAGE)


def test_the_sdk_accumulates_content_tool_calls_in_pieces_and_usage() -> None:
    with (
        serving(checks_the_weather) as base_url,
        client(base_url).chat.completions.stream(
            model="conn/model", messages=MESSAGES, stream_options={"include_usage": True}
        ) as stream,
    ):
        final = stream.get_final_completion()

    message = final.choices[0].message
    assert message.content == "Let me check."
    assert [(call.id, call.function.name, call.function.arguments) for call in message.tool_calls or []] == [
        ("call_1", "get_weather", '{"city":"Oslo"}')
    ]
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.usage is not None
    assert (final.usage.prompt_tokens, final.usage.completion_tokens, final.usage.total_tokens) == (10, 5, 15)


def test_the_sdk_sees_no_usage_unless_it_asked() -> None:
    with serving(checks_the_weather) as base_url:
        chunks = list(client(base_url).chat.completions.create(model="conn/model", messages=MESSAGES, stream=True))

    assert len(chunks) == 8
    assert all(chunk.choices and chunk.usage is None for chunk in chunks)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks) == "Let me check."


def test_an_error_event_mid_stream_raises_api_error_after_the_pieces_before_it() -> None:
    def breaks_off(request: dict[str, Any]) -> Iterator[ChatCompletionChunk]:
        yield FRAME.role()
        yield FRAME.text("Let me ")
        raise ProviderError(502, "provider_stream_failed", "the provider's stream broke off")

    contents: list[str | None] = []
    with serving(breaks_off) as base_url:
        stream = client(base_url).chat.completions.create(model="conn/model", messages=MESSAGES, stream=True)
        with pytest.raises(openai.APIError) as failed:
            for chunk in stream:
                contents.append(chunk.choices[0].delta.content)

    assert contents == ["", "Let me "]
    assert failed.value.message == "the provider's stream broke off"
    assert (failed.value.code, failed.value.type) == ("provider_stream_failed", "api_error")
