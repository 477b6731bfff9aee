"""OpenAI-shaped requests the translation tests share, as an OpenAI SDK would send them."""

from typing import Any

from vmx.completions.openai_models import ChatCompletionRequest

WEATHER_PARAMETERS = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
    "required": ["city"],
}
WEATHER_TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "description": "Current weather in a city", "parameters": WEATHER_PARAMETERS},
}
CLOCK_TOOL = {"type": "function", "function": {"name": "get_time"}}

# A whole tool round trip: the model asked for two tools, the client answers both, then asks again.
TOOL_ROUND_TRIP: list[dict[str, Any]] = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Weather and time in Paris?"},
    {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
            {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": ""}},
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature": 21}'},
    {"role": "tool", "tool_call_id": "call_2", "content": "14:05"},
    {"role": "developer", "content": "Answer in French."},
    {"role": "user", "content": [{"type": "text", "text": "And tomorrow?"}]},
]


def chat_request(messages: list[dict[str, Any]] | None = None, **fields: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {
            "model": "conn/model",
            "messages": [{"role": "user", "content": "Hi"}] if messages is None else messages,
            **fields,
        }
    )
