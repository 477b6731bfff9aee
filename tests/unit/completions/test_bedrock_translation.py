import json
from typing import Any

import pytest
from pydantic import SecretStr

from tests.unit.completions.samples import CLOCK_TOOL, TOOL_ROUND_TRIP, WEATHER_PARAMETERS, WEATHER_TOOL, chat_request
from vmx.completions.anthropic import messages_body
from vmx.completions.bedrock import access_of, completion_from_converse, converse_params, invoke_params
from vmx.completions.calls import AwsCredentials, BedrockAccess
from vmx.providers.config import BedrockConfig

ROLE = "arn:aws:iam::123456789012:role/bedrock-caller"


def config(**fields: Any) -> BedrockConfig:
    return BedrockConfig.model_validate({"region": "eu-west-1", "iamRoleArn": ROLE, **fields})


GUARDED = {
    "performanceConfig": {"latency": "optimized"},
    "guardrailConfig": {"guardrailIdentifier": "gr1abc", "guardrailVersion": "3", "trace": "enabled_full"},
}


def test_a_tool_round_trip_becomes_converse_parameters_with_the_connections_settings() -> None:
    request = chat_request(
        TOOL_ROUND_TRIP,
        tools=[WEATHER_TOOL, CLOCK_TOOL],
        tool_choice="auto",
        temperature=0.2,
        top_p=0.9,
        stop=["END"],
        max_completion_tokens=300,
    )

    assert converse_params("amazon.nova-pro-v1:0", request, config(**GUARDED), "Bedrock") == {
        "modelId": "amazon.nova-pro-v1:0",
        "system": [{"text": "You are terse."}, {"text": "Answer in French."}],
        "messages": [
            {"role": "user", "content": [{"text": "Weather and time in Paris?"}]},
            {
                "role": "assistant",
                "content": [
                    {"text": "Checking."},
                    {"toolUse": {"toolUseId": "call_1", "name": "get_weather", "input": {"city": "Paris"}}},
                    {"toolUse": {"toolUseId": "call_2", "name": "get_time", "input": {}}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"toolResult": {"toolUseId": "call_1", "content": [{"text": '{"temperature": 21}'}]}},
                    {"toolResult": {"toolUseId": "call_2", "content": [{"text": "14:05"}]}},
                    {"text": "And tomorrow?"},
                ],
            },
        ],
        "inferenceConfig": {"maxTokens": 300, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"]},
        "toolConfig": {
            "tools": [
                {
                    "toolSpec": {
                        "name": "get_weather",
                        "description": "Current weather in a city",
                        "inputSchema": {"json": WEATHER_PARAMETERS},
                    }
                },
                {"toolSpec": {"name": "get_time", "inputSchema": {"json": {"type": "object", "properties": {}}}}},
            ],
            "toolChoice": {"auto": {}},
        },
        "performanceConfig": {"latency": "optimized"},
        "guardrailConfig": {"guardrailIdentifier": "gr1abc", "guardrailVersion": "3", "trace": "enabled_full"},
    }


def test_a_plain_request_sends_only_the_model_and_messages() -> None:
    assert converse_params("m", chat_request(), config(), "Bedrock") == {
        "modelId": "m",
        "messages": [{"role": "user", "content": [{"text": "Hi"}]}],
    }


@pytest.mark.parametrize(
    ("tool_choice", "expected"),
    [
        (None, None),
        ("required", {"any": {}}),
        ({"type": "function", "function": {"name": "get_weather"}}, {"tool": {"name": "get_weather"}}),
    ],
)
def test_tool_choice_maps_to_converses(tool_choice: Any, expected: dict[str, Any] | None) -> None:
    params = converse_params("m", chat_request(tools=[WEATHER_TOOL], tool_choice=tool_choice), config(), "Bedrock")

    assert params["toolConfig"].get("toolChoice") == expected


def test_tool_choice_none_leaves_the_tools_out_unless_the_conversation_already_used_them() -> None:
    fresh = converse_params("m", chat_request(tools=[WEATHER_TOOL], tool_choice="none"), config(), "Bedrock")
    used = converse_params(
        "m", chat_request(TOOL_ROUND_TRIP, tools=[WEATHER_TOOL, CLOCK_TOOL], tool_choice="none"), config(), "Bedrock"
    )

    assert "toolConfig" not in fresh
    assert "toolChoice" not in used["toolConfig"] and len(used["toolConfig"]["tools"]) == 2


def test_invoke_parameters_carry_the_anthropic_body_and_the_settings_as_headers() -> None:
    request = chat_request(TOOL_ROUND_TRIP, tools=[WEATHER_TOOL, CLOCK_TOOL], max_tokens=300)

    params = invoke_params("anthropic.claude-3-haiku-20240307-v1:0", request, config(**GUARDED), "Bedrock")

    assert json.loads(params.pop("body")) == {
        "anthropic_version": "bedrock-2023-05-31",
        **messages_body(request, "Bedrock"),
    }
    assert params == {
        "modelId": "anthropic.claude-3-haiku-20240307-v1:0",
        "contentType": "application/json",
        "accept": "application/json",
        "performanceConfigLatency": "optimized",
        "guardrailIdentifier": "gr1abc",
        "guardrailVersion": "3",
        "trace": "ENABLED_FULL",
    }


def test_a_converse_response_becomes_a_completion() -> None:
    response = {
        "output": {
            "message": {
                "role": "assistant",
                "content": [
                    {"reasoningContent": {"reasoningText": {"text": "hmm"}}},
                    {"text": "Checking."},
                    {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Oslo"}}},
                ],
            }
        },
        "stopReason": "tool_use",
        "usage": {
            "inputTokens": 20,
            "outputTokens": 8,
            "totalTokens": 28,
            "cacheReadInputTokens": 100,
            "cacheWriteInputTokens": 3,
        },
        "metrics": {"latencyMs": 100},
    }

    answer = completion_from_converse(response, "amazon.nova-pro-v1:0", 1_700_000_000, "Bedrock")

    assert (answer.model, answer.created) == ("amazon.nova-pro-v1:0", 1_700_000_000)
    choice = answer.choices[0]
    assert choice.message.content == "Checking."
    calls = choice.message.tool_calls or []
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("tooluse_1", "get_weather", {"city": "Oslo"})
    ]
    assert choice.finish_reason == "tool_calls"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.usage.total_tokens) == (123, 8, 131)


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("tool_use", "tool_calls"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("malformed_model_output", "stop"),
    ],
)
def test_stop_reasons_map_to_finish_reasons(stop_reason: str, finish_reason: str) -> None:
    response = {"output": {"message": {"role": "assistant", "content": [{"text": "x"}]}}, "stopReason": stop_reason}

    assert completion_from_converse(response, "m", 0, "Bedrock").choices[0].finish_reason == finish_reason


def test_access_is_the_role_or_else_the_keys() -> None:
    keys = {"accessKeyId": "AKIAEXAMPLE", "secretAccessKey": "secret", "sessionToken": "token"}
    with_keys = BedrockConfig.model_validate({"region": "us-east-1", **keys})

    assert access_of(config()) == BedrockAccess("eu-west-1", role_arn=ROLE)
    assert access_of(with_keys) == BedrockAccess(
        "us-east-1", keys=AwsCredentials(SecretStr("AKIAEXAMPLE"), SecretStr("secret"), SecretStr("token"))
    )
