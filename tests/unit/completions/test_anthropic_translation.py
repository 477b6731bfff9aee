import json
from typing import Any

import pytest

from tests.unit.completions.samples import CLOCK_TOOL, TOOL_ROUND_TRIP, WEATHER_PARAMETERS, WEATHER_TOOL, chat_request
from vmx.completions.anthropic import completion_from_message, messages_body
from vmx.completions.calls import ProviderError


def message(content: list[dict[str, Any]], stop_reason: str = "end_turn", **usage: int) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": content,
        "stop_reason": stop_reason,
        "usage": {"input_tokens": 20, "output_tokens": 8, **usage},
    }


def test_a_tool_round_trip_becomes_a_messages_body() -> None:
    request = chat_request(
        TOOL_ROUND_TRIP, tools=[WEATHER_TOOL, CLOCK_TOOL], temperature=0.2, top_p=0.9, stop=["END"], max_tokens=300
    )

    assert messages_body(request, "Anthropic") == {
        "max_tokens": 300,
        "system": [{"type": "text", "text": "You are terse."}, {"type": "text", "text": "Answer in French."}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Weather and time in Paris?"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": '{"temperature": 21}'},
                    {"type": "tool_result", "tool_use_id": "call_2", "content": "14:05"},
                    {"type": "text", "text": "And tomorrow?"},
                ],
            },
        ],
        "temperature": 0.2,
        "top_p": 0.9,
        "stop_sequences": ["END"],
        "tools": [
            {"name": "get_weather", "description": "Current weather in a city", "input_schema": WEATHER_PARAMETERS},
            {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
        ],
    }


def test_max_tokens_is_required_by_anthropic_so_it_has_a_default() -> None:
    assert messages_body(chat_request(), "Anthropic")["max_tokens"] == 4096
    assert messages_body(chat_request(max_tokens=10, max_completion_tokens=99), "Anthropic")["max_tokens"] == 99


@pytest.mark.parametrize(
    ("fields", "tool_choice"),
    [
        ({}, None),
        ({"tool_choice": "auto"}, {"type": "auto"}),
        ({"tool_choice": "required"}, {"type": "any"}),
        ({"tool_choice": "none"}, {"type": "none"}),
        (
            {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
            {"type": "tool", "name": "get_weather"},
        ),
        ({"parallel_tool_calls": False}, {"type": "auto", "disable_parallel_tool_use": True}),
        ({"tool_choice": "required", "parallel_tool_calls": False}, {"type": "any", "disable_parallel_tool_use": True}),
    ],
)
def test_tool_choice_maps_to_anthropics(fields: dict[str, Any], tool_choice: dict[str, Any] | None) -> None:
    body = messages_body(chat_request(tools=[WEATHER_TOOL], **fields), "Anthropic")

    assert body.get("tool_choice") == tool_choice


def test_no_tool_choice_is_sent_without_tools() -> None:
    assert "tool_choice" not in messages_body(chat_request(tool_choice="required"), "Anthropic")


def test_a_message_with_text_and_tool_use_becomes_a_completion_with_tool_calls() -> None:
    body = message(
        [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "text", "text": "Let me look. "},
            {"type": "text", "text": "One moment."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}},
        ],
        stop_reason="tool_use",
        cache_read_input_tokens=100,
        cache_creation_input_tokens=5,
    )

    answer = completion_from_message(body, "claude-sonnet-4-5", 1_700_000_000, "Anthropic")

    assert answer.id == "msg_1"
    assert answer.model == "claude-sonnet-4-5-20250929"
    assert answer.created == 1_700_000_000
    choice = answer.choices[0]
    assert choice.message.content == "Let me look. One moment."
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in choice.message.tool_calls or []] == [
        ("toolu_1", "get_weather", {"city": "Oslo"})
    ]
    assert choice.finish_reason == "tool_calls"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.usage.total_tokens) == (125, 8, 133)
    assert answer.usage.prompt_tokens_details is not None
    assert answer.usage.prompt_tokens_details.cached_tokens == 100


def test_an_answer_of_tool_calls_only_has_no_content_as_openais() -> None:
    body = message([{"type": "tool_use", "id": "toolu_1", "name": "get_time", "input": {}}], stop_reason="tool_use")

    choice = completion_from_message(body, "m", 0, "Anthropic").choices[0]

    assert choice.message.content is None
    assert choice.message.tool_calls is not None and choice.message.tool_calls[0].function.arguments == "{}"


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("something_new", "stop"),
    ],
)
def test_stop_reasons_map_to_finish_reasons(stop_reason: str, finish_reason: str) -> None:
    body = message([{"type": "text", "text": "x"}], stop_reason=stop_reason)

    assert completion_from_message(body, "m", 0, "Anthropic").choices[0].finish_reason == finish_reason


def test_a_bedrock_guardrail_intervention_is_a_content_filter() -> None:
    body = {**message([{"type": "text", "text": "Sorry."}]), "amazon-bedrock-guardrailAction": "INTERVENED"}

    assert completion_from_message(body, "m", 0, "Bedrock").choices[0].finish_reason == "content_filter"


def test_an_unexpected_message_is_an_invalid_response() -> None:
    with pytest.raises(ProviderError) as raised:
        completion_from_message({"content": "not blocks"}, "m", 0, "Anthropic")

    assert (raised.value.status, raised.value.code) == (502, "provider_invalid_response")
