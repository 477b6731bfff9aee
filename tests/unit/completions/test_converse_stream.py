"""Bedrock's ConverseStream: a fake bedrock-runtime client hands out the event dicts botocore's EventStream yields,
and raises what it raises (EventStreamError for an error event, urllib3's errors for a broken connection)."""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import urllib3
from botocore.exceptions import ClientError, EventStreamError
from pydantic import SecretStr
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from tests.unit.completions.samples import WEATHER_TOOL, chat_request
from vmx.completions.bedrock import converse_params, converse_stream
from vmx.completions.calls import BedrockAccess, ProviderCall, ProviderError, Transports
from vmx.completions.openai_models import ChatCompletionChunk, ChatCompletionRequest
from vmx.completions.streams import ProviderStream
from vmx.deadline import Deadline
from vmx.providers.catalog import ProviderId
from vmx.providers.config import BedrockConfig

ROLE = "arn:aws:iam::123456789012:role/bedrock-caller"
NOVA = "amazon.nova-pro-v1:0"
SECRET_KEY = "wJalrXUtnFEMI-K7MDENG-CANARY"
HEADERS = {"x-amzn-requestid": "req-1", "content-type": "application/vnd.amazon.eventstream", "retry-after": "3"}


class FakeEventStream:
    """Yields its events in turn; an exception among them is raised where it stands, as botocore raises it."""

    def __init__(self, events: list[dict[str, Any] | Exception]):
        self.events = events
        self.closed = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for event in self.events:
            if isinstance(event, Exception):
                raise event
            yield event

    def close(self) -> None:
        self.closed = True


class FakeBedrock:
    """A bedrock-runtime client whose converse_stream answers with the given events, or raises `refusal`."""

    def __init__(self, events: list[dict[str, Any] | Exception], refusal: Exception | None = None):
        self.stream = FakeEventStream(events)
        self.refusal = refusal
        self.sent: list[dict[str, Any]] = []
        self.asked: list[tuple[BedrockAccess, float]] = []

    def __call__(self, access: BedrockAccess, timeout_seconds: float) -> "FakeBedrock":
        self.asked.append((access, timeout_seconds))
        return self

    def converse_stream(self, **params: Any) -> dict[str, Any]:
        self.sent.append(params)
        if self.refusal is not None:
            raise self.refusal
        return {"ResponseMetadata": {"HTTPStatusCode": 200, "HTTPHeaders": HEADERS}, "stream": self.stream}


def bedrock_call(request: ChatCompletionRequest | None = None, deadline: Deadline | None = None) -> ProviderCall:
    return ProviderCall(
        ProviderId.AWS_BEDROCK,
        NOVA,
        {"region": "eu-west-1"},
        {"accessKeyId": SecretStr("AKIASTATICEXAMPLE"), "secretAccessKey": SecretStr(SECRET_KEY)},
        request or chat_request(),
        2.0,
        deadline,
    )


def open_stream(
    bedrock: FakeBedrock, request: ChatCompletionRequest | None = None, deadline: Deadline | None = None
) -> ProviderStream:
    transports = Transports(
        http=urllib3.PoolManager(), bedrock_client=bedrock, clock=lambda: datetime(2026, 11, 22, tzinfo=UTC)
    )
    return converse_stream(bedrock_call(request, deadline), transports)


def text(piece: str, block: int = 0) -> dict[str, Any]:
    return {"contentBlockDelta": {"delta": {"text": piece}, "contentBlockIndex": block}}


def stop(block: int) -> dict[str, Any]:
    return {"contentBlockStop": {"contentBlockIndex": block}}


def message_stop(reason: str) -> dict[str, Any]:
    return {"messageStop": {"stopReason": reason}}


def metadata(**usage: int) -> dict[str, Any]:
    tokens = {"inputTokens": 25, "outputTokens": 7, "totalTokens": 32, **usage}
    return {"metadata": {"usage": tokens, "metrics": {"latencyMs": 412}}}


START = {"messageStart": {"role": "assistant"}}
# Where urllib3 says a read timed out; making one opens no connection.
RUNTIME_POOL = urllib3.HTTPSConnectionPool("bedrock-runtime.eu-west-1.amazonaws.com")


def deltas(chunks: list[ChatCompletionChunk]) -> list[dict[str, Any]]:
    seen = []
    for chunk in chunks:
        if not chunk.choices:
            continue
        (choice,) = chunk.choices
        seen.append(
            {
                **choice.delta.model_dump(exclude_none=True),
                **({"finish_reason": choice.finish_reason} if choice.finish_reason else {}),
            }
        )
    return seen


def test_text_streams_in_pieces_from_the_translated_parameters() -> None:
    bedrock = FakeBedrock([START, text("Bon"), text("jour"), stop(0), message_stop("end_turn"), metadata()])
    request = chat_request([{"role": "user", "content": "Say hello in French"}], max_tokens=50)

    answer = open_stream(bedrock, request)
    chunks = list(answer)

    config = BedrockConfig.model_validate(
        {"region": "eu-west-1", "accessKeyId": "AKIASTATICEXAMPLE", "secretAccessKey": SECRET_KEY}
    )
    assert bedrock.sent == [converse_params(NOVA, request, config, "AWS Bedrock")]
    assert [timeout for _, timeout in bedrock.asked] == [2.0]
    assert answer.rate_limit_headers == {"retry-after": "3"}
    assert deltas(chunks) == [
        {"role": "assistant", "content": ""},
        {"content": "Bon"},
        {"content": "jour"},
        {"finish_reason": "stop"},
    ]
    assert {(chunk.id, chunk.model, chunk.created) for chunk in chunks} == {
        (chunks[0].id, NOVA, int(datetime(2026, 11, 22, tzinfo=UTC).timestamp()))
    }
    assert chunks[0].id.startswith("chatcmpl-")
    assert chunks[-1].choices == [] and chunks[-1].usage is not None


def test_tool_uses_stream_as_numbered_tool_call_deltas_with_their_input_in_pieces() -> None:
    bedrock = FakeBedrock(
        [
            START,
            text("Checking both."),
            stop(0),
            {
                "contentBlockStart": {
                    "start": {"toolUse": {"toolUseId": "tooluse_a", "name": "get_weather"}},
                    "contentBlockIndex": 1,
                }
            },
            {"contentBlockDelta": {"delta": {"toolUse": {"input": '{"city": '}}, "contentBlockIndex": 1}},
            {"contentBlockDelta": {"delta": {"toolUse": {"input": '"Oslo"}'}}, "contentBlockIndex": 1}},
            stop(1),
            {
                "contentBlockStart": {
                    "start": {"toolUse": {"toolUseId": "tooluse_b", "name": "get_time"}},
                    "contentBlockIndex": 2,
                }
            },
            {"contentBlockDelta": {"delta": {"toolUse": {"input": ""}}, "contentBlockIndex": 2}},
            stop(2),
            message_stop("tool_use"),
            metadata(),
        ]
    )

    chunks = list(open_stream(bedrock, chat_request(tools=[WEATHER_TOOL])))

    assert deltas(chunks) == [
        {"role": "assistant", "content": ""},
        {"content": "Checking both."},
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "tooluse_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ]
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '"Oslo"}'}}]},
        {
            "tool_calls": [
                {"index": 1, "id": "tooluse_b", "type": "function", "function": {"name": "get_time", "arguments": ""}}
            ]
        },
        # A tool use without input still gets a JSON object for arguments, as Converse's whole answer gives.
        {"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]},
        {"finish_reason": "tool_calls"},
    ]


def test_reasoning_is_left_out() -> None:
    bedrock = FakeBedrock(
        [
            START,
            {"contentBlockDelta": {"delta": {"reasoningContent": {"text": "The user greets"}}, "contentBlockIndex": 0}},
            {"contentBlockDelta": {"delta": {"reasoningContent": {"signature": "c2lnbmVk"}}, "contentBlockIndex": 0}},
            stop(0),
            text("Hello!", block=1),
            stop(1),
            message_stop("end_turn"),
            metadata(),
        ]
    )

    chunks = list(open_stream(bedrock))

    assert deltas(chunks) == [{"role": "assistant", "content": ""}, {"content": "Hello!"}, {"finish_reason": "stop"}]


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("max_tokens", "length"),
        ("stop_sequence", "stop"),
    ],
)
def test_the_stop_reason_is_mapped_as_for_a_whole_answer(stop_reason: str, finish_reason: str) -> None:
    bedrock = FakeBedrock([START, text("Some"), message_stop(stop_reason), metadata()])

    chunks = list(open_stream(bedrock))

    assert deltas(chunks)[-1] == {"finish_reason": finish_reason}


def test_usage_comes_last_with_cache_reads_and_writes_counted_as_prompt_tokens() -> None:
    bedrock = FakeBedrock(
        [START, text("Hi"), message_stop("end_turn"), metadata(cacheReadInputTokens=300, cacheWriteInputTokens=40)]
    )

    chunks = list(open_stream(bedrock))

    assert [chunk.usage is not None for chunk in chunks] == [False, False, False, True]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.model_dump(exclude_none=True) == {
        "prompt_tokens": 365,
        "completion_tokens": 7,
        "total_tokens": 372,
        "prompt_tokens_details": {"cached_tokens": 300},
    }


def test_a_stream_without_metadata_has_no_usage_chunk() -> None:
    chunks = list(open_stream(FakeBedrock([START, text("Hi"), message_stop("end_turn")])))

    assert deltas(chunks)[-1] == {"finish_reason": "stop"}
    assert all(chunk.usage is None for chunk in chunks)


def test_an_error_event_mid_stream_raises_a_provider_error_and_close_lets_the_stream_go() -> None:
    failure = EventStreamError(
        {"Error": {"Code": "modelStreamErrorException", "Message": f"The model failed; key {SECRET_KEY}"}},
        "ConverseStream",
    )
    bedrock = FakeBedrock([START, text("Half an"), failure, text("never"), message_stop("end_turn")])
    answer = open_stream(bedrock)
    chunks = iter(answer)

    assert [next(chunks).choices[0].delta.content for _ in range(2)] == ["", "Half an"]
    with pytest.raises(ProviderError) as raised:
        next(chunks)
    answer.close()

    assert (raised.value.status, raised.value.code) == (502, "provider_error")
    assert "The model failed; key [redacted]" in raised.value.message
    assert SECRET_KEY not in raised.value.message
    assert isinstance(raised.value.__cause__, EventStreamError)
    assert bedrock.stream.closed


@pytest.mark.parametrize(
    ("broken", "status", "code"),
    [
        (ReadTimeoutError(RUNTIME_POOL, "/model/x/converse-stream", "Read timed out."), 504, "provider_timeout"),
        (ProtocolError("Connection broken", ConnectionResetError()), 502, "provider_stream_interrupted"),
    ],
    ids=["silent", "dropped"],
)
def test_a_broken_connection_mid_stream_raises_a_provider_error(broken: Exception, status: int, code: str) -> None:
    chunks = open_stream(FakeBedrock([START, text("Half"), broken]))

    with pytest.raises(ProviderError) as raised:
        list(chunks)

    assert (raised.value.status, raised.value.code) == (status, code)


def test_a_stream_that_ends_before_message_stop_was_interrupted() -> None:
    with pytest.raises(ProviderError) as raised:
        list(open_stream(FakeBedrock([START, text("Half an"), stop(0)])))

    assert (raised.value.status, raised.value.code) == (502, "provider_stream_interrupted")


def test_an_event_in_an_unknown_shape_is_an_invalid_response() -> None:
    broken = {"contentBlockDelta": {"delta": {"text": "x"}}}

    with pytest.raises(ProviderError) as raised:
        list(open_stream(FakeBedrock([START, broken, message_stop("end_turn")])))

    assert (raised.value.status, raised.value.code) == (502, "provider_invalid_response")


def test_an_event_after_the_calls_deadline_raises_a_timeout() -> None:
    deadline = Deadline.after(60)
    bedrock = FakeBedrock([START, text("Slow"), message_stop("end_turn")])
    chunks = iter(open_stream(bedrock, deadline=deadline))
    next(chunks)
    object.__setattr__(deadline, "at", 0.0)

    with pytest.raises(ProviderError) as raised:
        list(chunks)

    assert (raised.value.status, raised.value.code) == (504, "provider_timeout")


def test_a_refusal_when_calling_is_mapped_before_any_chunk() -> None:
    throttled = ClientError(
        {
            "Error": {"Code": "ThrottlingException", "Message": "Too many requests, please wait."},
            "ResponseMetadata": {
                "RequestId": "req-2",
                "HostId": "",
                "HTTPStatusCode": 429,
                "HTTPHeaders": {},
                "RetryAttempts": 0,
            },
        },
        "ConverseStream",
    )

    with pytest.raises(ProviderError) as raised:
        open_stream(FakeBedrock([], refusal=throttled))

    assert (raised.value.status, raised.value.code) == (429, "provider_rate_limited")
