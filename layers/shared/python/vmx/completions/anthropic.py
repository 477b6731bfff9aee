"""Anthropic's Messages API: called directly here, and the same body on Bedrock's InvokeModel (see bedrock.py)."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vmx.completions.calls import ProviderCall, ProviderResult, Transports, connection_config
from vmx.completions.conversation import (
    Text,
    ToolUse,
    Turn,
    completion,
    conversation_of,
    new_completion_id,
    tool_call,
    usage,
)
from vmx.completions.failures import Redactor, invalid_response
from vmx.completions.http_json import post_json
from vmx.completions.openai_models import ChatCompletion, ChatCompletionRequest, FinishReason, ToolCall
from vmx.providers.catalog import PROVIDERS
from vmx.providers.config import ApiKeyConfig

DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
# Anthropic requires max_tokens; a request that sets neither max_completion_tokens nor max_tokens gets this.
DEFAULT_MAX_TOKENS = 4096

FINISH_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def complete(call: ProviderCall, transports: Transports) -> ProviderResult:
    config = connection_config(call, ApiKeyConfig)
    provider = PROVIDERS[call.provider].name
    body: dict[str, Any] = {"model": call.model, **messages_body(call.request, provider)}
    if call.request.user is not None:
        body["metadata"] = {"user_id": call.request.user}
    headers = {"x-api-key": config.api_key.get_secret_value(), "anthropic-version": API_VERSION}
    url = f"{config.base_url or DEFAULT_BASE_URL}/v1/messages"
    reply = post_json(transports.http, provider, url, body, headers, call.timeout_seconds)
    if not reply.ok:
        raise reply.failure(Redactor(call.secrets.values()))
    created = int(transports.clock().timestamp())
    answer = completion_from_message(reply.body, call.model, created, provider)
    return ProviderResult(answer, reply.rate_limit_headers)


def messages_body(request: ChatCompletionRequest, provider: str) -> dict[str, Any]:
    """The Messages API body without `model`: the direct API wants it, Bedrock takes it from the URL."""
    conversation = conversation_of(request, provider)
    body: dict[str, Any] = {
        "max_tokens": request.output_token_limit or DEFAULT_MAX_TOKENS,
        "messages": [_message(turn) for turn in conversation.turns],
    }
    if conversation.system:
        body["system"] = [{"type": "text", "text": text} for text in conversation.system]
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop_sequences:
        body["stop_sequences"] = request.stop_sequences
    if request.tools:
        body["tools"] = [
            {
                "name": tool.function.name,
                **({"description": tool.function.description} if tool.function.description else {}),
                "input_schema": tool.function.parameters or {"type": "object", "properties": {}},
            }
            for tool in request.tools
        ]
        tool_choice = _tool_choice(request)
        if tool_choice is not None:
            body["tool_choice"] = tool_choice
    return body


def _message(turn: Turn) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    for block in turn.blocks:
        if isinstance(block, Text):
            content.append({"type": "text", "text": block.text})
        elif isinstance(block, ToolUse):
            content.append({"type": "tool_use", "id": block.id, "name": block.name, "input": block.arguments})
        else:
            result: dict[str, Any] = {"type": "tool_result", "tool_use_id": block.tool_use_id}
            if block.content:
                result["content"] = block.content
            content.append(result)
    return {"role": turn.role, "content": content}


def _tool_choice(request: ChatCompletionRequest) -> dict[str, Any] | None:
    choice = request.tool_choice
    if choice == "none":
        return {"type": "none"}
    if choice is None and request.parallel_tool_calls is not False:
        return None
    if choice is None or choice == "auto":
        rendered: dict[str, Any] = {"type": "auto"}
    elif choice == "required":
        rendered = {"type": "any"}
    else:
        rendered = {"type": "tool", "name": choice.function.name}
    if request.parallel_tool_calls is False:
        rendered["disable_parallel_tool_use"] = True
    return rendered


class _Block(BaseModel):
    type: str
    text: str | None = None
    id: str | None = None
    name: str | None = None
    input: Any = None


class _Usage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class _Message(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str | None = None
    model: str | None = None
    content: list[_Block]
    stop_reason: str | None = None
    usage: _Usage
    # Bedrock's InvokeModel adds this when a guardrail intervened.
    guardrail_action: str | None = Field(default=None, alias="amazon-bedrock-guardrailAction")


def completion_from_message(body: Any, model: str, created: int, provider: str) -> ChatCompletion:
    """An Anthropic message as a chat completion: text blocks joined, tool_use blocks as tool calls.

    Thinking and server-tool blocks are left out: OpenAI's chat completion has no place for them.
    """
    try:
        message = _Message.model_validate(body)
    except ValidationError:
        raise invalid_response(provider, "a message in an unexpected shape") from None
    texts = [block.text for block in message.content if block.type == "text" and block.text is not None]
    tool_calls: list[ToolCall] = [
        tool_call(block.id, block.name, block.input)
        for block in message.content
        if block.type == "tool_use" and block.id is not None and block.name is not None
    ]
    finish_reason = FINISH_REASONS.get(message.stop_reason or "", "stop")
    if message.guardrail_action == "INTERVENED":
        finish_reason = "content_filter"
    tokens = message.usage
    cache_read = tokens.cache_read_input_tokens or 0
    prompt_tokens = tokens.input_tokens + (tokens.cache_creation_input_tokens or 0) + cache_read
    return completion(
        completion_id=message.id or new_completion_id(),
        created=created,
        model=message.model or model,
        texts=texts,
        tool_calls=tool_calls,
        finish_reason=finish_reason,
        token_usage=usage(prompt_tokens, tokens.output_tokens, cached_tokens=cache_read or None),
    )
