"""Reading the limits each provider reports in its rate-limit headers."""

import pytest

from tests.loopback_providers import ANTHROPIC_RATE_LIMIT_HEADERS, OPENAI_RATE_LIMIT_HEADERS
from tests.unit.discovery.samples import GROQ_HEADERS
from vmx.capacity.limits import CapacityPeriod
from vmx.discovery.headers import ObservedLimit, limits_from_headers
from vmx.providers.catalog import ProviderId

MINUTE, DAY = CapacityPeriod.MINUTE, CapacityPeriod.DAY


def test_openai_reports_requests_and_tokens_per_minute() -> None:
    assert limits_from_headers(ProviderId.OPENAI, OPENAI_RATE_LIMIT_HEADERS) == [
        ObservedLimit(MINUTE, requests=10000, tokens=30000000)
    ]


def test_groqs_requests_limit_is_per_day_and_its_tokens_limit_per_minute() -> None:
    assert limits_from_headers(ProviderId.GROQ, GROQ_HEADERS) == [
        ObservedLimit(MINUTE, tokens=6000),
        ObservedLimit(DAY, requests=14400),
    ]


def test_groq_read_from_the_loopback_fakes_headers() -> None:
    assert limits_from_headers(ProviderId.GROQ, OPENAI_RATE_LIMIT_HEADERS) == [
        ObservedLimit(MINUTE, tokens=30000000),
        ObservedLimit(DAY, requests=10000),
    ]


def test_anthropic_reports_requests_tokens_and_input_and_output_tokens_per_minute() -> None:
    assert limits_from_headers(ProviderId.ANTHROPIC, ANTHROPIC_RATE_LIMIT_HEADERS) == [
        ObservedLimit(MINUTE, requests=4000, tokens=480000, input_tokens=400000, output_tokens=80000)
    ]


def test_anthropic_without_the_split_token_limits() -> None:
    headers = {
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": "49",
        "anthropic-ratelimit-tokens-limit": "40000",
        "anthropic-ratelimit-tokens-remaining": "40000",
        "retry-after": "12",
    }

    assert limits_from_headers(ProviderId.ANTHROPIC, headers) == [ObservedLimit(MINUTE, requests=50, tokens=40000)]


def test_perplexity_is_read_like_openai_when_it_sends_the_headers() -> None:
    assert limits_from_headers(ProviderId.PERPLEXITY, {"x-ratelimit-limit-requests": "50"}) == [
        ObservedLimit(MINUTE, requests=50)
    ]
    assert limits_from_headers(ProviderId.PERPLEXITY, {}) is None


@pytest.mark.parametrize("provider", [ProviderId.GEMINI, ProviderId.AWS_BEDROCK, ProviderId.AWS_BEDROCK_INVOKE])
def test_gemini_and_bedrock_report_nothing_in_headers(provider: ProviderId) -> None:
    assert limits_from_headers(provider, {**OPENAI_RATE_LIMIT_HEADERS, **ANTHROPIC_RATE_LIMIT_HEADERS}) is None


def test_another_providers_headers_are_not_read() -> None:
    assert limits_from_headers(ProviderId.OPENAI, ANTHROPIC_RATE_LIMIT_HEADERS) is None
    assert limits_from_headers(ProviderId.ANTHROPIC, OPENAI_RATE_LIMIT_HEADERS) is None


def test_remaining_counts_and_resets_alone_report_no_limit() -> None:
    headers = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1s", "retry-after": "1"}

    assert limits_from_headers(ProviderId.OPENAI, headers) is None


def test_a_refusal_reports_the_same_limits() -> None:
    # a 429 carries the limits with nothing remaining
    refusal = {name: "0" if "remaining" in name else value for name, value in OPENAI_RATE_LIMIT_HEADERS.items()}

    assert limits_from_headers(ProviderId.OPENAI, refusal) == [ObservedLimit(MINUTE, requests=10000, tokens=30000000)]


@pytest.mark.parametrize("value", ["", "  ", "ten", "1.5", "-5", "1e6", "١٢", "²", "9007199254740992", "10 000"])
def test_a_malformed_value_is_ignored(value: str) -> None:
    headers = {"x-ratelimit-limit-requests": value, "x-ratelimit-limit-tokens": "30000"}

    assert limits_from_headers(ProviderId.OPENAI, headers) == [ObservedLimit(MINUTE, tokens=30000)]


def test_surrounding_whitespace_and_zero_are_fine() -> None:
    headers = {"x-ratelimit-limit-requests": " 0 ", "x-ratelimit-limit-tokens": "9007199254740991"}

    assert limits_from_headers(ProviderId.OPENAI, headers) == [
        ObservedLimit(MINUTE, requests=0, tokens=9007199254740991)
    ]
