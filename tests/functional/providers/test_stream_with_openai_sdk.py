"""The official openai SDK reads `sse_events` over real HTTP. Skipped until `openai` is a dev dependency."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.unit.completions.samples import chat_request
from vmx.completions.openai_models import ChatCompletion, sse_events

openai = pytest.importorskip("openai")


@contextmanager
def serving_events(body: str) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            payload = body.encode()
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

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


def test_the_openai_sdk_accumulates_content_tool_calls_and_usage() -> None:
    calls = [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}]
    answer = ChatCompletion.model_validate(
        {
            "id": "chatcmpl-1",
            "created": 1_700_000_000,
            "model": "conn/model",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Let me check.", "tool_calls": calls},
                    "finish_reason": "tool_calls",
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }
    )
    body = sse_events(answer, chat_request(stream=True, stream_options={"include_usage": True}))

    with serving_events(body) as base_url:
        client = openai.OpenAI(api_key="unused", base_url=base_url, max_retries=0)
        with client.chat.completions.stream(
            model="conn/model", messages=[{"role": "user", "content": "Hi"}], stream_options={"include_usage": True}
        ) as stream:
            final = stream.get_final_completion()

    message = final.choices[0].message
    assert message.content == "Let me check."
    assert [(call.id, call.function.name, call.function.arguments) for call in message.tool_calls or []] == [
        ("call_1", "get_weather", '{"city":"Oslo"}')
    ]
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.usage is not None and final.usage.total_tokens == 15
