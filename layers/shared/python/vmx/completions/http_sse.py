"""A provider's server-sent events over urllib3: one POST, then each event as soon as its bytes arrive.

No retries and no redirects, as for `post_json`. Every read waits at most the call's `wait_seconds()`: the idle
timeout between pieces, shortened near the call's deadline.
"""

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import urllib3
from urllib3 import exceptions as urllib3_errors

from vmx.completions.calls import ProviderCall, ProviderError
from vmx.completions.failures import (
    Redactor,
    interrupted,
    out_of_time,
    rate_limit_headers,
    went_silent,
)
from vmx.completions.http_json import MAX_RESPONSE_BYTES, HttpReply, reply_of, send

# Providers send events of a few hundred bytes; one this large is not a provider speaking SSE.
MAX_EVENT_BYTES = 1024 * 1024
_READ_SIZE = 64 * 1024
# Establishing a connection takes milliseconds; waiting longer only delays the client's error.
_CONNECT_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class SseEvent:
    # The `event:` field (Anthropic names every event), None when the event has none (OpenAI, Gemini).
    event: str | None
    data: str

    def json(self, provider: str) -> Any:
        try:
            return json.loads(self.data)
        except ValueError:
            raise ProviderError(
                502, "provider_invalid_response", f"{provider} sent a stream event that is not JSON"
            ) from None


class SseStream:
    def __init__(self, response: urllib3.BaseHTTPResponse, provider: str, call: ProviderCall):
        self._response = response
        self._provider = provider
        self._call = call
        self.headers = {name.lower(): value for name, value in response.headers.items()}
        self.rate_limit_headers = rate_limit_headers(self.headers)
        self._at_end = False

    def events(self) -> Iterator[SseEvent]:
        """Each event as it completes; ends when the provider closes the stream."""
        pending = b""
        name: str | None = None
        data: list[str] = []
        while True:
            received = self._read()
            if not received:
                self._at_end = True
                break
            pending += received
            *lines, pending = pending.split(b"\n")
            if len(pending) > MAX_EVENT_BYTES:
                raise interrupted(self._provider, f"sent a stream line longer than {MAX_EVENT_BYTES // 1024} KiB")
            for raw in lines:
                line = raw.removesuffix(b"\r").decode("utf-8", errors="replace")
                if not line:
                    if data:
                        yield SseEvent(name, "\n".join(data))
                    name, data = None, []
                elif line.startswith(":"):
                    continue
                else:
                    field, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if field == "data":
                        data.append(value)
                    elif field == "event":
                        name = value
        if data:
            yield SseEvent(name, "\n".join(data))

    def close(self) -> None:
        """A stream read to its end gives its connection back to the pool; one stopped mid-answer cannot."""
        if self._at_end:
            self._response.release_conn()
        else:
            self._response.close()

    def _read(self) -> bytes:
        wait = self._call.wait_seconds()
        if wait <= 0:
            raise out_of_time(self._provider)
        sock = getattr(self._response.connection, "sock", None) if hasattr(self._response, "connection") else None
        if sock is not None:
            sock.settimeout(wait)
        try:
            return self._response.read1(_READ_SIZE)
        except urllib3_errors.ReadTimeoutError:
            if self._call.deadline is not None and self._call.deadline.passed:
                raise out_of_time(self._provider) from None
            raise went_silent(self._provider, self._call.timeout_seconds) from None
        except urllib3_errors.HTTPError:
            raise interrupted(self._provider) from None


def open_sse(
    http: urllib3.PoolManager,
    provider: str,
    url: str,
    payload: Mapping[str, Any],
    headers: Mapping[str, str],
    call: ProviderCall,
    refusal: Callable[[HttpReply], ProviderError] | None = None,
) -> SseStream:
    """Sends the request; returns the stream once the provider accepted it (a 2xx status).

    Raises ProviderError when the provider cannot be reached, times out before answering, or refuses: by
    `refusal(reply)` when given (a provider whose error bodies need reading of their own), else by the
    status and the provider's redacted message.
    """
    wait = call.wait_seconds()
    if wait <= 0:
        raise out_of_time(provider)
    timeout = urllib3.Timeout(connect=min(_CONNECT_TIMEOUT_SECONDS, wait), read=wait)
    response = send(http, provider, "POST", url, payload, {"accept": "text/event-stream", **headers}, timeout, wait)
    if 200 <= response.status < 300:
        return SseStream(response, provider, call)
    try:
        raw = response.read(MAX_RESPONSE_BYTES)
    except urllib3_errors.HTTPError:
        raw = b""
    finally:
        response.close()
    reply = reply_of(provider, response, raw)
    raise refusal(reply) if refusal is not None else reply.failure(Redactor(call.secrets.values()))
