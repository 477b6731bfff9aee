"""OpenAI, Groq and Perplexity: `POST {baseUrl}/chat/completions` with a Bearer key, the request passed through.

The client's request goes as it came (unknown fields included, so provider-specific parameters work), with the
provider's model id and without streaming: the gateway answers a stream from the whole completion.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vmx.completions.calls import ProviderCall, ProviderResult, Transports, connection_config
from vmx.completions.conversation import new_completion_id, usage
from vmx.completions.failures import Redactor, invalid_response
from vmx.completions.http_json import post_json
from vmx.completions.openai_models import (
    ChatCompletion,
    Choice,
    FinishReason,
    ResponseMessage,
    Usage,
    estimate_completion_tokens,
    estimate_prompt_tokens,
)
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
    payload = call.request.model_dump(mode="json", exclude_none=True, exclude={"stream", "stream_options"})
    payload["model"] = call.model
    url = f"{config.base_url or DEFAULT_BASE_URLS[call.provider]}/chat/completions"
    headers = {"authorization": f"Bearer {config.api_key.get_secret_value()}"}
    reply = post_json(transports.http, provider, url, payload, headers, call.timeout_seconds)
    if not reply.ok:
        raise reply.failure(Redactor(call.secrets.values()))
    return ProviderResult(_completion(reply.body, call, int(transports.clock().timestamp())), reply.rate_limit_headers)


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
