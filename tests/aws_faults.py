"""Faults injected into real boto3 clients through botocore's event hooks, as AWS would produce them.

An answered fault (throttling, a 500) is the service's own error, parsed as botocore parses it, in place of
the call (`before-call`: moto never sees it), as a call whose every attempt failed would end. A lost answer
lets the call through to moto, which applies it, and then tells botocore's retry logic the answer never
came, so the same request is sent again: the "applied, but the answer was lost" case that retried writes
must survive. `calls` holds what reached the service, retries included.
"""

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import boto3
from botocore.awsrequest import AWSPreparedRequest, AWSResponse

# (HTTP status, error code, message), as the services answer them.
THROTTLED = (400, "ThrottlingException", "Rate exceeded")
INTERNAL_ERROR = (500, "InternalServerError", "Internal server error")

Matches = Callable[[dict[str, Any]], bool]


def every_call(body: dict[str, Any]) -> bool:
    return True


class _Body:
    def __init__(self, payload: bytes) -> None:
        self._payload = payload

    def stream(self, **kwargs: Any) -> Iterator[bytes]:
        yield self._payload


@dataclass
class _Rule:
    operation: str
    matches: Matches
    times: int | None
    answer: tuple[int, str, str] | None
    hits: int = 0

    def applies(self, operation: str, body: dict[str, Any]) -> bool:
        return operation == self.operation and (self.times is None or self.hits < self.times) and self.matches(body)


@dataclass
class AwsFaults:
    """Installed on a boto3 session: every client it creates afterwards carries the faults."""

    _rules: list[_Rule] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def install(self, session: boto3.Session) -> None:
        # botocore's stubs type every handler as returning None; these answer for the call
        hooks: Any = session.events
        hooks.register_first("before-call", self._before_call)
        hooks.register_first("before-send", self._before_send)
        hooks.register_first("needs-retry", self._needs_retry)

    def uninstall(self, session: boto3.Session) -> None:
        hooks: Any = session.events
        hooks.unregister("before-call", self._before_call)
        hooks.unregister("before-send", self._before_send)
        hooks.unregister("needs-retry", self._needs_retry)

    def fail(
        self,
        operation: str,
        answer: tuple[int, str, str] = THROTTLED,
        matches: Matches = every_call,
        times: int | None = None,
    ) -> None:
        """`operation` ("kms.Decrypt", "dynamodb.UpdateItem") is answered with `answer`, `times` times or for
        good, for the calls whose request body `matches`."""
        self._rules.append(_Rule(operation, matches, times, answer))

    def lose_answer(self, operation: str, matches: Matches = every_call, times: int = 1) -> None:
        """`operation` is applied, and its answer lost: botocore sends it again."""
        self._rules.append(_Rule(operation, matches, times, None))

    def heal(self) -> None:
        with self._lock:
            self._rules.clear()

    def of(self, operation: str) -> list[dict[str, Any]]:
        """The request bodies of `operation` that were sent, retries included."""
        return [body for sent, body in self.calls if sent == operation]

    def _before_call(
        self, event_name: str, params: dict[str, Any], **kwargs: Any
    ) -> tuple[AWSResponse, dict[str, Any]] | None:
        operation, body = _operation(event_name), _json(params.get("body"))
        with self._lock:
            for rule in self._rules:
                if rule.answer is not None and rule.applies(operation, body):
                    rule.hits += 1
                    status, code, message = rule.answer
                    headers: Any = {"x-amzn-RequestId": "fault"}
                    http = AWSResponse(params.get("url", ""), status, headers, _Body(b""))
                    parsed = {
                        "Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "fault"},
                    }
                    return http, parsed
        return None

    def _before_send(self, request: AWSPreparedRequest, event_name: str, **kwargs: Any) -> None:
        with self._lock:
            self.calls.append((_operation(event_name), _json(request.body)))

    def _needs_retry(self, event_name: str, request_dict: dict[str, Any], **kwargs: Any) -> float | None:
        operation, body = _operation(event_name), _json(request_dict.get("body"))
        with self._lock:
            for rule in self._rules:
                if rule.answer is None and _applied(kwargs.get("response")) and rule.applies(operation, body):
                    rule.hits += 1
                    # retry at once, as botocore does after a read timeout
                    return 0
        return None


def _applied(response: tuple[AWSResponse, dict[str, Any]] | None) -> bool:
    """Whether the service answered the attempt with success (an error changed nothing to lose)."""
    return response is not None and response[0].status_code < 300


def _operation(event_name: str) -> str:
    # before-send.dynamodb.UpdateItem -> dynamodb.UpdateItem
    return ".".join(event_name.split(".")[1:3])


def _json(raw: Any) -> dict[str, Any]:
    """A request's body: JSON, or the form of a query-protocol service (STS, SQS's older protocol); {} for
    anything else."""
    if not raw:
        return {}
    if isinstance(raw, dict):
        return raw
    try:
        parsed = json.loads(raw)
    except (ValueError, TypeError):
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        return dict(parse_qsl(text)) if "=" in text else {}
    return parsed if isinstance(parsed, dict) else {}
