import json
from typing import Any

import pytest
from pydantic import ValidationError

from tests.unit.completions.samples import TOOL_ROUND_TRIP, WEATHER_TOOL, chat_request
from vmx.completions.openai_models import (
    AssistantMessage,
    ChatCompletion,
    ToolMessage,
    estimate_prompt_tokens,
    sse_events,
)


def completion(message: dict[str, Any], finish_reason: str = "stop") -> ChatCompletion:
    return ChatCompletion.model_validate(
        {
            "id": "chatcmpl-1",
            "created": 1_700_000_000,
            "model": "conn/model",
            "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish_reason}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }
    )


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


def test_sse_events_stream_the_content_and_end_with_done() -> None:
    events = parse_sse(sse_events(completion({"content": "Hello there"}), chat_request(stream=True)))

    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert {(c["id"], c["object"], c["created"], c["model"]) for c in chunks} == {
        ("chatcmpl-1", "chat.completion.chunk", 1_700_000_000, "conn/model")
    }
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None] * (len(chunks) - 1) + ["stop"]
    assert reassemble(chunks) == {"content": "Hello there", "tool_calls": [], "finish_reason": "stop"}
    assert all("usage" not in chunk for chunk in chunks)


def test_sse_events_stream_tool_calls_whole_with_their_index() -> None:
    calls = [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
        {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
    ]
    answer = completion({"content": None, "tool_calls": calls}, finish_reason="tool_calls")

    chunks = [json.loads(event) for event in parse_sse(sse_events(answer, chat_request(stream=True)))[:-1]]

    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": None}
    assert reassemble(chunks) == {
        "content": None,
        "tool_calls": [
            {"id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
            {"id": "call_2", "name": "get_time", "arguments": "{}"},
        ],
        "finish_reason": "tool_calls",
    }


def test_sse_events_end_with_a_usage_chunk_when_the_request_asks_for_it() -> None:
    request = chat_request(stream=True, stream_options={"include_usage": True})

    chunks = [json.loads(event) for event in parse_sse(sse_events(completion({"content": "Hi"}), request))[:-1]]

    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    assert all(chunk["usage"] is None for chunk in chunks[:-1])


def test_sse_events_keep_newlines_inside_the_json_of_one_event() -> None:
    body = sse_events(completion({"content": "line one\n\nline two"}), chat_request(stream=True))

    chunks = [json.loads(event) for event in parse_sse(body)[:-1]]

    assert reassemble(chunks)["content"] == "line one\n\nline two"


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
