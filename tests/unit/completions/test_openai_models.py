import json
from collections.abc import Generator, Iterator
from typing import Any

import pytest
from aws_lambda_powertools import Logger
from pydantic import ValidationError

from tests.unit.completions.samples import TOOL_ROUND_TRIP, WEATHER_TOOL, chat_request
from vmx.completions.calls import ProviderError
from vmx.completions.openai_models import (
    AssistantMessage,
    ChatCompletionChunk,
    ToolMessage,
    Usage,
    estimate_prompt_tokens,
    sse_chunk,
)
from vmx.completions.streams import ChunkFrame
from vmx.http.openai_errors import event_stream

FRAME = ChunkFrame("chatcmpl-1", 1_700_000_000, "conn/model")
LOG = Logger(service="tests")


def parse_sse(body: str) -> list[str]:
    """The data of each event, per the event-stream format: events end with a blank line."""
    assert body.endswith("\n\n")
    events = []
    for block in body.split("\n\n")[:-1]:
        lines = block.split("\n")
        assert all(line.startswith("data:") for line in lines), block
        events.append("\n".join(line.removeprefix("data:").removeprefix(" ") for line in lines))
    return events


def reassemble(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """What a streaming client accumulates from the chunks."""
    content: str | None = None
    tool_calls: dict[int, dict[str, Any]] = {}
    finish_reason = None
    for chunk in chunks:
        for choice in chunk["choices"]:
            delta = choice["delta"]
            if delta.get("content") is not None:
                content = (content or "") + delta["content"]
            for call in delta.get("tool_calls") or []:
                entry = tool_calls.setdefault(call["index"], {"id": None, "name": None, "arguments": ""})
                entry["id"] = call.get("id") or entry["id"]
                entry["name"] = (call.get("function") or {}).get("name") or entry["name"]
                entry["arguments"] += (call.get("function") or {}).get("arguments") or ""
            finish_reason = choice["finish_reason"] or finish_reason
    return {
        "content": content,
        "tool_calls": [tool_calls[i] for i in sorted(tool_calls)],
        "finish_reason": finish_reason,
    }


def test_a_request_keeps_unknown_fields_and_types_the_messages() -> None:
    request = chat_request(TOOL_ROUND_TRIP, seed=7, response_format={"type": "text"}, tools=[WEATHER_TOOL])

    assert request.model_extra == {"seed": 7, "response_format": {"type": "text"}}
    assert isinstance(request.messages[2], AssistantMessage)
    assert isinstance(request.messages[3], ToolMessage)
    assert request.model_dump(exclude_none=True)["seed"] == 7


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"n": 2}, "only n=1 is supported"),
        ({"messages": [{"role": "robot", "content": "beep"}]}, "robot"),
        ({"messages": [{"role": "tool", "content": "21"}]}, "tool_call_id"),
        ({"messages": []}, "at least 1 item"),
        ({"temperature": 3}, "less than or equal to 2"),
        ({"messages": [{"role": "user", "content": [{"type": "text"}]}]}, "a text part needs 'text'"),
    ],
)
def test_a_request_refuses_what_openai_refuses(fields: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        chat_request(**fields)


def test_stop_and_token_limits_read_the_same_whichever_way_they_are_given() -> None:
    assert chat_request(stop="END").stop_sequences == ["END"]
    assert chat_request(stop=["A", "B"]).stop_sequences == ["A", "B"]
    assert chat_request().stop_sequences == []
    assert chat_request(max_tokens=10).output_token_limit == 10
    assert chat_request(max_tokens=10, max_completion_tokens=20).output_token_limit == 20
    assert chat_request().output_token_limit is None


def test_sse_chunk_writes_one_event_in_openais_shape() -> None:
    event = sse_chunk(FRAME.text("Hi"), include_usage=False)

    [data] = parse_sse(event.decode())
    assert json.loads(data) == {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "conn/model",
        "system_fingerprint": None,
        "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None, "logprobs": None}],
    }


def test_sse_chunk_says_usage_null_until_the_usage_chunk_when_the_client_asked_for_usage() -> None:
    usage = Usage(prompt_tokens=10, completion_tokens=5, total_tokens=15)

    text = json.loads(parse_sse(sse_chunk(FRAME.text("Hi"), include_usage=True).decode())[0])
    last = json.loads(parse_sse(sse_chunk(FRAME.usage(usage), include_usage=True).decode())[0])

    assert text["usage"] is None
    assert last["choices"] == []
    assert last["usage"] == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}


def test_sse_chunk_keeps_newlines_inside_the_json_of_one_event() -> None:
    [data] = parse_sse(sse_chunk(FRAME.text("line one\n\nline two"), include_usage=False).decode())

    assert json.loads(data)["choices"][0]["delta"]["content"] == "line one\n\nline two"


def test_event_stream_sends_every_chunk_then_done() -> None:
    answer = [
        FRAME.role(),
        FRAME.text("Let me "),
        FRAME.text("check."),
        FRAME.tool_call_start(0, "call_1", "get_weather", '{"ci'),
        FRAME.tool_call_arguments(0, 'ty":"Paris"}'),
        FRAME.tool_call_start(1, "call_2", "get_time"),
        FRAME.finish("tool_calls"),
    ]

    events = parse_sse(b"".join(event_stream(iter(answer), False, LOG)).decode())

    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert len(chunks) == len(answer)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert reassemble(chunks) == {
        "content": "Let me check.",
        "tool_calls": [
            {"id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
            {"id": "call_2", "name": "get_time", "arguments": ""},
        ],
        "finish_reason": "tool_calls",
    }


def failing_after(chunks: list[ChatCompletionChunk], failure: Exception) -> Iterator[ChatCompletionChunk]:
    yield from chunks
    raise failure


def test_a_provider_failure_mid_stream_ends_it_with_one_openai_error_event() -> None:
    failure = ProviderError(502, "provider_stream_failed", "the provider's stream broke off")

    events = parse_sse(b"".join(event_stream(failing_after([FRAME.text("Hel")], failure), False, LOG)).decode())

    assert len(events) == 2
    assert json.loads(events[0])["choices"][0]["delta"]["content"] == "Hel"
    assert json.loads(events[1]) == {
        "error": {
            "message": "the provider's stream broke off",
            "type": "api_error",
            "param": None,
            "code": "provider_stream_failed",
        }
    }


def test_any_other_failure_mid_stream_ends_it_with_an_internal_error_that_tells_nothing_more() -> None:
    failure = RuntimeError("secret detail of the failure")

    events = parse_sse(b"".join(event_stream(failing_after([FRAME.text("Hel")], failure), False, LOG)).decode())

    assert len(events) == 2
    assert json.loads(events[1]) == {
        "error": {"message": "internal error", "type": "api_error", "param": None, "code": "internal_error"}
    }


def test_a_refusal_by_the_provider_during_the_stream_keeps_its_error_type() -> None:
    failure = ProviderError(429, "provider_rate_limited", "slow down")

    [event] = parse_sse(b"".join(event_stream(failing_after([], failure), True, LOG)).decode())

    assert json.loads(event)["error"]["type"] == "rate_limit_error"


def test_closing_the_event_stream_closes_its_chunks() -> None:
    closed: list[bool] = []

    def chunks() -> Iterator[ChatCompletionChunk]:
        try:
            yield FRAME.text("Hel")
            yield FRAME.text("lo")
        finally:
            closed.append(True)

    source = chunks()
    body = event_stream(source, False, LOG)
    assert isinstance(body, Generator)
    next(body)
    body.close()

    assert closed == [True]


def test_estimate_prompt_tokens_counts_characters_overheads_images_and_tools() -> None:
    # 3 to prime the reply, 4 for the message, one token for "Hi"
    assert estimate_prompt_tokens(chat_request()) == 8
    longer = chat_request([{"role": "user", "content": "x" * 400}])
    assert estimate_prompt_tokens(longer) == 3 + 4 + 100
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 100_000}}
    with_image = chat_request([{"role": "user", "content": [{"type": "text", "text": "Hi"}, image]}])
    assert estimate_prompt_tokens(with_image) == 8 + 1000
    assert estimate_prompt_tokens(chat_request(tools=[WEATHER_TOOL])) > 8 + 50
    assert estimate_prompt_tokens(chat_request(TOOL_ROUND_TRIP)) > estimate_prompt_tokens(chat_request())
