"""How provider failures become ProviderErrors, with the provider's own words cleaned of secrets.

Status mapping (what our endpoint answers): a provider 429 stays 429 with its retry-after; 401 (the
connection's credentials were refused) and 403 (they lack a permission) become 502, since the client's own
key is fine; 400, 404, 409, 413 and 422 pass through with the provider's message, other 4xx become 400;
408 and timeouts become 504; 5xx, redirects, unreachable hosts and unreadable answers become 502.
"""

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import SecretStr

from vmx.completions.provider_error import ProviderError

_MAX_MESSAGE_CHARS = 500
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]+")
_PASSED_THROUGH_4XX = frozenset({400, 404, 409, 413, 422})
_RATE_LIMIT_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-")
RETRY_HEADERS = frozenset({"retry-after", "retry-after-ms"})


class Redactor:
    """Takes a connection's secrets out of any text that came back from a provider, before it goes anywhere."""

    def __init__(self, secrets: Iterable[SecretStr]):
        values = {secret.get_secret_value() for secret in secrets}
        # Longest first, so a secret that contains another is replaced whole.
        self._values = sorted((value for value in values if value), key=len, reverse=True)

    def clean(self, text: str) -> str:
        for value in self._values:
            text = text.replace(value, "[redacted]")
        text = " ".join(_CONTROL_CHARACTERS.sub(" ", text).split())
        return text if len(text) <= _MAX_MESSAGE_CHARS else text[: _MAX_MESSAGE_CHARS - 1] + "…"


def provider_message(body: Any) -> str | None:
    """The message in a provider's error body: OpenAI, Anthropic and Gemini nest it in `error`."""
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, str):
        return error
    message = error.get("message") if isinstance(error, dict) else body.get("message")
    return message if isinstance(message, str) else None


def rate_limit_headers(headers: Mapping[str, str]) -> dict[str, str]:
    selected = {}
    for name, value in headers.items():
        lowered = name.lower()
        if lowered.startswith(_RATE_LIMIT_PREFIXES) or lowered in RETRY_HEADERS:
            selected[lowered] = value
    return selected


def failure_for_status(
    provider: str,
    status: int,
    detail: str | None,
    retry_after: str | None = None,
    limits: dict[str, str] | None = None,
) -> ProviderError:
    """`detail` must already be cleaned by a Redactor."""
    said = f": {detail}" if detail else ""
    if status == 429:
        message = f"{provider} is rate-limiting this AI connection{said}"
        return ProviderError(429, "provider_rate_limited", message, retry_after, limits)
    if status == 401:
        message = f"{provider} refused the AI connection's credentials (HTTP 401); update them on the connection"
        return ProviderError(502, "provider_authentication_failed", message, rate_limit_headers=limits)
    if status == 403:
        message = f"{provider} denied the AI connection's credentials access (HTTP 403){said}"
        return ProviderError(502, "provider_access_denied", message, rate_limit_headers=limits)
    if status == 408:
        return ProviderError(504, "provider_timeout", f"{provider} timed out (HTTP 408)", rate_limit_headers=limits)
    if 400 <= status < 500:
        answered = status if status in _PASSED_THROUGH_4XX else 400
        message = f"{provider} rejected the request (HTTP {status}){said}"
        return ProviderError(answered, "provider_rejected_request", message, rate_limit_headers=limits)
    if 300 <= status < 400:
        message = f"{provider} answered with a redirect (HTTP {status}), which the gateway does not follow"
        return ProviderError(502, "provider_error", message, rate_limit_headers=limits)
    message = f"{provider} failed (HTTP {status}){said}"
    return ProviderError(502, "provider_error", message, retry_after, limits)


def timed_out(provider: str, timeout_seconds: float) -> ProviderError:
    return ProviderError(504, "provider_timeout", f"{provider} did not answer within {timeout_seconds:g} s")


def unreachable(provider: str) -> ProviderError:
    return ProviderError(502, "provider_unreachable", f"{provider} could not be reached")


def not_connected(provider: str, timeout_seconds: float | None = None) -> ProviderError:
    """No connection to the provider could be made (refused, no such host, or none within the timeout): the
    request never got there."""
    if timeout_seconds is not None:
        message = f"{provider} could not be connected to within {timeout_seconds:g} s"
        return ProviderError(504, "provider_timeout", message, reached=False)
    return ProviderError(502, "provider_unreachable", f"{provider} could not be reached", reached=False)


def address_refused(provider: str, reason: str) -> ProviderError:
    """The connection's address is one the gateway does not connect to (vmx.providers.addresses)."""
    message = f"{provider} was not called: the AI connection's address is refused ({reason}); change its baseUrl"
    return ProviderError(502, "provider_address_refused", message, reached=False)


def unsendable_credentials(provider: str) -> ProviderError:
    """The stored credentials hold what no HTTP header may carry (stored before such secrets were refused)."""
    message = (
        f"{provider} was not called: the AI connection's credentials hold characters no request can carry "
        "(a line break, perhaps); set them again"
    )
    return ProviderError(502, "credentials_unusable", message, reached=False)


def invalid_response(provider: str, why: str) -> ProviderError:
    return ProviderError(502, "provider_invalid_response", f"{provider} answered with {why}")


def went_silent(provider: str, idle_seconds: float) -> ProviderError:
    return ProviderError(504, "provider_timeout", f"{provider} sent nothing for {idle_seconds:g} s")


def out_of_time(provider: str) -> ProviderError:
    message = f"{provider} had not finished when the gateway's time for this request ran out"
    return ProviderError(504, "provider_timeout", message)


def interrupted(provider: str, why: str = "closed the stream before its end") -> ProviderError:
    return ProviderError(502, "provider_stream_interrupted", f"{provider} {why}")
