"""The loopback fakes' streams read back by plain clients: the official openai SDK, boto3's bedrock-runtime for
Bedrock's binary event stream, and a small reader of server-sent events for Anthropic and Gemini. Loopback
sockets only (127.0.0.1), which this file alone of the unit tier uses: it tests the fakes other tiers rely on."""

import base64
import http.client
import itertools
import json
from contextlib import AbstractContextManager
from typing import Any, Literal
from urllib.parse import urlsplit

import boto3
import openai
import pytest
from botocore.config import Config
from botocore.eventstream import EventStreamBuffer
from botocore.exceptions import EventStreamError
from urllib3.exceptions import ProtocolError

from tests.loopback_providers import (
    ANTHROPIC_RATE_LIMIT_HEADERS,
    COMPLETION_TOKENS,
    LOOPBACK_ANSWER,
    LOOPBACK_PIECES,
    OPENAI_RATE_LIMIT_HEADERS,
    PROMPT_TOKENS,
    Kind,
    LoopbackProvider,
    StreamedToolCall,
    loopback_provider,
)

# Each streaming API of the fakes; Bedrock has two.
Api = Literal["openai", "groq", "perplexity", "anthropic", "gemini", "converse", "invoke"]
APIS: list[Api] = ["openai", "groq", "perplexity", "anthropic", "gemini", "converse", "invoke"]
BEDROCK_KEY = "AKIALOOPBACKEXAMPLE"
HI: Any = [{"role": "user", "content": "Hi"}]
WEATHER = StreamedToolCall("call_w1", "get_weather", {"city": "Oslo", "unit": "celsius"})
# What a client's read may wait at most, so that a broken fake fails a test rather than hanging it.
SAFETY_TIMEOUT_SECONDS = 10


def kind_of(api: Api) -> Kind:
    if api == "converse" or api == "invoke":
        return "bedrock"
    return api


def serving(api: Api) -> AbstractContextManager[LoopbackProvider]:
    if api in ("converse", "invoke"):
        return loopback_provider("bedrock", api_key=BEDROCK_KEY)
    return loopback_provider(kind_of(api))


def streaming_request(api: Api, server: LoopbackProvider, key: str | None = None) -> tuple[str, dict[str, str], Any]:
    """The path, headers and body of a well-formed streaming request to `api`, signed with `key`."""
    key = key or server.api_key or ""
    prefix = urlsplit(server.base_url).path
    if api in ("openai", "groq", "perplexity"):
        body = {"model": "gpt-4o-mini", "messages": HI, "stream": True, "stream_options": {"include_usage": True}}
        return f"{prefix}/chat/completions", {"authorization": f"Bearer {key}"}, body
    if api == "anthropic":
        headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
        return "/v1/messages", headers, {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": HI, "stream": True}
    if api == "gemini":
        path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        return path, {"x-goog-api-key": key}, {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}
    # The fake checks only which access key the SigV4 signature names.
    signed = {"authorization": f"AWS4-HMAC-SHA256 Credential={key}/20261122/us-east-1/bedrock/aws4_request"}
    if api == "converse":
        body = {"messages": [{"role": "user", "content": [{"text": "Hi"}]}]}
        return "/model/amazon.nova-pro-v1%3A0/converse-stream", signed, body
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64, "messages": HI}
    return "/model/anthropic.claude-haiku-4-5/invoke-with-response-stream", signed, body


class RawStream:
    """One streaming request over http.client, its body read as it arrives (chunked encoding undone)."""

    def __init__(self, api: Api, server: LoopbackProvider, path: str | None = None, key: str | None = None):
        self.api = api
        self.raw = b""
        self.broken = False
        planned_path, headers, body = streaming_request(api, server, key)
        port = urlsplit(server.base_url).port
        self._connection = http.client.HTTPConnection("127.0.0.1", port, timeout=SAFETY_TIMEOUT_SECONDS)
        self._connection.request("POST", path or planned_path, json.dumps(body), headers)
        self.response = self._connection.getresponse()

    def read_until(self, pieces: int) -> list[str]:
        while len(texts(self.api, self.raw)) < pieces and self._read():
            pass
        return texts(self.api, self.raw)

    def read_all(self) -> bytes:
        while self._read():
            pass
        return self.raw

    def close(self) -> None:
        self.response.close()
        self._connection.close()

    def _read(self) -> bool:
        try:
            received = self.response.read1(65536)
        except http.client.IncompleteRead:
            self.broken = True
            return False
        self.raw += received
        return bool(received)


def events(api: Api, raw: bytes) -> list[tuple[str | None, Any]]:
    """The complete events in `raw`, as (name, data): SSE's `event:` name (None when it has none) and its data as
    JSON (OpenAI's `[DONE]` as the string); a Bedrock message's event or exception type and its JSON payload
    (InvokeModel's chunks opened: the Anthropic event they carry, named by its type)."""
    if api not in ("converse", "invoke"):
        *complete, _incomplete = raw.replace(b"\r\n", b"\n").split(b"\n\n")
        parsed: list[tuple[str | None, Any]] = []
        for block in complete:
            fields = dict(line.split(": ", 1) for line in block.decode().split("\n"))
            data = fields["data"] if fields["data"] == "[DONE]" else json.loads(fields["data"])
            parsed.append((fields.get("event"), data))
        return parsed
    buffer = EventStreamBuffer()
    buffer.add_data(raw)
    messages = []
    for message in buffer:
        headers, payload = message.to_response_dict()["headers"], json.loads(message.payload)
        if headers[":message-type"] == "exception":
            messages.append((headers[":exception-type"], payload))
        elif headers[":event-type"] == "chunk":
            carried = json.loads(base64.b64decode(payload["bytes"]))
            messages.append((carried["type"], carried))
        else:
            messages.append((headers[":event-type"], payload))
    return messages


def texts(api: Api, raw: bytes) -> list[str]:
    found: list[str] = []
    for name, data in events(api, raw):
        if api in ("openai", "groq", "perplexity") and data != "[DONE]" and data.get("choices"):
            found += [data["choices"][0]["delta"]["content"]] if data["choices"][0]["delta"].get("content") else []
        elif api in ("anthropic", "invoke") and name == "content_block_delta" and data["delta"]["type"] == "text_delta":
            found.append(data["delta"]["text"])
        elif api == "gemini" and "candidates" in data:
            found += [part["text"] for part in data["candidates"][0]["content"]["parts"] if part.get("text")]
        elif api == "converse" and name == "contentBlockDelta" and "text" in data["delta"]:
            found.append(data["delta"]["text"])
    return found


def ended(api: Api, raw: bytes) -> bool:
    """Whether the stream's own end arrived: [DONE], message_stop, a finish reason, messageStop."""
    names = [name for name, _ in events(api, raw)]
    if api in ("openai", "groq", "perplexity"):
        return any(data == "[DONE]" for _, data in events(api, raw))
    if api == "gemini":
        return any("finishReason" in data.get("candidates", [{}])[0] for _, data in events(api, raw))
    return ("messageStop" if api == "converse" else "message_stop") in names


def bedrock(server: LoopbackProvider) -> Any:
    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=server.base_url,
        aws_access_key_id=BEDROCK_KEY,
        aws_secret_access_key="loopback-secret",
        config=Config(retries={"total_max_attempts": 1}),
    )


def converse_stream(server: LoopbackProvider) -> Any:
    messages = [{"role": "user", "content": [{"text": "Hi"}]}]
    return bedrock(server).converse_stream(modelId="amazon.nova-pro-v1:0", messages=messages)["stream"]


def invoke_stream(server: LoopbackProvider) -> Any:
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "Hi"}],
    }
    return bedrock(server).invoke_model_with_response_stream(
        modelId="anthropic.claude-haiku-4-5", body=json.dumps(body)
    )


def openai_client(server: LoopbackProvider) -> openai.OpenAI:
    return openai.OpenAI(api_key=server.api_key, base_url=server.base_url, max_retries=0)


def test_the_unplanned_stream_says_the_loopback_answer_in_pieces() -> None:
    assert "".join(LOOPBACK_PIECES) == LOOPBACK_ANSWER
    assert len(LOOPBACK_PIECES) > 1


@pytest.mark.parametrize("kind", ["openai", "groq"])
def test_openai_and_groq_streams_read_with_the_openai_sdk(kind: Kind) -> None:
    with loopback_provider(kind) as server:
        stream = openai_client(server).chat.completions.create(
            model="gpt-4o-mini", messages=HI, stream=True, stream_options={"include_usage": True}
        )
        chunks = list(stream)

    assert chunks[0].choices[0].delta.role == "assistant"
    assert [chunk.choices[0].delta.content for chunk in chunks[1:-2]] == list(LOOPBACK_PIECES)
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    usage = chunks[-1].usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (PROMPT_TOKENS, COMPLETION_TOKENS)
    assert all(chunk.usage is None for chunk in chunks[:-1])
    assert {chunk.model for chunk in chunks} == {"gpt-4o-mini"}
    if kind == "groq":
        assert (chunks[-2].model_extra or {})["x_groq"]["usage"]["total_tokens"] == PROMPT_TOKENS + COMPLETION_TOKENS


def test_an_openai_stream_has_no_usage_chunk_unless_asked() -> None:
    with loopback_provider("openai") as server:
        chunks = list(openai_client(server).chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True))

    assert all(chunk.choices and chunk.usage is None for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_perplexity_puts_its_usage_so_far_on_every_chunk_unasked() -> None:
    with loopback_provider("perplexity") as server:
        chunks = list(openai_client(server).chat.completions.create(model="sonar", messages=HI, stream=True))

    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks) == LOOPBACK_ANSWER
    completion_tokens = [chunk.usage.completion_tokens for chunk in chunks if chunk.usage is not None]
    assert len(completion_tokens) == len(chunks)
    assert completion_tokens == sorted(completion_tokens)
    assert completion_tokens[-1] == COMPLETION_TOKENS


def test_openai_tool_calls_stream_as_deltas_the_sdk_puts_together() -> None:
    with loopback_provider("openai") as server:
        server.stream_with(["Let me check."], tool_calls=[WEATHER, StreamedToolCall("call_w2", "get_time", {})])
        with openai_client(server).chat.completions.stream(model="gpt-4o-mini", messages=HI) as stream:
            final = stream.get_final_completion()

    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me check."
    calls = [
        (call.id, call.function.name, json.loads(call.function.arguments)) for call in choice.message.tool_calls or []
    ]
    assert calls == [("call_w1", "get_weather", WEATHER.arguments), ("call_w2", "get_time", {})]
    assert [index for index, _ in server.sent_pieces] == [0, 1, 2]


def test_an_openai_mid_stream_error_raises_in_the_sdk_after_the_pieces_before_it() -> None:
    received: list[str] = []
    with loopback_provider("openai") as server:
        server.stream_with(["one", "two"], error_after=1, error_status=429)
        stream = openai_client(server).chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True)
        with pytest.raises(openai.APIError) as raised:
            for chunk in stream:
                received.append(chunk.choices[0].delta.content or "")

    assert received == ["", "one"]
    assert raised.value.body == {
        "message": "loopback stream failure",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }


def test_an_openai_stream_cut_short_is_a_connection_error_for_the_sdk() -> None:
    received: list[str] = []
    with loopback_provider("openai") as server:
        server.stream_with(["one", "two"], cut_after=1)
        stream = openai_client(server).chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True)
        with pytest.raises(openai.APIConnectionError):
            for chunk in stream:
                received.append(chunk.choices[0].delta.content or "")

    assert received == ["", "one"]


def test_a_refusal_planned_before_a_stream_answers_the_streaming_request() -> None:
    with loopback_provider("openai") as server:
        server.fail_with(429, retry_after="3")
        with pytest.raises(openai.RateLimitError) as raised:
            openai_client(server).chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True)

    assert raised.value.response.headers["retry-after"] == "3"


def test_anthropics_stream_is_named_events_in_the_order_anthropic_sends_them() -> None:
    with serving("anthropic") as server:
        stream = RawStream("anthropic", server)
        raw = stream.read_all()

    assert stream.response.headers["content-type"].startswith("text/event-stream")
    assert {
        name: stream.response.headers[name] for name in ANTHROPIC_RATE_LIMIT_HEADERS
    } == ANTHROPIC_RATE_LIMIT_HEADERS
    sent = events("anthropic", raw)
    assert all(name == data["type"] for name, data in sent)
    assert [name for name, _ in sent] == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * len(LOOPBACK_PIECES),
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert "".join(texts("anthropic", raw)) == LOOPBACK_ANSWER
    assert sent[0][1]["message"]["usage"]["input_tokens"] == PROMPT_TOKENS
    assert sent[-2][1]["delta"]["stop_reason"] == "end_turn"
    assert sent[-2][1]["usage"] == {"output_tokens": COMPLETION_TOKENS}


@pytest.mark.parametrize("api", ["anthropic", "invoke"])
def test_anthropic_tool_uses_stream_as_blocks_of_input_json_deltas(api: Api) -> None:
    with serving(api) as server:
        server.stream_with(["Let me check."], tool_calls=[WEATHER])
        raw = RawStream(api, server).read_all()

    sent = [data for _, data in events(api, raw) if data["type"] != "ping"]
    blocks = [(data["type"], data["index"]) for data in sent if data["type"].startswith("content_block_")]
    assert blocks == [
        ("content_block_start", 0),
        ("content_block_delta", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_delta", 1),
        ("content_block_delta", 1),
        ("content_block_stop", 1),
    ]
    assert sent[4]["content_block"] == {"type": "tool_use", "id": "call_w1", "name": "get_weather", "input": {}}
    partial_json = "".join(data["delta"]["partial_json"] for data in sent[5:7])
    assert json.loads(partial_json) == WEATHER.arguments
    assert sent[-2]["delta"]["stop_reason"] == "tool_use"


def test_an_anthropic_mid_stream_error_is_its_error_event_and_no_end() -> None:
    with serving("anthropic") as server:
        server.stream_with(["one", "two"], error_after=1, error_status=529)
        stream = RawStream("anthropic", server)
        raw = stream.read_all()

    assert not stream.broken
    name, data = events("anthropic", raw)[-1]
    assert (name, data) == (
        "error",
        {"type": "error", "error": {"type": "overloaded_error", "message": "loopback stream failure"}},
    )
    assert texts("anthropic", raw) == ["one"]
    assert not ended("anthropic", raw)


def test_geminis_stream_is_generate_content_responses_with_the_finish_and_usage_on_the_last() -> None:
    with serving("gemini") as server:
        server.stream_with(["Bonjour", " Oslo"], tool_calls=[WEATHER])
        raw = RawStream("gemini", server).read_all()

    assert b"\r\n\r\n" in raw
    responses = [data for _, data in events("gemini", raw)]
    assert [response["candidates"][0]["content"]["parts"] for response in responses] == [
        [{"text": "Bonjour"}],
        [{"text": " Oslo"}],
        [{"functionCall": {"name": "get_weather", "args": WEATHER.arguments}}],
        [{"text": ""}],
    ]
    assert ["finishReason" in response["candidates"][0] for response in responses] == [False, False, False, True]
    assert responses[-1]["candidates"][0]["finishReason"] == "STOP"
    assert responses[-1]["usageMetadata"] == {
        "promptTokenCount": PROMPT_TOKENS,
        "candidatesTokenCount": COMPLETION_TOKENS,
        "totalTokenCount": PROMPT_TOKENS + COMPLETION_TOKENS,
    }
    assert {response["modelVersion"] for response in responses} == {"gemini-2.5-flash"}


def test_a_gemini_stream_without_usage_and_with_its_own_finish_reason() -> None:
    with serving("gemini") as server:
        server.stream_with(["cut off"], usage=False, finish_reason="MAX_TOKENS")
        raw = RawStream("gemini", server).read_all()

    responses = [data for _, data in events("gemini", raw)]
    assert all("usageMetadata" not in response for response in responses)
    assert responses[-1]["candidates"][0]["finishReason"] == "MAX_TOKENS"


def test_a_gemini_mid_stream_error_is_an_error_object() -> None:
    with serving("gemini") as server:
        server.stream_with(["one", "two"], error_after=1, error_status=503)
        raw = RawStream("gemini", server).read_all()

    assert events("gemini", raw)[-1][1] == {
        "error": {"code": 503, "message": "loopback stream failure", "status": "UNAVAILABLE"}
    }
    assert not ended("gemini", raw)


def test_gemini_streams_only_server_sent_events() -> None:
    with serving("gemini") as server:
        stream = RawStream("gemini", server, path="/v1beta/models/gemini-2.5-flash:streamGenerateContent")
        stream.read_all()

    assert stream.response.status == 400


def test_converse_stream_reads_with_boto3() -> None:
    with serving("converse") as server:
        sent = list(converse_stream(server))

    assert sent[0] == {"messageStart": {"role": "assistant"}}
    assert [event["contentBlockDelta"] for event in sent[1:-3]] == [
        {"contentBlockIndex": 0, "delta": {"text": piece}} for piece in LOOPBACK_PIECES
    ]
    assert sent[-3:] == [
        {"contentBlockStop": {"contentBlockIndex": 0}},
        {"messageStop": {"stopReason": "end_turn"}},
        {
            "metadata": {
                "usage": {
                    "inputTokens": PROMPT_TOKENS,
                    "outputTokens": COMPLETION_TOKENS,
                    "totalTokens": PROMPT_TOKENS + COMPLETION_TOKENS,
                },
                "metrics": {"latencyMs": 42},
            }
        },
    ]


def test_converse_tool_uses_stream_as_a_start_and_input_deltas() -> None:
    with serving("converse") as server:
        server.stream_with(["Let me check."], tool_calls=[WEATHER], usage=False)
        sent = list(converse_stream(server))

    assert sent[3] == {
        "contentBlockStart": {
            "contentBlockIndex": 1,
            "start": {"toolUse": {"toolUseId": "call_w1", "name": "get_weather"}},
        }
    }
    arguments = "".join(event["contentBlockDelta"]["delta"]["toolUse"]["input"] for event in sent[4:6])
    assert json.loads(arguments) == WEATHER.arguments
    assert sent[6:] == [{"contentBlockStop": {"contentBlockIndex": 1}}, {"messageStop": {"stopReason": "tool_use"}}]


def test_invoke_model_with_response_stream_reads_with_boto3() -> None:
    with serving("invoke") as server:
        response = invoke_stream(server)
        carried = [json.loads(event["chunk"]["bytes"]) for event in response["body"]]

    assert response["contentType"] == "application/json"
    assert [event["type"] for event in carried] == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * len(LOOPBACK_PIECES),
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert (
        "".join(event["delta"]["text"] for event in carried if event["type"] == "content_block_delta")
        == LOOPBACK_ANSWER
    )
    assert carried[-1]["amazon-bedrock-invocationMetrics"]["outputTokenCount"] == COMPLETION_TOKENS


@pytest.mark.parametrize(("status", "code"), [(429, "throttlingException"), (424, "modelStreamErrorException")])
def test_a_bedrock_mid_stream_exception_raises_event_stream_error_in_boto3(status: int, code: str) -> None:
    with serving("converse") as server:
        server.stream_with(["one", "two"], error_after=1, error_status=status)
        server.stream_with(["one", "two"], error_after=1, error_status=status)
        received: list[Any] = []
        with pytest.raises(EventStreamError) as conversing:
            received += converse_stream(server)
        with pytest.raises(EventStreamError) as invoking:
            received += invoke_stream(server)["body"]

    assert received[:2] == [
        {"messageStart": {"role": "assistant"}},
        {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": "one"}}},
    ]
    for raised in (conversing, invoking):
        assert raised.value.response["Error"] == {"Code": code, "Message": "loopback stream failure"}


def test_a_bedrock_stream_cut_short_fails_in_boto3() -> None:
    with serving("converse") as server:
        server.stream_with(["one", "two"], cut_after=1)
        received: list[Any] = []
        with pytest.raises(ProtocolError):
            received += converse_stream(server)

    assert received[-1] == {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": "one"}}}


@pytest.mark.parametrize("api", APIS)
def test_a_gate_holds_the_rest_of_the_stream_until_it_opens(api: Api) -> None:
    with serving(api) as server:
        server.stream_with(["one", "two", "three"])
        gate = server.hold_after(2)
        stream = RawStream(api, server)

        received = stream.read_until(2)
        # Given that the provider holds the rest, the client has the first two pieces and not the end
        assert received == ["one", "two"]
        assert [index for index, _ in server.sent_pieces] == [0, 1]
        assert not server.stream_ended.is_set()

        gate.set()
        raw = stream.read_all()
        stream.close()

    assert texts(api, raw) == ["one", "two", "three"]
    assert ended(api, raw)
    assert server.stream_ended.is_set() and not server.client_left
    assert [index for index, _ in server.sent_pieces] == [0, 1, 2]


@pytest.mark.parametrize("api", APIS)
def test_a_gate_at_zero_holds_every_piece_but_not_the_headers(api: Api) -> None:
    with serving(api) as server:
        gate = server.hold_after(0)
        stream = RawStream(api, server)

        assert stream.response.status == 200
        assert server.sent_pieces == []
        gate.set()
        raw = stream.read_all()

    assert "".join(texts(api, raw)) == LOOPBACK_ANSWER


@pytest.mark.parametrize("api", APIS)
def test_cut_after_closes_the_connection_without_the_streams_end(api: Api) -> None:
    with serving(api) as server:
        server.stream_with(["one", "two", "three"], cut_after=2)
        stream = RawStream(api, server)
        raw = stream.read_all()

        assert server.stream_ended.wait(SAFETY_TIMEOUT_SECONDS)

    assert stream.broken
    assert texts(api, raw) == ["one", "two"]
    assert not ended(api, raw)
    assert not server.client_left


@pytest.mark.parametrize("api", APIS)
def test_a_reader_that_goes_away_while_the_stream_is_held_is_recorded(api: Api) -> None:
    with serving(api) as server:
        server.hold_after(1)
        stream = RawStream(api, server)
        assert stream.read_until(1) == [LOOPBACK_PIECES[0]]

        stream.close()

        # the gate never opens: the fake notices the closed connection itself
        assert server.stream_ended.wait(SAFETY_TIMEOUT_SECONDS)
    assert server.client_left
    assert [index for index, _ in server.sent_pieces] == [0]


@pytest.mark.parametrize("api", APIS)
def test_streams_carry_the_providers_rate_limit_headers_in_chunks(api: Api) -> None:
    with serving(api) as server:
        stream = RawStream(api, server)
        stream.read_all()

    headers = {name.lower(): value for name, value in stream.response.getheaders()}
    assert headers["transfer-encoding"] == "chunked"
    expected = {
        "openai": OPENAI_RATE_LIMIT_HEADERS,
        "groq": OPENAI_RATE_LIMIT_HEADERS,
        "anthropic": ANTHROPIC_RATE_LIMIT_HEADERS,
    }
    assert {name: headers[name] for name in expected.get(api, {})} == expected.get(api, {})
    content_type = "application/vnd.amazon.eventstream" if api in ("converse", "invoke") else "text/event-stream"
    assert headers["content-type"].startswith(content_type)


def test_pieces_leave_at_least_the_interval_apart() -> None:
    with serving("openai") as server:
        server.stream_with(["a", "b", "c"], interval=0.05)
        RawStream("openai", server).read_all()

    times = [sent_at for _, sent_at in server.sent_pieces]
    assert all(later - earlier >= 0.05 for earlier, later in itertools.pairwise(times))


@pytest.mark.parametrize("api", APIS)
def test_streaming_routes_check_the_credentials(api: Api) -> None:
    with serving(api) as server:
        stream = RawStream(api, server, key="AKIAWRONGKEY")
        stream.read_all()

    # Gemini refuses a wrong key with 400 API_KEY_INVALID, Bedrock with 403 UnrecognizedClientException.
    assert stream.response.status == {"gemini": 400, "converse": 403, "invoke": 403}.get(api, 401)
    assert server.sent_pieces == []


@pytest.mark.parametrize(
    ("api", "body", "message"),
    [
        ("openai", {"model": "m", "messages": HI, "stream_options": {"include_usage": True}}, "only allowed when"),
        ("anthropic", {"model": "claude-sonnet-4-5", "messages": HI, "stream": True}, "max_tokens"),
        ("converse", {"messages": [{"role": "user", "content": [{"text": "a"}]}] * 2}, "alternate"),
        (
            "invoke",
            {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 8, "messages": HI, "stream": True},
            "extraneous key [stream]",
        ),
    ],
)
def test_streaming_routes_check_the_requests_shape(api: Api, body: Any, message: str) -> None:
    with serving(api) as server:
        path, headers, _ = streaming_request(api, server)
        port = urlsplit(server.base_url).port
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=SAFETY_TIMEOUT_SECONDS)
        connection.request("POST", path, json.dumps(body), headers)
        response = connection.getresponse()
        refusal = response.read().decode()
        connection.close()

    assert response.status == 400
    assert message in refusal


def test_a_planned_stream_refuses_a_request_that_does_not_stream() -> None:
    with loopback_provider("openai") as server:
        server.stream_with(["a"])
        with pytest.raises(openai.BadRequestError) as raised:
            openai_client(server).chat.completions.create(model="gpt-4o-mini", messages=HI)

    assert "planned a stream" in raised.value.message


def test_a_plan_that_breaks_off_past_its_pieces_is_refused() -> None:
    with loopback_provider("openai") as server, pytest.raises(ValueError, match="cut_after=3"):
        server.stream_with(["a", "b"], cut_after=3)
