"""OpenAI, Groq and Perplexity: `POST {baseUrl}/chat/completions` with a Bearer key, the request passed through.

The client's request goes as it came (unknown fields included, so provider-specific parameters work), with the
provider's model id. A stream always asks for usage, so that capacity counts the tokens really used; whether the
client sees it is the gateway's business (OpenAI's rule: only when it asked).
"""

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vmx.completions.calls import ProviderCall, ProviderError, ProviderResult, Transports, connection_config
from vmx.completions.conversation import new_completion_id, usage
from vmx.completions.failures import Redactor, invalid_response, provider_message
from vmx.completions.http_json import post_json
from vmx.completions.http_sse import SseStream, open_sse
from vmx.completions.openai_models import (
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    ChunkChoice,
    FinishReason,
    ResponseMessage,
    Usage,
    estimate_completion_tokens,
    estimate_prompt_tokens,
)
from vmx.completions.streams import ChunkFrame, ProviderStream
from vmx.providers.catalog import PROVIDERS, ProviderId
from vmx.providers.config import ApiKeyConfig

DEFAULT_BASE_URLS = {
    ProviderId.OPENAI: "https://api.openai.com/v1",
    ProviderId.GROQ: "https://api.groq.com/openai/v1",
    ProviderId.PERPLEXITY: "https://api.perplexity.ai",
}

# A compatible provider may send null or a reason of its own; OpenAI's SDKs expect one of OpenAI's.
_FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
    "function_call": "function_call",
}


def complete(call: ProviderCall, transports: Transports) -> ProviderResult:
    config = connection_config(call, ApiKeyConfig)
    provider = PROVIDERS[call.provider].name
    payload = _payload(call, exclude={"stream", "stream_options"})
    reply = post_json(transports.http, provider, _url(call, config), payload, auth_headers(config), call.wait_seconds())
    if not reply.ok:
        raise reply.failure(Redactor(call.secrets.values()))
    return ProviderResult(_completion(reply.body, call, int(transports.clock().timestamp())), reply.rate_limit_headers)


def stream(call: ProviderCall, transports: Transports) -> ProviderStream:
    config = connection_config(call, ApiKeyConfig)
    provider = PROVIDERS[call.provider].name
    payload = _payload(call)
    payload["stream"] = True
    # Perplexity reports usage in its chunks unasked (and documents no stream_options).
    if call.provider is not ProviderId.PERPLEXITY:
        payload["stream_options"] = {**payload.get("stream_options", {}), "include_usage": True}
    sse = open_sse(transports.http, provider, _url(call, config), payload, auth_headers(config), call)
    frame = ChunkFrame(new_completion_id(), int(transports.clock().timestamp()), call.model)
    redactor = Redactor(call.secrets.values())
    return ProviderStream(_chunks(sse, frame, provider, redactor), sse.rate_limit_headers, sse.close)


def _payload(call: ProviderCall, exclude: set[str] | None = None) -> dict[str, Any]:
    payload = call.request.model_dump(mode="json", exclude_none=True, exclude=exclude)
    payload["model"] = call.model
    # Perplexity documents only the older name of the answer's limit.
    if call.provider is ProviderId.PERPLEXITY and "max_completion_tokens" in payload:
        payload.setdefault("max_tokens", payload.pop("max_completion_tokens"))
    return payload


def _url(call: ProviderCall, config: ApiKeyConfig) -> str:
    return f"{config.base_url or DEFAULT_BASE_URLS[call.provider]}/chat/completions"


def auth_headers(config: ApiKeyConfig) -> dict[str, str]:
    return {"authorization": f"Bearer {config.api_key.get_secret_value()}"}


class _StreamedChunk(BaseModel):
    """A compatible provider's chunk: usage may ride on any chunk (Perplexity: every one, cumulative; Groq: in
    `x_groq`), finish reasons may be their own, and extras (citations) are kept."""

    model_config = ConfigDict(extra="allow")

    id: str | None = None
    created: int | None = None
    model: str | None = None
    choices: list[dict[str, Any]] = []
    usage: Usage | None = None
    system_fingerprint: str | None = None


def _chunks(sse: SseStream, frame: ChunkFrame, provider: str, redactor: Redactor) -> Iterator[ChatCompletionChunk]:
    """The provider's chunks without their usage, then one usage chunk with the last usage reported."""
    reported: Usage | None = None
    done = False
    for event in sse.events():
        # read on to the end after [DONE], so the connection can serve the next request
        if done or event.data.strip() == "[DONE]":
            done = True
            continue
        body = event.json(provider)
        if isinstance(body, dict) and body.get("error") is not None:
            message = provider_message(body)
            said = f": {redactor.clean(message)}" if message else ""
            raise ProviderError(502, "provider_error", f"{provider} failed during the answer{said}")
        try:
            parsed = _StreamedChunk.model_validate(body)
            extras = dict(parsed.model_extra or {})
            groq = extras.pop("x_groq", None)
            usage = parsed.usage or (
                Usage.model_validate(groq["usage"]) if isinstance(groq, dict) and groq.get("usage") else None
            )
            choices = [_chunk_choice(choice) for choice in parsed.choices]
        except (ValidationError, TypeError):
            raise invalid_response(provider, "a stream chunk in an unexpected shape") from None
        reported = usage or reported
        frame.completion_id = parsed.id or frame.completion_id
        frame.created = parsed.created or frame.created
        frame.model = parsed.model or frame.model
        frame.system_fingerprint = parsed.system_fingerprint or frame.system_fingerprint
        extras.pop("object", None)
        if not choices and not extras:
            continue
        yield ChatCompletionChunk(
            id=frame.completion_id,
            created=frame.created,
            model=frame.model,
            system_fingerprint=frame.system_fingerprint,
            choices=choices,
            **extras,
        )
    if reported is not None:
        yield frame.usage(reported)


def _chunk_choice(choice: dict[str, Any]) -> ChunkChoice:
    reason = choice.get("finish_reason")
    return ChunkChoice.model_validate(
        {**choice, "finish_reason": None if reason is None else _FINISH_REASONS.get(reason, "stop")}
    )


class _Choice(BaseModel):
    model_config = ConfigDict(extra="allow")

    index: int = 0
    message: ResponseMessage
    finish_reason: str | None = None
    logprobs: Any = None


class _Completion(BaseModel):
    """What compatible providers actually send: some leave out usage, ids or a known finish reason."""

    model_config = ConfigDict(extra="allow")

    id: str | None = None
    created: int | None = None
    model: str | None = None
    choices: list[_Choice] = Field(min_length=1)
    usage: Usage | None = None
    system_fingerprint: str | None = None


def _completion(body: Any, call: ProviderCall, now: int) -> ChatCompletion:
    provider = PROVIDERS[call.provider].name
    try:
        parsed = _Completion.model_validate(body)
    except ValidationError:
        raise invalid_response(provider, "a chat completion in an unexpected shape") from None
    choices = [
        Choice(
            index=choice.index,
            message=choice.message,
            finish_reason=_FINISH_REASONS.get(choice.finish_reason or "", "stop"),
            logprobs=choice.logprobs,
            **(choice.model_extra or {}),
        )
        for choice in parsed.choices
    ]
    # Provider extras (Perplexity's citations, OpenAI's service_tier) stay; `object` is always ours.
    extras = {name: value for name, value in (parsed.model_extra or {}).items() if name != "object"}
    return ChatCompletion(
        id=parsed.id or new_completion_id(),
        created=parsed.created or now,
        model=parsed.model or call.model,
        choices=choices,
        usage=parsed.usage
        or usage(estimate_prompt_tokens(call.request), estimate_completion_tokens(choices[0].message)),
        system_fingerprint=parsed.system_fingerprint,
        **extras,
    )
