"""Google's Gemini API: `models/{model}:generateContent`, and `:streamGenerateContent` over server-sent events."""

import json
import math
import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from vmx.completions.calls import ProviderCall, ProviderError, ProviderResult, Transports, connection_config
from vmx.completions.conversation import (
    Text,
    ToolUse,
    Turn,
    completion,
    conversation_of,
    new_completion_id,
    new_tool_call_id,
    tool_call,
    usage,
)
from vmx.completions.failures import (
    Redactor,
    failure_for_status,
    interrupted,
    invalid_response,
    out_of_time,
    provider_message,
)
from vmx.completions.http_json import HttpReply, post_json
from vmx.completions.http_sse import open_sse
from vmx.completions.openai_models import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    FinishReason,
    ResponseMessage,
    ToolCall,
    Usage,
    estimate_completion_tokens,
    estimate_prompt_tokens,
)
from vmx.completions.streams import ChunkFrame, ProviderStream
from vmx.deadline import Deadline
from vmx.providers.catalog import PROVIDERS
from vmx.providers.config import ApiKeyConfig

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"

_FILTERED = frozenset({"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "LANGUAGE"})
_RETRY_DELAY = re.compile(r"^(\d+(?:\.\d+)?)s$")


def complete(call: ProviderCall, transports: Transports) -> ProviderResult:
    config = connection_config(call, ApiKeyConfig)
    provider = PROVIDERS[call.provider].name
    body = generate_content_body(call.request, provider)
    url = _url(config, call.model, "generateContent")
    reply = post_json(transports.http, provider, url, body, auth_headers(config), call.wait_seconds())
    if not reply.ok:
        raise failure(reply, provider, Redactor(call.secrets.values()))
    created = int(transports.clock().timestamp())
    answer = completion_from_response(reply.body, call.model, created, provider, call.request)
    return ProviderResult(answer, reply.rate_limit_headers)


def stream(call: ProviderCall, transports: Transports) -> ProviderStream:
    config = connection_config(call, ApiKeyConfig)
    provider = PROVIDERS[call.provider].name
    redactor = Redactor(call.secrets.values())
    sse = open_sse(
        transports.http,
        provider,
        _url(config, call.model, "streamGenerateContent?alt=sse"),
        generate_content_body(call.request, provider),
        auth_headers(config),
        call,
        refusal=lambda reply: failure(reply, provider, redactor),
    )
    frame = ChunkFrame(new_completion_id(), int(transports.clock().timestamp()), call.model)
    responses = (event.json(provider) for event in sse.events())
    chunks = chunks_from_responses(responses, frame, provider, redactor, call.deadline)
    return ProviderStream(chunks, sse.rate_limit_headers, sse.close)


def _url(config: ApiKeyConfig, model: str, method: str) -> str:
    # Model ids may be given as Google lists them ("models/gemini-2.5-flash"); quoting keeps the id one segment.
    quoted = quote(model.removeprefix("models/"), safe="")
    return f"{config.base_url or DEFAULT_BASE_URL}/v1beta/models/{quoted}:{method}"


def auth_headers(config: ApiKeyConfig) -> dict[str, str]:
    return {"x-goog-api-key": config.api_key.get_secret_value()}


def generate_content_body(request: ChatCompletionRequest, provider: str) -> dict[str, Any]:
    conversation = conversation_of(request, provider)
    body: dict[str, Any] = {"contents": [_content(turn) for turn in conversation.turns]}
    if conversation.system:
        body["systemInstruction"] = {"parts": [{"text": text} for text in conversation.system]}
    generation: dict[str, Any] = {}
    if request.temperature is not None:
        generation["temperature"] = request.temperature
    if request.top_p is not None:
        generation["topP"] = request.top_p
    if request.output_token_limit is not None:
        generation["maxOutputTokens"] = request.output_token_limit
    if request.stop_sequences:
        generation["stopSequences"] = request.stop_sequences
    if generation:
        body["generationConfig"] = generation
    if request.tools:
        # parametersJsonSchema takes the JSON Schema OpenAI tools carry as is (parameters wants an OpenAPI subset).
        declarations = [
            {
                "name": tool.function.name,
                **({"description": tool.function.description} if tool.function.description else {}),
                **({"parametersJsonSchema": tool.function.parameters} if tool.function.parameters else {}),
            }
            for tool in request.tools
        ]
        body["tools"] = [{"functionDeclarations": declarations}]
        calling = _function_calling(request)
        if calling is not None:
            body["toolConfig"] = {"functionCallingConfig": calling}
    return body


def _content(turn: Turn) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    for block in turn.blocks:
        if isinstance(block, Text):
            parts.append({"text": block.text})
        elif isinstance(block, ToolUse):
            parts.append({"functionCall": {"name": block.name, "args": block.arguments}})
        else:
            parts.append({"functionResponse": {"name": block.name, "response": _response_object(block.content)}})
    return {"role": "model" if turn.role == "assistant" else "user", "parts": parts}


def _response_object(content: str) -> dict[str, Any]:
    """Gemini wants a JSON object back from a function: a tool's JSON object as is, anything else under "output"."""
    try:
        parsed = json.loads(content)
    except ValueError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {"output": content}


def _function_calling(request: ChatCompletionRequest) -> dict[str, Any] | None:
    choice = request.tool_choice
    if choice is None:
        return None
    if choice == "none":
        return {"mode": "NONE"}
    if choice == "auto":
        return {"mode": "AUTO"}
    if choice == "required":
        return {"mode": "ANY"}
    return {"mode": "ANY", "allowedFunctionNames": [choice.function.name]}


def failure(reply: HttpReply, provider: str, redactor: Redactor) -> ProviderError:
    details = _error_details(reply.body)
    # Gemini answers a wrong API key with 400 INVALID_ARGUMENT; its ErrorInfo reason says what it is.
    key_refused = any(detail.get("reason") == "API_KEY_INVALID" for detail in details)
    message = provider_message(reply.body)
    return failure_for_status(
        provider,
        401 if key_refused else reply.status,
        None if key_refused or message is None else redactor.clean(message),
        reply.headers.get("retry-after") or _retry_delay(details),
        reply.rate_limit_headers,
    )


def _error_details(body: Any) -> list[dict[str, Any]]:
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    return [detail for detail in details if isinstance(detail, dict)] if isinstance(details, list) else []


def _retry_delay(details: list[dict[str, Any]]) -> str | None:
    """Gemini's 429 says when to retry in a google.rpc.RetryInfo detail ("17s"), not in a header."""
    for detail in details:
        delay = detail.get("retryDelay")
        match = _RETRY_DELAY.match(delay) if isinstance(delay, str) else None
        if match:
            return str(math.ceil(float(match.group(1))))
    return None


class _GeminiShape(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class _FunctionCall(_GeminiShape):
    name: str
    args: dict[str, Any] | None = None
    id: str | None = None


class _Part(_GeminiShape):
    text: str | None = None
    # Thought summaries, when a thinking model is asked for them, are not part of the answer.
    thought: bool | None = None
    function_call: _FunctionCall | None = None


class _Content(_GeminiShape):
    parts: list[_Part] = []


class _Candidate(_GeminiShape):
    content: _Content | None = None
    finish_reason: str | None = None


class _UsageMetadata(_GeminiShape):
    prompt_token_count: int = 0
    candidates_token_count: int = 0
    thoughts_token_count: int | None = None
    tool_use_prompt_token_count: int | None = None
    cached_content_token_count: int | None = None


class _PromptFeedback(_GeminiShape):
    block_reason: str | None = None


class _Response(_GeminiShape):
    candidates: list[_Candidate] = []
    prompt_feedback: _PromptFeedback | None = None
    usage_metadata: _UsageMetadata | None = None
    model_version: str | None = None
    response_id: str | None = None


def completion_from_response(
    body: Any, model: str, created: int, provider: str, request: ChatCompletionRequest
) -> ChatCompletion:
    try:
        response = _Response.model_validate(body)
    except ValidationError:
        raise invalid_response(provider, "a response in an unexpected shape") from None
    candidate = response.candidates[0] if response.candidates else None
    parts = candidate.content.parts if candidate is not None and candidate.content is not None else []
    texts = [part.text for part in parts if part.text is not None and not part.thought]
    tool_calls = [
        tool_call(part.function_call.id or new_tool_call_id(), part.function_call.name, part.function_call.args)
        for part in parts
        if part.function_call is not None
    ]
    return completion(
        completion_id=response.response_id or new_completion_id(),
        created=created,
        model=response.model_version or model,
        texts=texts,
        tool_calls=tool_calls,
        finish_reason=_finish_reason(candidate, bool(tool_calls)),
        token_usage=_usage(response.usage_metadata, request, texts, tool_calls),
    )


def _finish_reason(candidate: _Candidate | None, called_tools: bool) -> FinishReason:
    if candidate is None:
        # No candidate at all: the prompt itself was blocked (promptFeedback.blockReason).
        return "content_filter"
    if candidate.finish_reason == "MAX_TOKENS":
        return "length"
    if candidate.finish_reason in _FILTERED:
        return "content_filter"
    # Gemini says STOP after function calls too.
    return "tool_calls" if called_tools else "stop"


def _usage(
    metadata: _UsageMetadata | None, request: ChatCompletionRequest, texts: list[str], tool_calls: list[ToolCall]
) -> Usage:
    if metadata is None:
        message = ResponseMessage(content="".join(texts), tool_calls=tool_calls or None)
        return usage(estimate_prompt_tokens(request), estimate_completion_tokens(message))
    return _reported_usage(metadata)


def _reported_usage(metadata: _UsageMetadata) -> Usage:
    return usage(
        metadata.prompt_token_count + (metadata.tool_use_prompt_token_count or 0),
        metadata.candidates_token_count + (metadata.thoughts_token_count or 0),
        cached_tokens=metadata.cached_content_token_count,
        reasoning_tokens=metadata.thoughts_token_count,
    )


def chunks_from_responses(
    responses: Iterable[Any], frame: ChunkFrame, provider: str, redactor: Redactor, deadline: Deadline | None = None
) -> Iterator[ChatCompletionChunk]:
    """The chunks of a streamed answer, one GenerateContentResponse after another.

    Gemini sends text in pieces and each function call whole; the last response carries the finish reason (or,
    for a blocked prompt, promptFeedback and no candidate at all), and every response repeats the usage so far.
    Raises ProviderError when the provider sends an error, or the stream ends before that last response.
    """
    started = False
    tool_calls = 0
    finish_reason: FinishReason | None = None
    reported: _UsageMetadata | None = None
    for body in responses:
        if deadline is not None and deadline.passed:
            raise out_of_time(provider)
        if isinstance(body, dict) and body.get("error") is not None:
            message = provider_message(body)
            said = f": {redactor.clean(message)}" if message else ""
            raise ProviderError(502, "provider_error", f"{provider} failed during the answer{said}")
        try:
            response = _Response.model_validate(body)
        except ValidationError:
            raise invalid_response(provider, "a stream chunk in an unexpected shape") from None
        if not started:
            # Every response of one stream repeats its id and model version.
            frame.completion_id = response.response_id or frame.completion_id
            frame.model = response.model_version or frame.model
            started = True
            yield frame.role()
        reported = response.usage_metadata or reported
        candidate = response.candidates[0] if response.candidates else None
        if candidate is None:
            if response.prompt_feedback is not None and response.prompt_feedback.block_reason is not None:
                finish_reason = _finish_reason(None, False)
            continue
        for part in candidate.content.parts if candidate.content is not None else []:
            if part.function_call is not None:
                call = part.function_call
                arguments = json.dumps(call.args or {})
                yield frame.tool_call_start(tool_calls, call.id or new_tool_call_id(), call.name, arguments)
                tool_calls += 1
            elif part.text and not part.thought:
                yield frame.text(part.text)
        if candidate.finish_reason is not None:
            finish_reason = _finish_reason(candidate, tool_calls > 0)
    if finish_reason is None:
        raise interrupted(provider)
    yield frame.finish(finish_reason)
    if reported is not None:
        yield frame.usage(_reported_usage(reported))
