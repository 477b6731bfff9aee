from typing import Any

import pytest

from tests.unit.completions.samples import TOOL_ROUND_TRIP, chat_request
from vmx.completions.calls import ProviderError
from vmx.completions.conversation import Conversation, Text, ToolResult, ToolUse, Turn, conversation_of


def test_a_tool_round_trip_becomes_system_text_and_alternating_turns() -> None:
    conversation = conversation_of(chat_request(TOOL_ROUND_TRIP), "Anthropic")

    assert conversation == Conversation(
        system=("You are terse.", "Answer in French."),
        turns=(
            Turn("user", (Text("Weather and time in Paris?"),)),
            Turn(
                "assistant",
                (
                    Text("Checking."),
                    ToolUse("call_1", "get_weather", {"city": "Paris"}),
                    ToolUse("call_2", "get_time", {}),
                ),
            ),
            Turn(
                "user",
                (
                    ToolResult("call_1", "get_weather", '{"temperature": 21}'),
                    ToolResult("call_2", "get_time", "14:05"),
                    Text("And tomorrow?"),
                ),
            ),
        ),
    )


def test_consecutive_messages_of_one_role_merge_and_blank_text_is_dropped() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "   "},
        {"role": "user", "content": "one"},
        {"role": "user", "content": [{"type": "text", "text": "two"}, {"type": "text", "text": " "}]},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "three"},
    ]

    conversation = conversation_of(chat_request(messages), "Gemini")

    assert conversation == Conversation((), (Turn("user", (Text("one"), Text("two"), Text("three"))),))


@pytest.mark.parametrize(
    ("messages", "code", "where"),
    [
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x.test/cat.png"}}]}],
            "unsupported_content",
            "messages[0].content[0]: Anthropic connections take text content only, not 'image_url' parts",
        ),
        (
            [
                {"role": "user", "content": "Hi"},
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}],
                },
            ],
            "invalid_tool_arguments",
            "messages[1].tool_calls[0].function.arguments must be a JSON object for Anthropic",
        ),
        (
            [{"role": "user", "content": "Hi"}, {"role": "tool", "tool_call_id": "call_9", "content": "21"}],
            "unknown_tool_call",
            "messages[1].tool_call_id 'call_9' matches no tool call of an earlier assistant message",
        ),
    ],
)
def test_what_cannot_be_translated_is_refused_with_a_400_that_says_where(
    messages: list[dict[str, object]], code: str, where: str
) -> None:
    with pytest.raises(ProviderError) as raised:
        conversation_of(chat_request(messages), "Anthropic")

    assert (raised.value.status, raised.value.code, raised.value.message) == (400, code, where)
