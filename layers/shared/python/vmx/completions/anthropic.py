"""Anthropic's Messages API: called directly here, and the same body on Bedrock's InvokeModel (see bedrock.py).

A stream is Anthropic's sequence of events (message_start, content blocks opened, grown by deltas and closed,
message_delta with the stop reason and the output tokens so far, message_stop), the same over Anthropic's SSE
and inside Bedrock's InvokeModelWithResponseStream chunks; `chunks_from_events` reads either.
"""

from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from vmx.completions.calls import ProviderCall, ProviderError, ProviderResult, Transports, connection_config
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
from vmx.completions.failures import Redactor, failure_for_status, interrupted, invalid_response, out_of_time
from vmx.completions.http_json import post_json
from vmx.completions.http_sse import open_sse
from vmx.completions.openai_models import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    FinishReason,
    ToolCall,
    Usage,
)
from vmx.completions.streams import ChunkFrame, ProviderStream
from vmx.deadline import Deadline
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
    reply = post_json(
        transports.http, provider, _url(config), _body(call, provider), auth_headers(config), call.wait_seconds()
    )
    if not reply.ok:
        raise reply.failure(Redactor(call.secrets.values()))
    created = int(transports.clock().timestamp())
    answer = completion_from_message(reply.body, call.model, created, provider)
    return ProviderResult(answer, reply.rate_limit_headers)


def stream(call: ProviderCall, transports: Transports) -> ProviderStream:
    config = connection_config(call, ApiKeyConfig)
    provider = PROVIDERS[call.provider].name
    body = {**_body(call, provider), "stream": True}
    sse = open_sse(transports.http, provider, _url(config), body, auth_headers(config), call)
    frame = ChunkFrame(new_completion_id(), int(transports.clock().timestamp()), call.model)
    events = (event.json(provider) for event in sse.events())
    chunks = chunks_from_events(events, frame, provider, Redactor(call.secrets.values()), call.deadline)
    return ProviderStream(chunks, sse.rate_limit_headers, sse.close)


def _url(config: ApiKeyConfig) -> str:
    return f"{config.base_url or DEFAULT_BASE_URL}/v1/messages"


def auth_headers(config: ApiKeyConfig) -> dict[str, str]:
    return {"x-api-key": config.api_key.get_secret_value(), "anthropic-version": API_VERSION}


def _body(call: ProviderCall, provider: str) -> dict[str, Any]:
    body: dict[str, Any] = {"model": call.model, **messages_body(call.request, provider)}
    if call.request.user is not None:
        body["metadata"] = {"user_id": call.request.user}
    return body


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
    return completion(
        completion_id=message.id or new_completion_id(),
        created=created,
        model=message.model or model,
        texts=texts,
        tool_calls=tool_calls,
        finish_reason=finish_reason,
        token_usage=_token_usage(
            tokens.input_tokens,
            tokens.output_tokens,
            tokens.cache_creation_input_tokens,
            tokens.cache_read_input_tokens,
        ),
    )


def _token_usage(
    input_tokens: int, output_tokens: int, cache_creation_tokens: int | None, cache_read_tokens: int | None
) -> Usage:
    """Anthropic counts cache writes and reads apart from `input_tokens`; OpenAI's prompt tokens include them."""
    cache_read = cache_read_tokens or 0
    prompt_tokens = input_tokens + (cache_creation_tokens or 0) + cache_read
    return usage(prompt_tokens, output_tokens, cached_tokens=cache_read or None)


class _StreamBlock(BaseModel):
    type: str
    id: str | None = None
    name: str | None = None
    text: str | None = None


class _StreamDelta(BaseModel):
    # content_block_delta: text_delta, input_json_delta, thinking_delta, signature_delta, citations_delta.
    type: str | None = None
    text: str | None = None
    partial_json: str | None = None
    # message_delta
    stop_reason: str | None = None


class _StreamUsage(BaseModel):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class _StreamMessage(BaseModel):
    id: str | None = None
    model: str | None = None
    usage: _StreamUsage | None = None


class _StreamError(BaseModel):
    type: str | None = None
    message: str | None = None


class _InvocationMetrics(BaseModel):
    """Bedrock's own count, on the last event of an InvokeModelWithResponseStream."""

    model_config = ConfigDict(alias_generator=to_camel)

    input_token_count: int = 0
    output_token_count: int = 0
    cache_read_input_token_count: int | None = None
    cache_write_input_token_count: int | None = None

    def as_usage(self) -> _StreamUsage:
        return _StreamUsage(
            input_tokens=self.input_token_count,
            output_tokens=self.output_token_count,
            cache_creation_input_tokens=self.cache_write_input_token_count,
            cache_read_input_tokens=self.cache_read_input_token_count,
        )


class _StreamEvent(BaseModel):
    type: str
    index: int | None = None
    message: _StreamMessage | None = None
    content_block: _StreamBlock | None = None
    delta: _StreamDelta | None = None
    usage: _StreamUsage | None = None
    error: _StreamError | None = None
    guardrail_action: str | None = Field(default=None, alias="amazon-bedrock-guardrailAction")
    invocation_metrics: _InvocationMetrics | None = Field(default=None, alias="amazon-bedrock-invocationMetrics")


def chunks_from_events(
    events: Iterable[Any],
    frame: ChunkFrame,
    provider: str,
    redactor: Redactor,
    deadline: Deadline | None = None,
) -> Iterator[ChatCompletionChunk]:
    """Anthropic's stream events (each event's JSON) as OpenAI chunks: the role, the text and tool calls as they
    come, the finish reason and the usage once message_stop arrives.

    Thinking and server-tool blocks are left out, as `completion_from_message` leaves them out. Raises
    ProviderError on an error event, an event in an unexpected shape, a stream that ends before message_stop,
    and a deadline passed between two events.
    """
    # Anthropic numbers every content block; OpenAI numbers tool calls only, from 0.
    tool_calls: dict[int, int] = {}
    tools_with_arguments: set[int] = set()
    tokens = _StreamUsage()
    metrics: _InvocationMetrics | None = None
    stop_reason: str | None = None
    guardrail_action: str | None = None
    started = False
    remaining = iter(events)
    for raw in remaining:
        if deadline is not None and deadline.passed:
            raise out_of_time(provider)
        try:
            event = _StreamEvent.model_validate(raw)
        except ValidationError:
            raise invalid_response(provider, "a stream event in an unexpected shape") from None
        if event.type == "error":
            raise _stream_failure(event.error or _StreamError(), provider, redactor)
        guardrail_action = event.guardrail_action or guardrail_action
        metrics = event.invocation_metrics or metrics
        if event.type == "message_start" and event.message is not None:
            frame.completion_id = event.message.id or frame.completion_id
            frame.model = event.message.model or frame.model
            tokens = _added(tokens, event.message.usage)
        if not started:
            started = True
            yield frame.role()
        block, delta = event.content_block, event.delta
        if event.type == "content_block_start" and block is not None and event.index is not None:
            if block.type == "text" and block.text:
                yield frame.text(block.text)
            elif block.type == "tool_use" and block.id is not None and block.name is not None:
                tool_calls[event.index] = len(tool_calls)
                yield frame.tool_call_start(tool_calls[event.index], block.id, block.name)
        elif event.type == "content_block_delta" and delta is not None:
            if delta.type == "text_delta" and delta.text:
                yield frame.text(delta.text)
            elif delta.type == "input_json_delta" and delta.partial_json and event.index in tool_calls:
                tools_with_arguments.add(event.index)
                yield frame.tool_call_arguments(tool_calls[event.index], delta.partial_json)
        elif event.type == "content_block_stop" and event.index in tool_calls:
            # A tool without parameters may get no argument text at all; its arguments are still an object.
            if event.index not in tools_with_arguments:
                yield frame.tool_call_arguments(tool_calls[event.index], "{}")
        elif event.type == "message_delta":
            stop_reason = (delta.stop_reason if delta is not None else None) or stop_reason
            tokens = _added(tokens, event.usage)
        elif event.type == "message_stop":
            finish_reason = FINISH_REASONS.get(stop_reason or "", "stop")
            yield frame.finish("content_filter" if guardrail_action == "INTERVENED" else finish_reason)
            if tokens.input_tokens is None and tokens.output_tokens is None and metrics is not None:
                tokens = metrics.as_usage()
            if tokens.input_tokens is not None or tokens.output_tokens is not None:
                yield frame.usage(
                    _token_usage(
                        tokens.input_tokens or 0,
                        tokens.output_tokens or 0,
                        tokens.cache_creation_input_tokens,
                        tokens.cache_read_input_tokens,
                    )
                )
            # read on to the end of the body, so its connection can serve the next request
            for _ in remaining:
                pass
            return
    raise interrupted(provider)


def _added(tokens: _StreamUsage, reported: _StreamUsage | None) -> _StreamUsage:
    """The counts so far, with those just reported: message_delta's counts are totals, not increments."""
    if reported is None:
        return tokens
    return tokens.model_copy(update=reported.model_dump(exclude_none=True))


def _stream_failure(error: _StreamError, provider: str, redactor: Redactor) -> ProviderError:
    detail = redactor.clean(error.message) if error.message else None
    if error.type == "rate_limit_error":
        return failure_for_status(provider, 429, detail)
    said = f": {detail}" if detail else ""
    kind = f" ({error.type})" if error.type else ""
    return ProviderError(502, "provider_error", f"{provider} failed during the answer{kind}{said}")
