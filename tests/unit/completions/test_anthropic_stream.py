"""Anthropic's stream events, as the Messages API sends them, read into OpenAI chunks."""

import json
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from vmx.completions.anthropic import chunks_from_events
from vmx.completions.calls import ProviderError
from vmx.completions.failures import Redactor
from vmx.completions.openai_models import ChatCompletionChunk
from vmx.completions.streams import ChunkFrame
from vmx.deadline import Deadline

SECRET = "sk-ant-api03-CANARY"
MODEL = "claude-sonnet-4-5-20250929"


def message_start(input_tokens: int = 25, **usage: int) -> dict[str, Any]:
    return {
        "type": "message_start",
        "message": {
            "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": 1, **usage},
        },
    }


def text_block(index: int, *pieces: str) -> list[dict[str, Any]]:
    return [
        {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
        *(
            {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}}
            for piece in pieces
        ),
        {"type": "content_block_stop", "index": index},
    ]


def tool_block(index: int, tool_id: str, name: str, *pieces: str) -> list[dict[str, Any]]:
    start = {"type": "tool_use", "id": tool_id, "name": name, "input": {}}
    return [
        {"type": "content_block_start", "index": index, "content_block": start},
        *(
            {"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": p}}
            for p in pieces
        ),
        {"type": "content_block_stop", "index": index},
    ]


def thinking_block(index: int) -> list[dict[str, Any]]:
    return [
        {"type": "content_block_start", "index": index, "content_block": {"type": "thinking", "thinking": ""}},
        {"type": "content_block_delta", "index": index, "delta": {"type": "thinking_delta", "thinking": "Hmm, 2+2"}},
        {"type": "content_block_delta", "index": index, "delta": {"type": "signature_delta", "signature": "EqQB"}},
        {"type": "content_block_stop", "index": index},
    ]


def message_end(stop_reason: str = "end_turn", output_tokens: int = 15) -> list[dict[str, Any]]:
    return [
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": output_tokens},
        },
        {"type": "message_stop"},
    ]


def streamed(events: Iterable[Any], deadline: Deadline | None = None) -> Iterator[ChatCompletionChunk]:
    frame = ChunkFrame("chatcmpl-local", 1_700_000_000, "claude-sonnet-4-5")
    return chunks_from_events(events, frame, "Anthropic", Redactor([SecretStr(SECRET)]), deadline)


def chunks(events: Iterable[Any], deadline: Deadline | None = None) -> list[ChatCompletionChunk]:
    return list(streamed(events, deadline))


def deltas(answer: list[ChatCompletionChunk]) -> list[dict[str, Any]]:
    """Each chunk's choice as OpenAI would put it on the wire, or its usage for the chunk without choices."""
    return [
        chunk.choices[0].model_dump(exclude_none=True, exclude={"index"})
        if chunk.choices
        else {"usage": chunk.usage.model_dump(exclude_none=True) if chunk.usage else None}
        for chunk in answer
    ]


def test_text_in_several_deltas_streams_after_the_role_and_ends_with_the_reason_and_usage() -> None:
    answer = chunks(
        [message_start(), {"type": "ping"}, *text_block(0, "Hello", ", ", "world!"), *message_end()],
    )

    assert deltas(answer) == [
        {"delta": {"role": "assistant", "content": ""}},
        {"delta": {"content": "Hello"}},
        {"delta": {"content": ", "}},
        {"delta": {"content": "world!"}},
        {"delta": {}, "finish_reason": "stop"},
        {"usage": {"prompt_tokens": 25, "completion_tokens": 15, "total_tokens": 40}},
    ]
    assert {(chunk.id, chunk.model, chunk.created) for chunk in answer} == {
        ("msg_01XFDUDYJgAACzvnptvVoYEL", MODEL, 1_700_000_000)
    }


def test_text_then_two_tool_uses_become_numbered_tool_call_deltas() -> None:
    answer = chunks(
        [
            message_start(),
            *text_block(0, "Let me check."),
            *tool_block(1, "toolu_01A", "get_weather", "", '{"city": ', '"Paris"}'),
            *tool_block(2, "toolu_01B", "get_time", '{"zone"', ': "CET"}'),
            *message_end("tool_use", 80),
        ]
    )

    assert deltas(answer)[1:-1] == [
        {"delta": {"content": "Let me check."}},
        {
            "delta": {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "toolu_01A",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            }
        },
        {"delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}},
        {"delta": {"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}},
        {
            "delta": {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "toolu_01B",
                        "type": "function",
                        "function": {"name": "get_time", "arguments": ""},
                    }
                ]
            }
        },
        {"delta": {"tool_calls": [{"index": 1, "function": {"arguments": '{"zone"'}}]}},
        {"delta": {"tool_calls": [{"index": 1, "function": {"arguments": ': "CET"}'}}]}},
        {"delta": {}, "finish_reason": "tool_calls"},
    ]


def test_a_tool_call_whose_input_never_arrives_gets_an_empty_object() -> None:
    answer = chunks([message_start(), *tool_block(0, "toolu_01C", "get_time"), *message_end("tool_use")])

    arguments = "".join(
        call.function.arguments or ""
        for chunk in answer
        for choice in chunk.choices
        for call in choice.delta.tool_calls or []
        if call.function is not None
    )
    assert json.loads(arguments) == {}


def test_thinking_blocks_are_left_out_and_do_not_shift_tool_call_numbers() -> None:
    answer = chunks(
        [
            message_start(),
            *thinking_block(0),
            {"type": "content_block_start", "index": 1, "content_block": {"type": "redacted_thinking", "data": "x"}},
            {"type": "content_block_stop", "index": 1},
            *text_block(2, "4"),
            *tool_block(3, "toolu_01D", "get_time", "{}"),
            *message_end("tool_use"),
        ]
    )

    assert deltas(answer)[1:4] == [
        {"delta": {"content": "4"}},
        {
            "delta": {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "toolu_01D",
                        "type": "function",
                        "function": {"name": "get_time", "arguments": ""},
                    }
                ]
            }
        },
        {"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}},
    ]
    assert "Hmm" not in "".join(chunk.model_dump_json() for chunk in answer)


def test_server_tool_blocks_are_left_out() -> None:
    server_tool = {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}
    answer = chunks(
        [
            message_start(),
            {"type": "content_block_start", "index": 0, "content_block": server_tool},
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": '{"query": "x"}'},
            },
            {"type": "content_block_stop", "index": 0},
            *text_block(1, "Found it."),
            *message_end(),
        ]
    )

    assert [d["delta"] for d in deltas(answer)[1:-2]] == [{"content": "Found it."}]


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("a_reason_from_the_future", "stop"),
    ],
)
def test_the_stop_reason_becomes_openais_finish_reason(stop_reason: str, finish_reason: str) -> None:
    answer = chunks([message_start(), *text_block(0, "Hi"), *message_end(stop_reason)])

    assert [chunk.choices[0].finish_reason for chunk in answer if chunk.choices] == [None, None, finish_reason]


def test_cache_writes_and_reads_count_as_prompt_tokens_and_reads_as_cached() -> None:
    answer = chunks(
        [
            message_start(input_tokens=10, cache_creation_input_tokens=200, cache_read_input_tokens=1000),
            *text_block(0, "Hi"),
            *message_end(output_tokens=42),
        ]
    )

    assert deltas(answer)[-1] == {
        "usage": {
            "prompt_tokens": 1210,
            "completion_tokens": 42,
            "total_tokens": 1252,
            "prompt_tokens_details": {"cached_tokens": 1000},
        }
    }


def test_counts_in_message_delta_are_totals_that_replace_the_first_ones() -> None:
    end = message_end(output_tokens=7)
    end[0]["usage"] = {"input_tokens": 30, "output_tokens": 7, "cache_read_input_tokens": 5}

    answer = chunks([message_start(input_tokens=30), *text_block(0, "Hi"), *end])

    usage = answer[-1].usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (35, 7)


def test_bedrocks_guardrail_intervention_and_invocation_metrics_stand_in_when_anthropic_says_nothing() -> None:
    start = message_start()
    del start["message"]["usage"]
    end = message_end("end_turn")
    del end[0]["usage"]
    end[1] = {
        "type": "message_stop",
        "amazon-bedrock-guardrailAction": "INTERVENED",
        "amazon-bedrock-invocationMetrics": {
            "inputTokenCount": 12,
            "outputTokenCount": 3,
            "invocationLatency": 420,
            "firstByteLatency": 180,
        },
    }

    answer = chunks([start, *text_block(0, "Sorry, the model cannot answer this question."), *end])

    assert deltas(answer)[-2:] == [
        {"delta": {}, "finish_reason": "content_filter"},
        {"usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}},
    ]


def test_an_answer_without_any_usage_has_no_usage_chunk() -> None:
    start = message_start()
    del start["message"]["usage"]
    end = message_end()
    del end[0]["usage"]

    answer = chunks([start, *text_block(0, "Hi"), *end])

    assert answer[-1].choices[0].finish_reason == "stop"
    assert all(chunk.usage is None for chunk in answer)


@pytest.mark.parametrize(
    ("error_type", "status", "code"),
    [
        ("rate_limit_error", 429, "provider_rate_limited"),
        ("overloaded_error", 502, "provider_error"),
        ("api_error", 502, "provider_error"),
        ("invalid_request_error", 502, "provider_error"),
    ],
)
def test_an_error_event_mid_stream_raises_a_provider_error_without_the_secret(
    error_type: str, status: int, code: str
) -> None:
    error = {"type": "error", "error": {"type": error_type, "message": f"Trouble for key {SECRET}\nretry later"}}

    with pytest.raises(ProviderError) as raised:
        chunks([message_start(), *text_block(0, "Hel"), error])

    assert (raised.value.status, raised.value.code) == (status, code)
    assert SECRET not in raised.value.message
    assert "Trouble for key [redacted] retry later" in raised.value.message


def test_the_chunks_before_an_error_are_yielded_before_it_is_raised() -> None:
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    received: list[ChatCompletionChunk] = []

    with pytest.raises(ProviderError):
        for chunk in streamed([message_start(), *text_block(0, "Hel"), error]):
            received.append(chunk)

    assert [chunk.choices[0].delta.content for chunk in received] == ["", "Hel"]


@pytest.mark.parametrize(
    "cut", [0, 1, 3, -1], ids=["nothing", "after message_start", "mid text", "before message_stop"]
)
def test_a_stream_that_ends_before_message_stop_is_interrupted(cut: int) -> None:
    events = [message_start(), *text_block(0, "Hello", " there"), *message_end()][:cut]

    with pytest.raises(ProviderError) as raised:
        chunks(events)

    assert (raised.value.status, raised.value.code) == (502, "provider_stream_interrupted")


def test_an_event_in_an_unexpected_shape_is_an_invalid_response() -> None:
    with pytest.raises(ProviderError) as raised:
        chunks([message_start(), ["not", "an", "event"]])

    assert (raised.value.status, raised.value.code) == (502, "provider_invalid_response")


def test_a_passed_deadline_stops_the_stream_between_events() -> None:
    with pytest.raises(ProviderError) as raised:
        chunks([message_start(), *text_block(0, "Hi"), *message_end()], deadline=Deadline.after(-1))

    assert (raised.value.status, raised.value.code) == (504, "provider_timeout")


def test_a_deadline_not_yet_passed_lets_the_stream_finish() -> None:
    answer = chunks([message_start(), *text_block(0, "Hi"), *message_end()], deadline=Deadline.after(60))

    assert answer[-2].choices[0].finish_reason == "stop"
