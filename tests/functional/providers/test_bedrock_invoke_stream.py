"""Claude on Bedrock through InvokeModelWithResponseStream: a fake bedrock-runtime client whose body is either a
plain iterable of the events botocore yields or botocore's own EventStream decoding the binary event stream."""

import binascii
import json
import struct
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import botocore.session
import pytest
import urllib3
from botocore.eventstream import EventStream
from botocore.exceptions import EventStreamError
from botocore.exceptions import ReadTimeoutError as BotocoreReadTimeoutError
from botocore.model import StructureShape
from botocore.parsers import EventStreamJSONParser
from botocore.stub import Stubber
from pydantic import SecretStr
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from tests.unit.completions.samples import chat_request
from vmx.completions.openai_models import ChatCompletionChunk, ChatCompletionRequest
from vmx.completions.providers import ProviderCall, ProviderError, Transports, open_stream
from vmx.deadline import Deadline
from vmx.providers.catalog import ProviderId

HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
SECRET_KEY = "wJalrXUtnFEMI-K7MDENG-STREAM-CANARY"
KEYS = {"accessKeyId": SecretStr("AKIASTATICEXAMPLE"), "secretAccessKey": SecretStr(SECRET_KEY)}
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
OPERATION = "InvokeModelWithResponseStream"


def message_start(usage: dict[str, int] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {
        "id": "msg_bdrk_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-3-5-haiku-20241022",
        "content": [],
        "stop_reason": None,
    }
    if usage is not None:
        message["usage"] = usage
    return {"type": "message_start", "message": message}


def text(*pieces: str, index: int = 0) -> list[dict[str, Any]]:
    return [
        {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
        *({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": p}} for p in pieces),
        {"type": "content_block_stop", "index": index},
    ]


def end(stop_reason: str = "end_turn", output_tokens: int = 6, **last: Any) -> list[dict[str, Any]]:
    metrics = {
        "inputTokenCount": 14,
        "outputTokenCount": output_tokens,
        "invocationLatency": 512,
        "firstByteLatency": 98,
    }
    return [
        {"type": "message_delta", "delta": {"stop_reason": stop_reason}, "usage": {"output_tokens": output_tokens}},
        {"type": "message_stop", "amazon-bedrock-invocationMetrics": metrics, **last},
    ]


def answer(*pieces: str) -> list[dict[str, Any]]:
    return [message_start({"input_tokens": 14, "output_tokens": 1}), *text(*pieces), *end()]


def read_timed_out() -> ReadTimeoutError:
    """What urllib3 raises when the socket waited longer than the client's read timeout."""
    return ReadTimeoutError(
        urllib3.HTTPConnectionPool("127.0.0.1"), "/model/x/invoke-with-response-stream", "Read timed out."
    )


def chunk(event: dict[str, Any]) -> dict[str, Any]:
    """An event as botocore's EventStream yields it: the model's JSON, as bytes, in a `chunk`."""
    return {"chunk": {"bytes": json.dumps(event).encode()}}


class FakeBody:
    """The response's `body`: yields the events, then raises `error` if one is given; records `close()`."""

    def __init__(self, events: Iterable[dict[str, Any]], error: Exception | None = None):
        self.events = list(events)
        self.error = error
        self.closed = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        yield from self.events
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self.closed = True


class FakeBedrock:
    """A bedrock-runtime client with just InvokeModelWithResponseStream; records what it was called with."""

    def __init__(self, body: Any, headers: dict[str, str] | None = None):
        self.body = body
        self.headers = headers or {}
        self.params: list[dict[str, Any]] = []

    def invoke_model_with_response_stream(self, **params: Any) -> dict[str, Any]:
        self.params.append(params)
        metadata = {"HTTPStatusCode": 200, "HTTPHeaders": {"x-amzn-requestid": "req-1", **self.headers}}
        return {"body": self.body, "contentType": "application/json", "ResponseMetadata": metadata}


def transports(client: Any) -> Transports:
    return Transports(http=urllib3.PoolManager(), bedrock_client=lambda access, timeout: client, clock=lambda: NOW)


def stream_call(
    request: ChatCompletionRequest | None = None,
    settings: dict[str, Any] | None = None,
    deadline: Deadline | None = None,
) -> ProviderCall:
    return ProviderCall(
        ProviderId.AWS_BEDROCK_INVOKE,
        HAIKU,
        {"region": "eu-west-1", **(settings or {})},
        KEYS,
        request or chat_request(stream=True),
        timeout_seconds=2.0,
        deadline=deadline,
    )


def read_all(client: Any, call: ProviderCall | None = None) -> list[ChatCompletionChunk]:
    return list(open_stream(call or stream_call(), transports(client)))


def texts(chunks: Iterable[ChatCompletionChunk]) -> list[str | None]:
    return [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content is not None]


def test_the_stream_gets_invoke_models_parameters_and_yields_the_answer_as_it_comes() -> None:
    request = chat_request(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], stream=True, max_tokens=64
    )
    guarded = {"guardrailConfig": {"guardrailIdentifier": "gr1abc", "guardrailVersion": "DRAFT", "trace": "enabled"}}
    body = FakeBody(chunk(event) for event in answer("Hel", "lo!"))
    client = FakeBedrock(body, headers={"retry-after": "1"})

    stream = open_stream(stream_call(request, guarded), transports(client))
    chunks = list(stream)
    stream.close()

    [params] = client.params
    assert json.loads(params.pop("body")) == {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 64,
        "system": [{"type": "text", "text": "Be brief."}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
    }
    assert params == {
        "modelId": HAIKU,
        "contentType": "application/json",
        "accept": "application/json",
        "guardrailIdentifier": "gr1abc",
        "guardrailVersion": "DRAFT",
        "trace": "ENABLED",
    }
    assert texts(chunks) == ["", "Hel", "lo!"]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage = chunks[-1].usage
    assert not chunks[-1].choices and usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (14, 6, 20)
    assert {(c.id, c.created, c.model) for c in chunks} == {
        ("msg_bdrk_01", int(NOW.timestamp()), "claude-3-5-haiku-20241022")
    }
    assert stream.rate_limit_headers == {"retry-after": "1"}
    assert body.closed


def test_tool_use_streams_as_tool_call_deltas() -> None:
    tool = {"type": "tool_use", "id": "toolu_bdrk_1", "name": "get_weather", "input": {}}
    events = [
        message_start({"input_tokens": 30, "output_tokens": 1}),
        {"type": "content_block_start", "index": 0, "content_block": tool},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": '{"city"'}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": ':"Oslo"}'}},
        {"type": "content_block_stop", "index": 0},
        *end("tool_use"),
    ]

    chunks = read_all(FakeBedrock(FakeBody(chunk(event) for event in events)))

    calls = [call for c in chunks if c.choices for call in c.choices[0].delta.tool_calls or []]
    assert [(call.index, call.id, call.function and call.function.name) for call in calls] == [
        (0, "toolu_bdrk_1", "get_weather"),
        (0, None, None),
        (0, None, None),
    ]
    assert json.loads("".join(call.function.arguments or "" for call in calls if call.function)) == {"city": "Oslo"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


def test_a_guardrail_intervention_finishes_with_content_filter() -> None:
    blocked = "Sorry, the model cannot answer this question."
    events = [
        message_start({"input_tokens": 9, "output_tokens": 0}),
        *text(blocked),
        *end("end_turn", output_tokens=0, **{"amazon-bedrock-guardrailAction": "INTERVENED"}),
    ]

    chunks = read_all(FakeBedrock(FakeBody(chunk(event) for event in events)))

    assert texts(chunks) == ["", blocked]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "content_filter"
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 9


def test_bedrocks_invocation_metrics_count_when_the_model_reports_no_usage() -> None:
    events = [message_start(), *text("Hi"), *end(output_tokens=3)]
    del events[-2]["usage"]

    chunks = read_all(FakeBedrock(FakeBody(chunk(event) for event in events)))

    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (14, 3)


@pytest.mark.parametrize(
    ("code", "status", "error_code"),
    [
        ("throttlingException", 429, "provider_rate_limited"),
        ("modelStreamErrorException", 502, "provider_error"),
        ("internalServerException", 502, "provider_error"),
        ("serviceUnavailableException", 502, "provider_error"),
        ("validationException", 400, "provider_rejected_request"),
        ("modelTimeoutException", 504, "provider_timeout"),
    ],
)
def test_an_exception_event_mid_stream_maps_by_its_lower_camel_code(code: str, status: int, error_code: str) -> None:
    error = EventStreamError({"Error": {"Code": code, "Message": f"{code} for {SECRET_KEY}"}}, OPERATION)
    events = [message_start({"input_tokens": 14, "output_tokens": 1}), *text("Hel", "lo")][:3]

    with pytest.raises(ProviderError) as raised:
        read_all(FakeBedrock(FakeBody(map(chunk, events), error)))

    assert (raised.value.status, raised.value.code) == (status, error_code)
    assert SECRET_KEY not in str(raised.value)


def test_the_pieces_before_an_exception_event_reach_the_reader() -> None:
    error = EventStreamError({"Error": {"Code": "throttlingException", "Message": "Too many tokens"}}, OPERATION)
    events = [message_start({"input_tokens": 14, "output_tokens": 1}), *text("Hel", "lo")][:3]
    received: list[ChatCompletionChunk] = []

    with pytest.raises(ProviderError) as raised:
        for piece in open_stream(stream_call(), transports(FakeBedrock(FakeBody(map(chunk, events), error)))):
            received.append(piece)

    assert texts(received) == ["", "Hel"]
    assert "Too many tokens" in raised.value.message


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (read_timed_out(), 504, "provider_timeout"),
        (BotocoreReadTimeoutError(endpoint_url="https://bedrock-runtime"), 504, "provider_timeout"),
        (ProtocolError("Connection broken: IncompleteRead"), 502, "provider_stream_interrupted"),
    ],
    ids=["urllib3 read timeout", "botocore read timeout", "connection broken"],
)
def test_a_connection_that_fails_mid_stream_times_out_or_is_interrupted(
    error: Exception, status: int, code: str
) -> None:
    body = FakeBody(map(chunk, answer("Hi")[:3]), error)

    with pytest.raises(ProviderError) as raised:
        read_all(FakeBedrock(body))

    assert (raised.value.status, raised.value.code) == (status, code)


def test_a_stream_that_ends_before_message_stop_is_interrupted() -> None:
    with pytest.raises(ProviderError) as raised:
        read_all(FakeBedrock(FakeBody(map(chunk, answer("Hel", "lo")[:-1]))))

    assert (raised.value.status, raised.value.code) == (502, "provider_stream_interrupted")


def test_a_chunk_that_is_not_json_is_an_invalid_response() -> None:
    body = FakeBody([chunk(message_start()), {"chunk": {"bytes": b"{not json"}}])

    with pytest.raises(ProviderError) as raised:
        read_all(FakeBedrock(body))

    assert (raised.value.status, raised.value.code) == (502, "provider_invalid_response")


def test_a_passed_deadline_refuses_before_calling_and_stops_between_pieces() -> None:
    client = FakeBedrock(FakeBody(map(chunk, answer("Hi"))))

    with pytest.raises(ProviderError) as before:
        read_all(client, stream_call(deadline=Deadline.after(-1)))
    assert (before.value.status, before.value.code, client.params) == (504, "provider_timeout", [])

    soon = Deadline.after(0.05)
    stream = open_stream(stream_call(deadline=soon), transports(client))
    iterator = iter(stream)
    first = next(iterator)
    time.sleep(0.06)
    with pytest.raises(ProviderError) as during:
        list(iterator)
    assert first.choices[0].delta.role == "assistant"
    assert (during.value.status, during.value.code) == (504, "provider_timeout")


@pytest.mark.parametrize(
    ("code", "http_status", "status", "error_code"),
    [
        ("ThrottlingException", 429, 429, "provider_rate_limited"),
        ("ValidationException", 400, 400, "provider_rejected_request"),
        ("AccessDeniedException", 403, 502, "provider_access_denied"),
        ("ModelErrorException", 424, 502, "provider_error"),
    ],
)
def test_a_refusal_when_calling_maps_as_for_invoke_model(
    code: str, http_status: int, status: int, error_code: str
) -> None:
    client = boto3.client(
        "bedrock-runtime", region_name="eu-west-1", aws_access_key_id="AKIA", aws_secret_access_key="x"
    )
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "invoke_model_with_response_stream",
            service_error_code=code,
            service_message=f"{code} for {SECRET_KEY}",
            http_status_code=http_status,
            response_meta={"HTTPHeaders": {"retry-after": "4"}},
        )
        with pytest.raises(ProviderError) as raised:
            open_stream(stream_call(), transports(client))

    assert (raised.value.status, raised.value.code) == (status, error_code)
    assert SECRET_KEY not in str(raised.value)
    if status == 429:
        assert raised.value.retry_after == "4"


# botocore's own EventStream over the binary event stream Bedrock sends: the fake body above yields what it yields.


def event_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One message of the AWS event stream encoding: prelude, string headers, payload, CRCs."""
    encoded = b"".join(
        struct.pack("!B", len(name)) + name.encode() + struct.pack("!BH", 7, len(value)) + value.encode()
        for name, value in headers.items()
    )
    prelude = struct.pack("!II", 12 + len(encoded) + len(payload) + 4, len(encoded))
    prelude += struct.pack("!I", binascii.crc32(prelude))
    message = prelude + encoded + payload
    return message + struct.pack("!I", binascii.crc32(message))


def chunk_message(event: dict[str, Any]) -> bytes:
    # On the wire the chunk's bytes are base64 in a JSON payload; botocore decodes them.
    payload = json.dumps({"bytes": binascii.b2a_base64(json.dumps(event).encode(), newline=False).decode()})
    headers = {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}
    return event_message(headers, payload.encode())


def exception_message(code: str, message: str) -> bytes:
    headers = {":exception-type": code, ":content-type": "application/json", ":message-type": "exception"}
    return event_message(headers, json.dumps({"message": message}).encode())


class RawStream:
    """The HTTP response under an EventStream: its bytes in pieces of any size, then `error` if given."""

    def __init__(self, data: bytes, error: Exception | None = None, piece: int = 7):
        self.data, self.error, self.piece = data, error, piece
        self.closed = False

    def stream(self) -> Iterator[bytes]:
        for start in range(0, len(self.data), self.piece):
            yield self.data[start : start + self.piece]
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self.closed = True


def event_stream(raw: RawStream) -> "EventStream[dict[str, Any]]":
    """As botocore builds the body of InvokeModelWithResponseStream's response."""
    operation = botocore.session.get_session().get_service_model("bedrock-runtime").operation_model(OPERATION)
    assert operation.output_shape is not None
    body = operation.output_shape.members["body"]
    assert isinstance(body, StructureShape)
    return EventStream(raw, body, EventStreamJSONParser(), OPERATION)


def test_botocores_event_stream_decodes_to_the_same_answer() -> None:
    raw = RawStream(b"".join(chunk_message(event) for event in answer("Bon", "jour")))

    stream = open_stream(stream_call(), transports(FakeBedrock(event_stream(raw))))
    chunks = list(stream)
    stream.close()

    assert texts(chunks) == ["", "Bon", "jour"]
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 20
    assert raw.closed


def test_botocores_exception_event_arrives_lower_camel_and_maps_to_429() -> None:
    data = chunk_message(message_start({"input_tokens": 14, "output_tokens": 1}))
    data += exception_message("throttlingException", f"Too many requests for {SECRET_KEY}")

    with pytest.raises(ProviderError) as raised:
        read_all(FakeBedrock(event_stream(RawStream(data))))

    assert (raised.value.status, raised.value.code) == (429, "provider_rate_limited")
    assert "Too many requests for [redacted]" in raised.value.message


def test_a_read_timeout_under_botocores_event_stream_is_a_timeout() -> None:
    data = b"".join(chunk_message(event) for event in answer("Hi")[:3])
    raw = RawStream(data, read_timed_out())

    with pytest.raises(ProviderError) as raised:
        read_all(FakeBedrock(event_stream(raw)))

    assert (raised.value.status, raised.value.code) == (504, "provider_timeout")
