from typing import Any

import pytest
from pydantic import SecretStr

from vmx.completions.failures import Redactor, failure_for_status, provider_message, rate_limit_headers


@pytest.mark.parametrize(
    ("provider_status", "status", "code"),
    [
        (429, 429, "provider_rate_limited"),
        (401, 502, "provider_authentication_failed"),
        (403, 502, "provider_access_denied"),
        (400, 400, "provider_rejected_request"),
        (404, 404, "provider_rejected_request"),
        (413, 413, "provider_rejected_request"),
        (422, 422, "provider_rejected_request"),
        (418, 400, "provider_rejected_request"),
        (408, 504, "provider_timeout"),
        (302, 502, "provider_error"),
        (500, 502, "provider_error"),
        (503, 502, "provider_error"),
        (529, 502, "provider_error"),
    ],
)
def test_provider_statuses_map_to_what_the_gateway_answers(provider_status: int, status: int, code: str) -> None:
    error = failure_for_status("OpenAI", provider_status, "the provider's words")

    assert (error.status, error.code) == (status, code)


def test_a_rate_limit_keeps_retry_after_and_the_headers_and_says_why() -> None:
    limits = {"x-ratelimit-remaining-requests": "0"}

    error = failure_for_status("Groq", 429, "Rate limit reached for requests", retry_after="7", limits=limits)

    assert error.retry_after == "7"
    assert error.rate_limit_headers == limits
    assert str(error) == "Groq is rate-limiting this AI connection: Rate limit reached for requests"


def test_refused_credentials_never_repeat_the_providers_words() -> None:
    error = failure_for_status("OpenAI", 401, "Incorrect API key provided: sk-abc")

    assert "sk-abc" not in str(error)
    assert error.message == ("OpenAI refused the AI connection's credentials (HTTP 401); update them on the connection")


def test_the_redactor_removes_secrets_control_characters_and_length() -> None:
    redactor = Redactor([SecretStr("sk-long-secret"), SecretStr("sk-long"), SecretStr("")])

    assert redactor.clean("key sk-long-secret and sk-long\r\nend\x00") == "key [redacted] and [redacted] end"
    assert len(redactor.clean("x" * 5000)) == 500


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"error": {"message": "OpenAI or Gemini style", "type": "x"}}, "OpenAI or Gemini style"),
        ({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, "Overloaded"),
        ({"error": "a proxy's string"}, "a proxy's string"),
        ({"message": "Bedrock style"}, "Bedrock style"),
        ({"error": {"code": 500}}, None),
        ("<html>Bad gateway</html>", None),
        (None, None),
    ],
)
def test_provider_messages_are_found_where_each_provider_puts_them(body: Any, message: str | None) -> None:
    assert provider_message(body) == message


def test_only_rate_limit_headers_are_kept_lowercased() -> None:
    headers = {"X-RateLimit-Limit-Requests": "100", "anthropic-ratelimit-tokens-limit": "5", "Retry-After": "3"}

    kept = rate_limit_headers({**headers, "Set-Cookie": "a=b", "content-type": "application/json"})

    assert kept == {"x-ratelimit-limit-requests": "100", "anthropic-ratelimit-tokens-limit": "5", "retry-after": "3"}
