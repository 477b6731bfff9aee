"""Loopback fakes of the providers' APIs for tests at any tier: small threaded HTTP servers on 127.0.0.1
(ephemeral ports) that speak OpenAI's (and Groq's and Perplexity's), Anthropic's, Gemini's and Bedrock's
wire formats, check the credentials and the request's shape, record what they received, and answer with
canned completions and the provider's rate-limit headers.

    with loopback_provider("anthropic") as server:
        config = {"apiKey": server.api_key, "baseUrl": server.base_url}
        ...                                      # make a call through a connection with that config
        assert server.requests[0].body["max_tokens"] == 4096
        server.respond_with(anthropic_message("Bonjour"))   # the next answer
        server.fail_with(429, retry_after="7")              # then a refusal
        server.stall()                                      # then no answer until the server closes

Each lists models too, at its provider's model-list route (`GET /v1/models`, `/v1beta/models`, Bedrock's
`/foundation-models`): LOOPBACK_MODELS, unless a plan says otherwise (`respond_with(model_list(kind, [...]))`).

A request with the wrong credentials gets the provider's own refusal (401; Gemini's 400 API_KEY_INVALID;
Bedrock's 403 UnrecognizedClientException), and a malformed one a 400 that says what is wrong. Bedrock's
fake serves Converse and InvokeModel for a botocore client built with `endpoint_url=server.base_url`; its
`api_key` is the access key id the SigV4 signature must name (None: any, for credentials an STS fake issues).

Each fake streams too, in its provider's own format: server-sent events for OpenAI's and Anthropic's `"stream":
true` and Gemini's `streamGenerateContent?alt=sse`, Bedrock's binary event stream for ConverseStream and
InvokeModelWithResponseStream. The body goes out in HTTP chunks, each piece as it is written. Without a plan a
stream carries LOOPBACK_PIECES; with one, the test says what comes and when, and sees it leave:

    with loopback_provider("openai") as server:
        server.stream_with(["Bon", "jour"], tool_calls=[StreamedToolCall("call_1", "lookup", {"q": "x"})])
        gate = server.hold_after(1)         # the stream pauses once "Bon" is out, until the test sets the gate
        ...                                 # start the call in a thread, read the first piece through the gateway
        assert [index for index, _ in server.sent_pieces] == [0] and not server.stream_ended.is_set()
        gate.set()
        server.stream_with(["a", "b"], error_after=1)  # the next stream: the provider's own error event after "a"
        server.stream_with(["a", "b"], cut_after=1)    # then one dropped after "a", without its end
        assert server.stream_ended.wait(5) and server.client_left  # the reader went away before the end
"""

import base64
import itertools
import json
import select
import socket
import struct
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Protocol
from urllib.parse import parse_qs, unquote

Kind = Literal["openai", "groq", "perplexity", "anthropic", "gemini", "bedrock"]

LOOPBACK_API_KEY = "sk-loopback-5e1f0c2d9a7b4e3f"
LOOPBACK_ANSWER = "Hello from the loopback provider."
# LOOPBACK_ANSWER as an unplanned stream sends it.
LOOPBACK_PIECES = ("Hello", " from", " the", " loopback", " provider.")
# What each kind lists at its model-list route (Perplexity has none), as its provider names them.
LOOPBACK_MODELS: dict[Kind, list[str]] = {
    "openai": ["gpt-4o-mini", "gpt-4.1"],
    "groq": ["llama-3.1-8b-instant"],
    "perplexity": [],
    "anthropic": ["claude-haiku-4-5", "claude-sonnet-4-5"],
    "gemini": ["models/gemini-2.5-flash"],
    "bedrock": ["amazon.nova-lite-v1:0", "anthropic.claude-3-5-haiku-20241022-v1:0"],
}
PROMPT_TOKENS = 12
COMPLETION_TOKENS = 7
# How often a paused stream looks whether its reader has gone or the server is closing.
_POLL_SECONDS = 0.01

# Where each kind's API lives under its base URL, as in the providers' default base URLs.
_PREFIXES: dict[Kind, str] = {
    "openai": "/v1",
    "groq": "/openai/v1",
    "perplexity": "",
    "anthropic": "",
    "gemini": "",
    "bedrock": "",
}

OPENAI_RATE_LIMIT_HEADERS = {
    "x-ratelimit-limit-requests": "10000",
    "x-ratelimit-limit-tokens": "30000000",
    "x-ratelimit-remaining-requests": "9999",
    "x-ratelimit-remaining-tokens": "29999981",
    "x-ratelimit-reset-requests": "6ms",
    "x-ratelimit-reset-tokens": "0s",
}
ANTHROPIC_RATE_LIMIT_HEADERS = {
    "anthropic-ratelimit-requests-limit": "4000",
    "anthropic-ratelimit-requests-remaining": "3999",
    "anthropic-ratelimit-requests-reset": "2026-11-22T12:00:01Z",
    "anthropic-ratelimit-tokens-limit": "480000",
    "anthropic-ratelimit-tokens-remaining": "480000",
    "anthropic-ratelimit-tokens-reset": "2026-11-22T12:00:01Z",
    "anthropic-ratelimit-input-tokens-limit": "400000",
    "anthropic-ratelimit-input-tokens-remaining": "400000",
    "anthropic-ratelimit-input-tokens-reset": "2026-11-22T12:00:01Z",
    "anthropic-ratelimit-output-tokens-limit": "80000",
    "anthropic-ratelimit-output-tokens-remaining": "80000",
    "anthropic-ratelimit-output-tokens-reset": "2026-11-22T12:00:01Z",
}
_RATE_LIMIT_HEADERS: dict[Kind, dict[str, str]] = {
    "openai": OPENAI_RATE_LIMIT_HEADERS,
    "groq": OPENAI_RATE_LIMIT_HEADERS,
    "perplexity": {},
    "anthropic": ANTHROPIC_RATE_LIMIT_HEADERS,
    "gemini": {},
    "bedrock": {},
}


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    # Lowercased names.
    headers: dict[str, str]
    # The parsed JSON body (an InvokeModel body too).
    body: Any


@dataclass(frozen=True)
class _Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class StreamedToolCall:
    """A tool call in a planned stream, in each format's streaming shape: the arguments' JSON in two pieces for
    OpenAI's tool_call deltas, Anthropic's input_json_delta and Converse's toolUse input; Gemini's functionCall
    whole. `id` is the call's id where the format has one (not Gemini)."""

    id: str
    name: str
    arguments: dict[str, Any]

    def argument_pieces(self) -> list[str]:
        text = json.dumps(self.arguments)
        return [text[: len(text) // 2], text[len(text) // 2 :]]


@dataclass(frozen=True)
class _StreamPlan:
    pieces: tuple[str, ...]
    interval: float = 0.0
    tool_calls: tuple[StreamedToolCall, ...] = ()
    finish_reason: str | None = None
    usage: bool = True
    error_after: int | None = None
    error_status: int = 500
    cut_after: int | None = None


_STALL = object()


class _Refused(Exception):
    def __init__(self, reply: _Reply):
        self.reply = reply


class LoopbackProvider:
    def __init__(self, kind: Kind, api_key: str | None, port: int):
        self.kind = kind
        self.api_key = api_key
        self.base_url = f"http://127.0.0.1:{port}{_PREFIXES[kind]}"
        self.requests: list[ReceivedRequest] = []
        self._plans: deque[object] = deque()
        self._gates: dict[int, threading.Event] = {}
        self._lock = threading.Lock()
        self.closing = threading.Event()
        # What the latest streaming request was sent: (index, time.monotonic()) as each piece left, text pieces
        # first, then tool calls; set when the stream ended or was broken off; whether its reader went away first.
        self.sent_pieces: list[tuple[int, float]] = []
        self.stream_ended = threading.Event()
        self.client_left = False

    def respond_with(
        self, body: Any, status: int = 200, headers: dict[str, str] | None = None, delay: float = 0.0
    ) -> None:
        """The next well-formed, authenticated request gets this answer (with the kind's rate-limit headers),
        after `delay` seconds of silence, as a model that thinks long before a whole answer."""
        with self._lock:
            self._plans.append(_Reply(status, body, {**_RATE_LIMIT_HEADERS[self.kind], **(headers or {})}, delay))

    def fail_with(self, status: int, message: str = "loopback failure", retry_after: str | None = None) -> None:
        """The next request gets the provider's own error shape for this status."""
        with self._lock:
            self._plans.append(_error(self.kind, status, message, retry_after))

    def stall(self) -> None:
        """The next request gets no answer until the server closes: for timeouts."""
        with self._lock:
            self._plans.append(_STALL)

    def stream_with(
        self,
        pieces: list[str],
        *,
        interval: float = 0.0,
        tool_calls: list[StreamedToolCall] | None = None,
        finish_reason: str | None = None,
        usage: bool = True,
        error_after: int | None = None,
        error_status: int = 500,
        cut_after: int | None = None,
    ) -> None:
        """The next well-formed, authenticated streaming request gets this stream: the text pieces `interval`
        seconds apart, then the tool calls (a piece each), then the end with the finish reason (the provider's own
        word: OpenAI's finish_reason, Anthropic's and Converse's stop_reason, Gemini's finishReason; by default
        the one for the answer) and the usage (`usage=False`: none, where the format allows it; Anthropic always
        reports it).

        `error_after=n`: after n pieces, the provider's own mid-stream error for `error_status` instead of the
        end; `cut_after=n`: after n pieces the connection closes without the end.
        """
        plan = _StreamPlan(
            tuple(pieces), interval, tuple(tool_calls or ()), finish_reason, usage, error_after, error_status, cut_after
        )
        total = len(plan.pieces) + len(plan.tool_calls)
        for name, after in (("error_after", error_after), ("cut_after", cut_after)):
            if after is not None and not 0 <= after <= total:
                raise ValueError(f"{name}={after}, but the stream has {total} pieces")
        with self._lock:
            self._plans.append(plan)

    def hold_after(self, pieces: int) -> threading.Event:
        """The next stream pauses once `pieces` of its pieces are out (0: after its opening events) until the
        test sets the Event this returns; a stream can have several. A paused stream ends early if its reader goes
        away or the server closes."""
        gate = threading.Event()
        with self._lock:
            self._gates[pieces] = gate
        return gate

    def handle(self, handler: "_Handler") -> None:
        length = int(handler.headers.get("content-length") or 0)
        raw = handler.rfile.read(length)
        headers = {name.lower(): value for name, value in handler.headers.items()}
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        path = handler.path
        with self._lock:
            self.requests.append(ReceivedRequest(handler.command, path, headers, body))
        try:
            route = self._list_route(path) if handler.command == "GET" else self._route(path)
            self._authenticate(headers)
            _CHECKS.get(route, _no_body_check)(body, headers)
        except _Refused as refused:
            _send(handler, refused.reply)
            return
        asks_to_stream = isinstance(body, dict) and body.get("stream") is True
        streams = route in _STREAM_ROUTES or (route in ("openai", "anthropic") and asks_to_stream)
        with self._lock:
            plan = self._plans.popleft() if self._plans else None
        if plan is _STALL:
            self.closing.wait(timeout=30)
            handler.close_connection = True
        elif isinstance(plan, _Reply):
            self.closing.wait(timeout=plan.delay)
            _send(handler, plan)
        elif streams:
            planned = plan if isinstance(plan, _StreamPlan) else _StreamPlan(LOOPBACK_PIECES)
            self._stream(handler, self._stream_format(route, body, path, planned))
        elif plan is None:
            _send(handler, self._default_reply(route, body, path))
        else:
            refusal = "the loopback provider planned a stream for a request that does not stream"
            _send(handler, _error(self.kind, 400, refusal))

    def _route(self, path: str) -> str:
        prefix = _PREFIXES[self.kind]
        if self.kind in ("openai", "groq", "perplexity") and path == f"{prefix}/chat/completions":
            return "openai"
        if self.kind == "anthropic" and path == "/v1/messages":
            return "anthropic"
        if self.kind == "gemini" and path.startswith("/v1beta/models/") and path.endswith(":generateContent"):
            return "gemini"
        bare, _, query = path.partition("?")
        if self.kind == "gemini" and bare.startswith("/v1beta/models/") and bare.endswith(":streamGenerateContent"):
            if parse_qs(query).get("alt") != ["sse"]:
                raise _Refused(
                    _error(self.kind, 400, "the loopback provider streams only server-sent events (alt=sse)")
                )
            return "gemini-stream"
        if self.kind == "bedrock" and path.startswith("/model/"):
            for suffix, route in (
                ("/converse", "converse"),
                ("/invoke", "invoke"),
                ("/converse-stream", "converse-stream"),
                ("/invoke-with-response-stream", "invoke-stream"),
            ):
                if path.endswith(suffix):
                    return route
        raise _Refused(_error(self.kind, 404, f"no route for POST {path}"))

    def _list_route(self, path: str) -> str:
        bare = path.partition("?")[0]
        listed = {
            "openai": f"{_PREFIXES[self.kind]}/models",
            "groq": f"{_PREFIXES[self.kind]}/models",
            "anthropic": "/v1/models",
            "gemini": "/v1beta/models",
            "bedrock": "/foundation-models",
        }
        if listed.get(self.kind) != bare:
            raise _Refused(_error(self.kind, 404, f"no route for GET {bare}"))
        return "models"

    def _authenticate(self, headers: dict[str, str]) -> None:
        if self.kind in ("openai", "groq", "perplexity"):
            given = headers.get("authorization")
            refused = given != f"Bearer {self.api_key}"
            # Echoes the key it got, as a careless proxy might: the gateway must never pass this on.
            message = f"Incorrect API key provided: {given}"
        elif self.kind == "anthropic":
            refused = headers.get("x-api-key") != self.api_key
            message = "invalid x-api-key"
        elif self.kind == "gemini":
            refused = headers.get("x-goog-api-key") != self.api_key
            message = "API key not valid. Please pass a valid API key."
        else:
            signed_by = f"Credential={self.api_key}/" if self.api_key else "Credential="
            refused = signed_by not in headers.get("authorization", "")
            message = "The security token included in the request is invalid."
        if refused:
            raise _Refused(_error(self.kind, 401, message))

    def _default_reply(self, route: str, body: Any, path: str) -> _Reply:
        if route == "models":
            return _Reply(200, model_list(self.kind, LOOPBACK_MODELS[self.kind]), dict(_RATE_LIMIT_HEADERS[self.kind]))
        if route == "openai":
            answer = openai_completion(LOOPBACK_ANSWER, model=body["model"])
        elif route in ("anthropic", "invoke"):
            answer = anthropic_message(LOOPBACK_ANSWER, model=body.get("model", "claude-on-bedrock"))
        elif route == "gemini":
            answer = gemini_response(LOOPBACK_ANSWER, model=unquote(path.split("/")[3].split(":")[0]))
        else:
            answer = converse_response(LOOPBACK_ANSWER)
        return _Reply(200, answer, dict(_RATE_LIMIT_HEADERS[self.kind]))

    def _stream_format(self, route: str, body: Any, path: str, plan: _StreamPlan) -> "_StreamFormat":
        if route == "openai":
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return _OpenAiStream(self.kind, body["model"], plan, include_usage)
        if route == "anthropic":
            return _AnthropicStream(body["model"], plan, on_bedrock=False)
        if route == "invoke-stream":
            return _AnthropicStream(unquote(path.split("/")[2]), plan, on_bedrock=True)
        if route == "gemini-stream":
            return _GeminiStream(unquote(path.split("/")[3].split(":")[0]), plan)
        return _ConverseStream(plan)

    def _stream(self, handler: "_Handler", stream: "_StreamFormat") -> None:
        with self._lock:
            gates, self._gates = self._gates, {}
            self.sent_pieces.clear()
            self.client_left = False
            self.stream_ended.clear()
        writer = _ChunkedWriter(handler, self.closing)
        try:
            headers = {**stream.headers(), **_RATE_LIMIT_HEADERS[self.kind]}
            if not (writer.start(headers) and self._play(writer, stream, gates)):
                handler.close_connection = True
        finally:
            self.client_left = writer.client_left
            self.stream_ended.set()

    def _play(self, writer: "_ChunkedWriter", stream: "_StreamFormat", gates: dict[int, threading.Event]) -> bool:
        """Writes the stream as planned; False when it was broken off (cut, or its reader or the server went)."""
        plan = stream.plan
        steps: list[Callable[[], bytes]] = [partial(stream.text, text) for text in plan.pieces]
        steps += [partial(stream.tool_call, call) for call in plan.tool_calls]
        if not writer.write(stream.start()):
            return False
        for sent in range(len(steps) + 1):
            if sent:
                if sent > 1 and plan.interval > 0 and not writer.wait(seconds=plan.interval):
                    return False
                # Recorded before the write returns, so a reader that has the piece finds it recorded.
                with self._lock:
                    self.sent_pieces.append((sent - 1, time.monotonic()))
                if not writer.write(steps[sent - 1]()):
                    with self._lock:
                        self.sent_pieces.pop()
                    return False
            gate = gates.get(sent)
            if gate is not None and not writer.wait(gate=gate):
                return False
            if plan.error_after == sent:
                return writer.write(stream.error(plan.error_status, "loopback stream failure")) and writer.end()
            if plan.cut_after == sent:
                writer.cut()
                return False
        return writer.write(stream.end()) and writer.end()


def openai_completion(
    text: str | None,
    model: str = "gpt-4o-mini",
    tool_calls: list[dict[str, Any]] | None = None,
    finish_reason: str = "stop",
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-loopback",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "tool_calls": tool_calls, "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": _usage(),
        "system_fingerprint": "fp_loopback",
    }


def anthropic_message(
    text: str | None,
    model: str = "claude-sonnet-4-5",
    tool_uses: list[dict[str, Any]] | None = None,
    stop_reason: str = "end_turn",
) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text is not None else []
    content += [{"type": "tool_use", **tool_use} for tool_use in tool_uses or []]
    return {
        "id": "msg_loopback",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": PROMPT_TOKENS, "output_tokens": COMPLETION_TOKENS},
    }


def gemini_response(
    text: str | None,
    model: str = "gemini-2.5-flash",
    function_calls: list[dict[str, Any]] | None = None,
    finish_reason: str = "STOP",
) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"text": text}] if text is not None else []
    parts += [{"functionCall": call} for call in function_calls or []]
    return {
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish_reason, "index": 0}],
        "usageMetadata": {
            "promptTokenCount": PROMPT_TOKENS,
            "candidatesTokenCount": COMPLETION_TOKENS,
            "totalTokenCount": PROMPT_TOKENS + COMPLETION_TOKENS,
        },
        "modelVersion": model,
        "responseId": "loopback-response",
    }


def converse_response(
    text: str | None, tool_uses: list[dict[str, Any]] | None = None, stop_reason: str = "end_turn"
) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"text": text}] if text is not None else []
    content += [{"toolUse": tool_use} for tool_use in tool_uses or []]
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop_reason,
        "usage": {
            "inputTokens": PROMPT_TOKENS,
            "outputTokens": COMPLETION_TOKENS,
            "totalTokens": PROMPT_TOKENS + COMPLETION_TOKENS,
        },
        "metrics": {"latencyMs": 42},
    }


_BEDROCK_ERRORS = {
    400: "ValidationException",
    401: "UnrecognizedClientException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}
_ANTHROPIC_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    529: "overloaded_error",
}
_GEMINI_STATUSES = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    503: "UNAVAILABLE",
}


def model_list(kind: Kind, models: list[str]) -> dict[str, Any]:
    """A model list as the kind's provider answers it (a complete one: no further pages)."""
    if kind == "anthropic":
        entries = [{"id": model, "type": "model", "display_name": model} for model in models]
        return {"data": entries, "has_more": False}
    if kind == "gemini":
        return {"models": [{"name": model, "displayName": model} for model in models]}
    if kind == "bedrock":
        summaries = [
            {"modelId": model, "modelArn": f"arn:aws:bedrock:us-east-1::foundation-model/{model}"} for model in models
        ]
        return {"modelSummaries": summaries}
    return {"object": "list", "data": [{"id": model, "object": "model", "owned_by": "loopback"} for model in models]}


def _error(kind: Kind, status: int, message: str, retry_after: str | None = None) -> _Reply:
    headers = {"retry-after": retry_after} if retry_after is not None else {}
    if status == 429:
        headers.update(
            {name: "0" if "remaining" in name else value for name, value in _RATE_LIMIT_HEADERS[kind].items()}
        )
    if kind == "anthropic":
        body: Any = {"type": "error", "error": {"type": _ANTHROPIC_ERRORS.get(status, "api_error"), "message": message}}
        return _Reply(status, body, headers)
    if kind == "gemini":
        details: list[dict[str, Any]] = []
        if status == 401:
            # Gemini answers a wrong key with 400 and says why in an ErrorInfo detail.
            status, message = 400, "API key not valid. Please pass a valid API key."
            details.append({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"})
        if retry_after is not None:
            # Gemini says when to retry in a RetryInfo detail rather than a header.
            headers = {}
            details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_after}s"})
        error = {"code": status, "message": message, "status": _GEMINI_STATUSES.get(status, "INTERNAL")}
        return _Reply(status, {"error": {**error, **({"details": details} if details else {})}}, headers)
    if kind == "bedrock":
        code = _BEDROCK_ERRORS.get(status, "InternalServerException")
        # Bedrock refuses unknown credentials with 403 UnrecognizedClientException.
        wire_status = 403 if status == 401 else status
        return _Reply(wire_status, {"message": message}, {**headers, "x-amzn-errortype": f"{code}:http://internal/"})
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}
    return _Reply(status, body, headers)


def _check_openai(body: Any, headers: dict[str, str]) -> None:
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        raise _Refused(_error("openai", 400, "you must provide a model parameter"))
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _Refused(_error("openai", 400, "'messages' must be a non-empty array"))
    roles = {"system", "developer", "user", "assistant", "tool"}
    if any(not isinstance(message, dict) or message.get("role") not in roles for message in messages):
        raise _Refused(_error("openai", 400, "each message needs a valid role"))
    if body.get("stream") not in (None, True, False):
        raise _Refused(_error("openai", 400, "'stream' must be a boolean"))
    if "stream_options" in body and body.get("stream") is not True:
        raise _Refused(
            _error("openai", 400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.")
        )
    if not isinstance(body.get("stream_options") or {}, dict):
        raise _Refused(_error("openai", 400, "'stream_options' must be an object"))


def _check_anthropic_body(body: Any, kind: Kind) -> None:
    if not isinstance(body, dict) or not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        raise _Refused(_error(kind, 400, "max_tokens: Field required"))
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _Refused(_error(kind, 400, "messages: at least one message is required"))
    tool_use_ids: set[str] = set()
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise _Refused(_error(kind, 400, f"messages.{index}.role: Input should be 'user' or 'assistant'"))
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(blocks, list) or not blocks:
            raise _Refused(_error(kind, 400, f"messages.{index}.content: must not be empty"))
        for block in blocks:
            if block.get("type") == "text" and not str(block.get("text", "")).strip():
                raise _Refused(_error(kind, 400, "text content blocks must contain non-whitespace text"))
            if block.get("type") == "tool_use":
                tool_use_ids.add(block["id"])
            if block.get("type") == "tool_result" and block.get("tool_use_id") not in tool_use_ids:
                raise _Refused(_error(kind, 400, "tool_result block(s) provided without a matching tool_use"))


def _check_anthropic(body: Any, headers: dict[str, str]) -> None:
    if headers.get("anthropic-version") is None:
        raise _Refused(_error("anthropic", 400, "anthropic-version: header is required"))
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        raise _Refused(_error("anthropic", 400, "model: Field required"))
    if body.get("stream") not in (None, True, False):
        raise _Refused(_error("anthropic", 400, "stream: Input should be a valid boolean"))
    _check_anthropic_body(body, "anthropic")


def _check_gemini(body: Any, headers: dict[str, str]) -> None:
    contents = body.get("contents") if isinstance(body, dict) else None
    if not isinstance(contents, list) or not contents:
        raise _Refused(_error("gemini", 400, "* GenerateContentRequest.contents: contents is not specified"))
    for index, content in enumerate(contents):
        if content.get("role") not in ("user", "model") or not content.get("parts"):
            raise _Refused(_error("gemini", 400, f"* GenerateContentRequest.contents[{index}]: needs a role and parts"))


def _check_converse(body: Any, headers: dict[str, str]) -> None:
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list) or not messages:
        raise _Refused(_error("bedrock", 400, "A conversation must start with a user message."))
    for previous, current in itertools.pairwise(messages):
        if previous.get("role") == current.get("role"):
            raise _Refused(_error("bedrock", 400, "A conversation must alternate between user and assistant roles."))


def _check_invoke(body: Any, headers: dict[str, str]) -> None:
    if not isinstance(body, dict) or body.get("anthropic_version") != "bedrock-2023-05-31":
        raise _Refused(_error("bedrock", 400, "anthropic_version: bedrock-2023-05-31 is required"))
    if "stream" in body:
        # Bedrock streams by its route, and refuses Anthropic's own switch.
        raise _Refused(_error("bedrock", 400, "Malformed input request: extraneous key [stream] is not permitted"))
    _check_anthropic_body(body, "bedrock")


def _no_body_check(body: Any, headers: dict[str, str]) -> None:
    pass


_CHECKS = {
    "openai": _check_openai,
    "anthropic": _check_anthropic,
    "gemini": _check_gemini,
    "gemini-stream": _check_gemini,
    "converse": _check_converse,
    "converse-stream": _check_converse,
    "invoke": _check_invoke,
    "invoke-stream": _check_invoke,
}
# Routes that always stream; OpenAI's and Anthropic's stream when the body says `"stream": true`.
_STREAM_ROUTES = {"gemini-stream", "converse-stream", "invoke-stream"}


class _StreamFormat(Protocol):
    """One streamed answer in a provider's format: the bytes each step of the plan writes."""

    plan: _StreamPlan

    def headers(self) -> dict[str, str]: ...
    def start(self) -> bytes: ...
    def text(self, text: str) -> bytes: ...
    def tool_call(self, call: StreamedToolCall) -> bytes: ...
    def end(self) -> bytes: ...
    def error(self, status: int, message: str) -> bytes: ...


def _sse(data: Any, event: str | None = None, separator: str = "\n\n") -> bytes:
    named = f"event: {event}\n" if event is not None else ""
    return f"{named}data: {json.dumps(data)}{separator}".encode()


def _usage(completion_tokens: int = COMPLETION_TOKENS) -> dict[str, int]:
    return {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": completion_tokens,
        "total_tokens": PROMPT_TOKENS + completion_tokens,
    }


class _OpenAiStream:
    """`chat.completion.chunk`s: a role chunk, the pieces, a finish chunk, the usage chunk without choices when the
    request asked for it (`stream_options.include_usage`), then `[DONE]`. Perplexity puts its usage so far on every
    chunk unasked; Groq adds its own `x_groq.usage` to the finish chunk."""

    def __init__(self, kind: Kind, model: str, plan: _StreamPlan, include_usage: bool):
        self.plan = plan
        self._kind = kind
        self._model = model
        self._include_usage = include_usage and plan.usage and kind != "perplexity"
        self._sent = 0
        self._tool_calls = 0

    def headers(self) -> dict[str, str]:
        return {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}

    def _frame(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": "chatcmpl-loopback",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": self._model,
            "system_fingerprint": "fp_loopback",
            "choices": choices,
        }

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        chunk = self._frame([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}])
        if self._include_usage:
            chunk["usage"] = None
        if self._kind == "perplexity" and self.plan.usage:
            chunk["usage"] = _usage(COMPLETION_TOKENS if finish_reason else min(self._sent, COMPLETION_TOKENS))
        if self._kind == "groq" and finish_reason and self.plan.usage:
            chunk["x_groq"] = {"id": "req_loopback", "usage": _usage()}
        return _sse(chunk)

    def start(self) -> bytes:
        return self._chunk({"role": "assistant", "content": "", "refusal": None})

    def text(self, text: str) -> bytes:
        self._sent += 1
        return self._chunk({"content": text})

    def tool_call(self, call: StreamedToolCall) -> bytes:
        self._sent += 1
        index, self._tool_calls = self._tool_calls, self._tool_calls + 1
        opening = {"index": index, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
        chunks = [self._chunk({"tool_calls": [opening]})]
        chunks += [
            self._chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            for piece in call.argument_pieces()
        ]
        return b"".join(chunks)

    def end(self) -> bytes:
        finish_reason = self.plan.finish_reason or ("tool_calls" if self.plan.tool_calls else "stop")
        ending = self._chunk({}, finish_reason)
        if self._include_usage:
            ending += _sse({**self._frame([]), "usage": _usage()})
        return ending + b"data: [DONE]\n\n"

    def error(self, status: int, message: str) -> bytes:
        kind, code = {429: ("requests", "rate_limit_exceeded")}.get(status, ("server_error", None))
        return _sse({"error": {"message": message, "type": kind, "param": None, "code": code}})


class _AnthropicStream:
    """Anthropic's stream events: message_start, then a content block for the text and one for each tool use
    (content_block_start, deltas, content_block_stop), message_delta with the stop reason and output tokens, and
    message_stop. As server-sent events named by their type, with a ping; on Bedrock (InvokeModel's stream)
    each event is a `chunk` message carrying its JSON in base64, the last with Bedrock's invocation metrics."""

    def __init__(self, model: str, plan: _StreamPlan, on_bedrock: bool):
        self.plan = plan
        self._model = model
        self._on_bedrock = on_bedrock
        self._open: int | None = None
        self._blocks = 0

    def headers(self) -> dict[str, str]:
        if self._on_bedrock:
            return {**_BEDROCK_STREAM_HEADERS, "x-amzn-bedrock-content-type": "application/json"}
        return {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}

    def _encode(self, events: list[dict[str, Any]]) -> bytes:
        if self._on_bedrock:
            return b"".join(
                _bedrock_event("chunk", {"bytes": base64.b64encode(json.dumps(event).encode()).decode()})
                for event in events
            )
        return b"".join(_sse(event, event=event["type"]) for event in events)

    def _start_block(self, block: dict[str, Any]) -> dict[str, Any]:
        self._open, self._blocks = self._blocks, self._blocks + 1
        return {"type": "content_block_start", "index": self._open, "content_block": block}

    def _stop_block(self) -> list[dict[str, Any]]:
        if self._open is None:
            return []
        index, self._open = self._open, None
        return [{"type": "content_block_stop", "index": index}]

    def start(self) -> bytes:
        message = anthropic_message(None, model=self._model)
        message.update(stop_reason=None, usage={"input_tokens": PROMPT_TOKENS, "output_tokens": 1})
        events = [{"type": "message_start", "message": message}]
        if self.plan.pieces:
            events.append(self._start_block({"type": "text", "text": ""}))
        if not self._on_bedrock:
            events.append({"type": "ping"})
        return self._encode(events)

    def text(self, text: str) -> bytes:
        return self._encode(
            [{"type": "content_block_delta", "index": self._open, "delta": {"type": "text_delta", "text": text}}]
        )

    def tool_call(self, call: StreamedToolCall) -> bytes:
        events = self._stop_block()
        events.append(self._start_block({"type": "tool_use", "id": call.id, "name": call.name, "input": {}}))
        events += [
            {
                "type": "content_block_delta",
                "index": self._open,
                "delta": {"type": "input_json_delta", "partial_json": piece},
            }
            for piece in call.argument_pieces()
        ]
        return self._encode(events + self._stop_block())

    def end(self) -> bytes:
        stop_reason = self.plan.finish_reason or ("tool_use" if self.plan.tool_calls else "end_turn")
        delta = {"stop_reason": stop_reason, "stop_sequence": None}
        stop: dict[str, Any] = {"type": "message_stop"}
        if self._on_bedrock and self.plan.usage:
            stop["amazon-bedrock-invocationMetrics"] = {
                "inputTokenCount": PROMPT_TOKENS,
                "outputTokenCount": COMPLETION_TOKENS,
                "invocationLatency": 42,
                "firstByteLatency": 12,
            }
        return self._encode(
            [
                *self._stop_block(),
                {"type": "message_delta", "delta": delta, "usage": {"output_tokens": COMPLETION_TOKENS}},
                stop,
            ]
        )

    def error(self, status: int, message: str) -> bytes:
        if self._on_bedrock:
            return _bedrock_exception(status, message)
        error = {"type": _ANTHROPIC_ERRORS.get(status, "api_error"), "message": message}
        return _sse({"type": "error", "error": error}, event="error")


class _GeminiStream:
    """GenerateContentResponses as server-sent events (CRLF-separated, as Google sends them): one per text piece,
    one per function call (whole), every one with the usage so far, and a last one with the finish reason."""

    def __init__(self, model: str, plan: _StreamPlan):
        self.plan = plan
        self._model = model
        self._sent = 0

    def headers(self) -> dict[str, str]:
        return {"content-type": "text/event-stream"}

    def _response(self, parts: list[dict[str, Any]], finish_reason: str | None = None) -> bytes:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        body: dict[str, Any] = {
            "candidates": [candidate],
            "modelVersion": self._model,
            "responseId": "loopback-response",
        }
        if finish_reason is not None:
            candidate["finishReason"] = finish_reason
        if self.plan.usage:
            completion = COMPLETION_TOKENS if finish_reason else min(self._sent, COMPLETION_TOKENS)
            body["usageMetadata"] = {
                "promptTokenCount": PROMPT_TOKENS,
                "candidatesTokenCount": completion,
                "totalTokenCount": PROMPT_TOKENS + completion,
            }
        return _sse(body, separator="\r\n\r\n")

    def start(self) -> bytes:
        return b""

    def text(self, text: str) -> bytes:
        self._sent += 1
        return self._response([{"text": text}])

    def tool_call(self, call: StreamedToolCall) -> bytes:
        self._sent += 1
        return self._response([{"functionCall": {"name": call.name, "args": call.arguments}}])

    def end(self) -> bytes:
        return self._response([{"text": ""}], self.plan.finish_reason or "STOP")

    def error(self, status: int, message: str) -> bytes:
        error = {"code": status, "message": message, "status": _GEMINI_STATUSES.get(status, "INTERNAL")}
        return _sse({"error": error}, separator="\r\n\r\n")


class _ConverseStream:
    """ConverseStream's events: messageStart, the text's contentBlockDeltas (a text block has no start event),
    for each tool use a contentBlockStart, its input in deltas and a contentBlockStop, then messageStop and the
    metadata event with usage and metrics."""

    def __init__(self, plan: _StreamPlan):
        self.plan = plan
        self._open: int | None = None
        self._blocks = 0

    def headers(self) -> dict[str, str]:
        return dict(_BEDROCK_STREAM_HEADERS)

    def _stop_block(self) -> bytes:
        if self._open is None:
            return b""
        index, self._open = self._open, None
        return _bedrock_event("contentBlockStop", {"contentBlockIndex": index})

    def _next_block(self) -> int:
        self._open, self._blocks = self._blocks, self._blocks + 1
        return self._open

    def start(self) -> bytes:
        return _bedrock_event("messageStart", {"role": "assistant"})

    def text(self, text: str) -> bytes:
        index = self._open if self._open is not None else self._next_block()
        return _bedrock_event("contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": text}})

    def tool_call(self, call: StreamedToolCall) -> bytes:
        events = self._stop_block()
        index = self._next_block()
        start = {"toolUse": {"toolUseId": call.id, "name": call.name}}
        events += _bedrock_event("contentBlockStart", {"contentBlockIndex": index, "start": start})
        for piece in call.argument_pieces():
            delta = {"toolUse": {"input": piece}}
            events += _bedrock_event("contentBlockDelta", {"contentBlockIndex": index, "delta": delta})
        return events + self._stop_block()

    def end(self) -> bytes:
        stop_reason = self.plan.finish_reason or ("tool_use" if self.plan.tool_calls else "end_turn")
        events = self._stop_block() + _bedrock_event("messageStop", {"stopReason": stop_reason})
        if self.plan.usage:
            usage = {
                "inputTokens": PROMPT_TOKENS,
                "outputTokens": COMPLETION_TOKENS,
                "totalTokens": PROMPT_TOKENS + COMPLETION_TOKENS,
            }
            events += _bedrock_event("metadata", {"usage": usage, "metrics": {"latencyMs": 42}})
        return events

    def error(self, status: int, message: str) -> bytes:
        return _bedrock_exception(status, message)


_BEDROCK_STREAM_HEADERS = {
    "content-type": "application/vnd.amazon.eventstream",
    "x-amzn-requestid": "loopback-request",
}
# The exceptions both of Bedrock's event streams can carry mid-stream, by the status they stand for.
_BEDROCK_STREAM_EXCEPTIONS = {
    400: "validationException",
    424: "modelStreamErrorException",
    429: "throttlingException",
    500: "internalServerException",
    503: "serviceUnavailableException",
}
# Bedrock pads its stream events' JSON with a "p" field (of varying length), which clients ignore.
_BEDROCK_PADDING = "abcdefghijklmnopqrstuvwxyzABCDEF"


def _bedrock_event(event_type: str, payload: dict[str, Any]) -> bytes:
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return _event_message(headers, json.dumps({**payload, "p": _BEDROCK_PADDING}).encode())


def _bedrock_exception(status: int, message: str) -> bytes:
    headers = {
        ":exception-type": _BEDROCK_STREAM_EXCEPTIONS.get(status, "internalServerException"),
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return _event_message(headers, json.dumps({"message": message}).encode())


def _event_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One message of AWS's binary event stream: a prelude (total and headers lengths, big-endian uint32, and
    the prelude's CRC32), string-typed headers (name length, name, type 7, value length, value), the payload, and
    the CRC32 of all that precedes it."""
    encoded = b""
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        encoded += struct.pack(">B", len(raw_name)) + raw_name + struct.pack(">BH", 7, len(raw_value)) + raw_value
    prelude = struct.pack(">II", 12 + len(encoded) + len(payload) + 4, len(encoded))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


class _ChunkedWriter:
    """One streamed response body in HTTP chunks, each written at once; notices a reader that went away (its
    end of the connection closed, or a write refused) and a server that is closing."""

    def __init__(self, handler: "_Handler", closing: threading.Event):
        self._handler = handler
        self._closing = closing
        self.client_left = False

    def start(self, headers: dict[str, str]) -> bool:
        self._handler.send_response(200)
        for name, value in {**headers, "transfer-encoding": "chunked"}.items():
            self._handler.send_header(name, value)
        return self._send(self._handler.end_headers)

    def write(self, data: bytes) -> bool:
        if not data:
            # An empty chunk would end the body.
            return True
        return not self._gone() and self._send(partial(self._handler.wfile.write, b"%x\r\n%s\r\n" % (len(data), data)))

    def end(self) -> bool:
        return self._send(partial(self._handler.wfile.write, b"0\r\n\r\n"))

    def cut(self) -> None:
        """Closes the connection mid-body, as a provider's dropped connection does."""
        self._handler.close_connection = True
        try:
            self._handler.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            self.client_left = True

    def wait(self, seconds: float | None = None, gate: threading.Event | None = None) -> bool:
        """Waits `seconds`, or until the gate is set; False when the reader went away or the server is closing."""
        until = None if seconds is None else time.monotonic() + seconds
        while not self._gone() and not self._closing.is_set():
            if gate is not None and gate.is_set():
                return True
            remaining = None if until is None else until - time.monotonic()
            if remaining is not None and remaining <= 0:
                return True
            (gate or self._closing).wait(_POLL_SECONDS if remaining is None else min(_POLL_SECONDS, remaining))
        return False

    def _send(self, write: Callable[[], object]) -> bool:
        try:
            write()
        except ConnectionError:
            self.client_left = True
        return not self.client_left

    def _gone(self) -> bool:
        # A reader waiting for the rest sends nothing: a readable socket that has no byte to read was closed.
        connection = self._handler.connection
        try:
            readable, _, _ = select.select([connection], [], [], 0)
            if readable and connection.recv(1, socket.MSG_PEEK) == b"":
                self.client_left = True
        except OSError:
            self.client_left = True
        return self.client_left


def _send(handler: "_Handler", reply: _Reply) -> None:
    payload = json.dumps(reply.body).encode()
    handler.send_response(reply.status)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", str(len(payload)))
    for name, value in reply.headers.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    provider: LoopbackProvider


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # Keep-alive, like the real APIs, so the gateway's connection pool is exercised.
    protocol_version = "HTTP/1.1"
    # Headers and body go out separately; with Nagle's algorithm the body would wait ~40 ms for an ACK.
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        self.server.provider.handle(self)

    def do_GET(self) -> None:
        self.server.provider.handle(self)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def loopback_provider(kind: Kind, api_key: str | None = LOOPBACK_API_KEY) -> Iterator[LoopbackProvider]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.provider = LoopbackProvider(kind, api_key, server.server_address[1])
    # A short poll keeps closing the server quick: tests open many.
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name=f"loopback-{kind}", daemon=True)
    thread.start()
    try:
        yield server.provider
    finally:
        server.provider.closing.set()
        server.shutdown()
        server.server_close()
        thread.join()
