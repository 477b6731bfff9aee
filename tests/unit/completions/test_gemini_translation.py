import json
from typing import Any

import pytest

from tests.unit.completions.samples import CLOCK_TOOL, TOOL_ROUND_TRIP, WEATHER_PARAMETERS, WEATHER_TOOL, chat_request
from vmx.completions.gemini import completion_from_response, generate_content_body


def response(parts: list[dict[str, Any]], finish_reason: str = "STOP", **usage: int) -> dict[str, Any]:
    return {
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish_reason}],
        "usageMetadata": {"promptTokenCount": 30, "candidatesTokenCount": 9, "totalTokenCount": 39, **usage},
        "modelVersion": "gemini-2.5-flash-001",
        "responseId": "resp-1",
    }


def test_a_tool_round_trip_becomes_a_generate_content_body() -> None:
    request = chat_request(
        TOOL_ROUND_TRIP, tools=[WEATHER_TOOL, CLOCK_TOOL], temperature=0.2, top_p=0.9, stop="END", max_tokens=300
    )

    assert generate_content_body(request, "Google Gemini") == {
        "systemInstruction": {"parts": [{"text": "You are terse."}, {"text": "Answer in French."}]},
        "contents": [
            {"role": "user", "parts": [{"text": "Weather and time in Paris?"}]},
            {
                "role": "model",
                "parts": [
                    {"text": "Checking."},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                    {"functionCall": {"name": "get_time", "args": {}}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"temperature": 21}}},
                    {"functionResponse": {"name": "get_time", "response": {"output": "14:05"}}},
                    {"text": "And tomorrow?"},
                ],
            },
        ],
        "generationConfig": {"temperature": 0.2, "topP": 0.9, "maxOutputTokens": 300, "stopSequences": ["END"]},
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "get_weather",
                        "description": "Current weather in a city",
                        "parametersJsonSchema": WEATHER_PARAMETERS,
                    },
                    {"name": "get_time"},
                ]
            }
        ],
    }


def test_a_plain_request_sends_only_contents() -> None:
    assert generate_content_body(chat_request(), "Google Gemini") == {
        "contents": [{"role": "user", "parts": [{"text": "Hi"}]}]
    }


@pytest.mark.parametrize(
    ("tool_choice", "calling"),
    [
        (None, None),
        ("auto", {"mode": "AUTO"}),
        ("required", {"mode": "ANY"}),
        ("none", {"mode": "NONE"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
        ),
    ],
)
def test_tool_choice_maps_to_function_calling_modes(tool_choice: Any, calling: dict[str, Any] | None) -> None:
    body = generate_content_body(chat_request(tools=[WEATHER_TOOL], tool_choice=tool_choice), "Google Gemini")

    assert body.get("toolConfig") == (None if calling is None else {"functionCallingConfig": calling})


def test_a_response_with_text_and_function_calls_becomes_a_completion() -> None:
    body = response(
        [
            {"text": "thinking it over", "thought": True},
            {"text": "Looking it up."},
            {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}},
            {"functionCall": {"id": "fc-7", "name": "get_time"}},
        ],
        thoughtsTokenCount=50,
        cachedContentTokenCount=10,
        toolUsePromptTokenCount=4,
    )

    answer = completion_from_response(body, "gemini-2.5-flash", 1_700_000_000, "Google Gemini", chat_request())

    assert (answer.id, answer.model, answer.created) == ("resp-1", "gemini-2.5-flash-001", 1_700_000_000)
    choice = answer.choices[0]
    assert choice.message.content == "Looking it up."
    calls = choice.message.tool_calls or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "Oslo"}),
        ("get_time", {}),
    ]
    assert calls[0].id.startswith("call_") and calls[1].id == "fc-7"
    assert choice.finish_reason == "tool_calls"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.usage.total_tokens) == (34, 59, 93)
    assert answer.usage.completion_tokens_details is not None
    assert answer.usage.completion_tokens_details.reasoning_tokens == 50


@pytest.mark.parametrize(
    ("finish_reason", "expected"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "stop"),
        ("OTHER", "stop"),
    ],
)
def test_finish_reasons_map_to_openais(finish_reason: str, expected: str) -> None:
    body = response([{"text": "x"}], finish_reason=finish_reason)

    assert completion_from_response(body, "m", 0, "Google Gemini", chat_request()).choices[0].finish_reason == expected


def test_a_blocked_prompt_has_no_candidate_and_is_a_content_filter() -> None:
    body = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 5}}

    answer = completion_from_response(body, "m", 0, "Google Gemini", chat_request())

    assert answer.choices[0].finish_reason == "content_filter"
    assert answer.choices[0].message.content == ""
    assert answer.usage.prompt_tokens == 5


def test_missing_usage_is_estimated() -> None:
    body = {"candidates": [{"content": {"parts": [{"text": "x" * 40}]}, "finishReason": "STOP"}]}

    answer = completion_from_response(body, "m", 0, "Google Gemini", chat_request())

    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (8, 10)
