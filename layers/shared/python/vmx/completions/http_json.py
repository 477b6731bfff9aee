"""One JSON request to a provider over urllib3 (a POST, or a GET to read a list): no retries, no redirects, a total
timeout and a size cap."""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import urllib3
from urllib3 import exceptions as urllib3_errors

from vmx.completions.calls import ProviderError
from vmx.completions.failures import (
    Redactor,
    address_refused,
    failure_for_status,
    invalid_response,
    not_connected,
    provider_message,
    rate_limit_headers,
    timed_out,
    unreachable,
    unsendable_credentials,
)
from vmx.providers.addresses import ForbiddenAddress

# Sent with every request to a provider: a request that arrives carrying it went through this gateway already,
# so a connection pointing at the gateway (directly or through a proxy) is refused instead of looping.
HOP_HEADER = "x-vmx-hop"

# Far above any completion; a provider (or a proxy at a configured baseUrl) cannot exhaust our memory.
MAX_RESPONSE_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class HttpReply:
    provider: str
    status: int
    # Lowercased names.
    headers: Mapping[str, str]
    # The parsed JSON body; None when an error body is not JSON.
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def rate_limit_headers(self) -> dict[str, str]:
        return rate_limit_headers(self.headers)

    def failure(self, redactor: Redactor) -> ProviderError:
        message = provider_message(self.body)
        detail = redactor.clean(message) if message else None
        return failure_for_status(
            self.provider, self.status, detail, self.headers.get("retry-after"), self.rate_limit_headers
        )


def post_json(
    http: urllib3.PoolManager,
    provider: str,
    url: str,
    payload: Mapping[str, Any],
    headers: Mapping[str, str],
    timeout_seconds: float,
) -> HttpReply:
    """Raises ProviderError when the provider cannot be reached, times out, or sends an unreadable 2xx body."""
    return _json_request(http, provider, "POST", url, payload, headers, timeout_seconds)


def get_json(
    http: urllib3.PoolManager, provider: str, url: str, headers: Mapping[str, str], timeout_seconds: float
) -> HttpReply:
    """As `post_json`, for a GET."""
    return _json_request(http, provider, "GET", url, None, headers, timeout_seconds)


def _json_request(
    http: urllib3.PoolManager,
    provider: str,
    method: str,
    url: str,
    payload: Mapping[str, Any] | None,
    headers: Mapping[str, str],
    timeout_seconds: float,
) -> HttpReply:
    accept = {"accept": "application/json", **headers}
    timeout = urllib3.Timeout(total=timeout_seconds)
    response = send(http, provider, method, url, payload, accept, timeout, timeout_seconds)
    try:
        raw = response.read(MAX_RESPONSE_BYTES + 1)
    except urllib3_errors.TimeoutError as exc:
        raise timed_out(provider, timeout_seconds) from exc
    except urllib3_errors.HTTPError as exc:
        raise unreachable(provider) from exc
    if len(raw) > MAX_RESPONSE_BYTES:
        response.close()
        raise invalid_response(provider, f"a body larger than {MAX_RESPONSE_BYTES // (1024 * 1024)} MiB")
    response.release_conn()
    reply = reply_of(provider, response, raw)
    if reply.ok and not isinstance(reply.body, dict):
        raise invalid_response(provider, f"a body that is not a JSON object (HTTP {response.status})")
    return reply


def send(
    http: urllib3.PoolManager,
    provider: str,
    method: str,
    url: str,
    payload: Mapping[str, Any] | None,
    headers: Mapping[str, str],
    timeout: urllib3.Timeout,
    timeout_seconds: float,
) -> urllib3.BaseHTTPResponse:
    """One JSON request (`payload` None: no body), its body left unread. Raises ProviderError when the provider
    cannot be reached or does not answer within `timeout` (`timeout_seconds`, as the message says it)."""
    body = None if payload is None else json.dumps(payload).encode()
    content = {} if body is None else {"content-type": "application/json"}
    try:
        # Retries stay with the client (OpenAI's SDKs retry 429 and 5xx); redirects would carry the key elsewhere.
        return http.request(
            method,
            url,
            body=body,
            # the hop marker last: no adapter's headers can drop it
            headers={**content, **headers, HOP_HEADER: "1"},
            timeout=timeout,
            retries=False,
            redirect=False,
            preload_content=False,
        )
    except ForbiddenAddress as exc:
        raise address_refused(provider, exc.reason) from exc
    except ValueError:
        # http.client refuses a header value with a line break in it, and its message quotes the value
        raise unsendable_credentials(provider) from None
    # Before the request went out (its capacity goes back): NewConnectionError (refused, DNS) is a
    # ConnectTimeoutError too, so it is caught first; a failed TLS handshake sends nothing either.
    except (urllib3_errors.NewConnectionError, urllib3_errors.SSLError) as exc:
        raise not_connected(provider) from exc
    except urllib3_errors.ConnectTimeoutError as exc:
        raise not_connected(provider, timeout_seconds) from exc
    except urllib3_errors.TimeoutError as exc:
        raise timed_out(provider, timeout_seconds) from exc
    except urllib3_errors.HTTPError as exc:
        raise unreachable(provider) from exc


def reply_of(provider: str, response: urllib3.BaseHTTPResponse, raw: bytes) -> HttpReply:
    """A response read whole; its body None when it is not JSON."""
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    return HttpReply(provider, response.status, {name.lower(): value for name, value in response.headers.items()}, body)
