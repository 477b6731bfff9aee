"""The rate limits a provider reports in its response headers (success or error), per provider.

OpenAI sends `x-ratelimit-limit-requests` and `x-ratelimit-limit-tokens`, both per minute. Groq sends the same
names, but its requests limit is per day (RPD) and its tokens limit per minute (TPM). Anthropic sends
`anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-limit`, all per minute. Perplexity is read
like OpenAI, when it sends those headers. Gemini states its quotas only in a 429's body and Bedrock in
Service Quotas, so their headers report nothing.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from vmx.capacity.limits import MAX_LIMIT, CapacityPeriod
from vmx.providers.catalog import ProviderId

Kind = Literal["requests", "tokens", "input_tokens", "output_tokens"]


@dataclass(frozen=True)
class ObservedLimit:
    """One window's limits as a provider reported them; None: not reported."""

    period: CapacityPeriod
    requests: int | None = None
    tokens: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None


_MINUTE, _DAY = CapacityPeriod.MINUTE, CapacityPeriod.DAY
_OPENAI_HEADERS: tuple[tuple[str, CapacityPeriod, Kind], ...] = (
    ("x-ratelimit-limit-requests", _MINUTE, "requests"),
    ("x-ratelimit-limit-tokens", _MINUTE, "tokens"),
)
_HEADERS: dict[ProviderId, tuple[tuple[str, CapacityPeriod, Kind], ...]] = {
    ProviderId.OPENAI: _OPENAI_HEADERS,
    ProviderId.PERPLEXITY: _OPENAI_HEADERS,
    ProviderId.GROQ: (
        ("x-ratelimit-limit-requests", _DAY, "requests"),
        ("x-ratelimit-limit-tokens", _MINUTE, "tokens"),
    ),
    ProviderId.ANTHROPIC: (
        ("anthropic-ratelimit-requests-limit", _MINUTE, "requests"),
        ("anthropic-ratelimit-tokens-limit", _MINUTE, "tokens"),
        ("anthropic-ratelimit-input-tokens-limit", _MINUTE, "input_tokens"),
        ("anthropic-ratelimit-output-tokens-limit", _MINUTE, "output_tokens"),
    ),
}


def limits_from_headers(provider: ProviderId, headers: Mapping[str, str]) -> list[ObservedLimit] | None:
    """The limits in a provider's rate-limit headers (lowercased names), shortest period first; None if none.

    A value that is not a whole number within our limits is ignored: a header is no reason to fail a request.
    """
    reported: dict[CapacityPeriod, dict[Kind, int]] = {}
    for header, period, kind in _HEADERS.get(provider, ()):
        value = _limit(headers.get(header))
        if value is not None:
            reported.setdefault(period, {})[kind] = value
    if not reported:
        return None
    # CapacityPeriod lists its periods shortest first
    return [ObservedLimit(period, **reported[period]) for period in CapacityPeriod if period in reported]


def _limit(value: str | None) -> int | None:
    text = (value or "").strip()
    if not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if number <= MAX_LIMIT else None
