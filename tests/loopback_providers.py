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

A request with the wrong credentials gets the provider's own refusal (401; Gemini's 400 API_KEY_INVALID;
Bedrock's 403 UnrecognizedClientException), and a malformed one a 400 that says what is wrong. Bedrock's
fake serves Converse and InvokeModel for a botocore client built with `endpoint_url=server.base_url`; its
`api_key` is the access key id the SigV4 signature must name (None: any, for credentials an STS fake issues).
"""

import itertools
import json
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import unquote

Kind = Literal["openai", "groq", "perplexity", "anthropic", "gemini", "bedrock"]

LOOPBACK_API_KEY = "sk-loopback-5e1f0c2d9a7b4e3f"
LOOPBACK_ANSWER = "Hello from the loopback provider."
PROMPT_TOKENS = 12
COMPLETION_TOKENS = 7

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
        self._lock = threading.Lock()
        self.closing = threading.Event()

    def respond_with(self, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        """The next well-formed, authenticated request gets this answer (with the kind's rate-limit headers)."""
        with self._lock:
            self._plans.append(_Reply(status, body, {**_RATE_LIMIT_HEADERS[self.kind], **(headers or {})}))

    def fail_with(self, status: int, message: str = "loopback failure", retry_after: str | None = None) -> None:
        """The next request gets the provider's own error shape for this status."""
        with self._lock:
            self._plans.append(_error(self.kind, status, message, retry_after))

    def stall(self) -> None:
        """The next request gets no answer until the server closes: for timeouts."""
        with self._lock:
            self._plans.append(_STALL)

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
            route = self._route(path)
            self._authenticate(headers)
            _CHECKS[route](body, headers)
        except _Refused as refused:
            _send(handler, refused.reply)
            return
        with self._lock:
            plan = self._plans.popleft() if self._plans else None
        if plan is _STALL:
            self.closing.wait(timeout=30)
            handler.close_connection = True
            return
        _send(handler, plan if isinstance(plan, _Reply) else self._default_reply(route, body, path))

    def _route(self, path: str) -> str:
        prefix = _PREFIXES[self.kind]
        if self.kind in ("openai", "groq", "perplexity") and path == f"{prefix}/chat/completions":
            return "openai"
        if self.kind == "anthropic" and path == "/v1/messages":
            return "anthropic"
        if self.kind == "gemini" and path.startswith("/v1beta/models/") and path.endswith(":generateContent"):
            return "gemini"
        if self.kind == "bedrock" and path.startswith("/model/") and path.endswith("/converse"):
            return "converse"
        if self.kind == "bedrock" and path.startswith("/model/") and path.endswith("/invoke"):
            return "invoke"
        raise _Refused(_error(self.kind, 404, f"no route for POST {path}"))

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
        if route == "openai":
            answer = openai_completion(LOOPBACK_ANSWER, model=body["model"])
        elif route in ("anthropic", "invoke"):
            answer = anthropic_message(LOOPBACK_ANSWER, model=body.get("model", "claude-on-bedrock"))
        elif route == "gemini":
            answer = gemini_response(LOOPBACK_ANSWER, model=unquote(path.split("/")[3].split(":")[0]))
        else:
            answer = converse_response(LOOPBACK_ANSWER)
        return _Reply(200, answer, dict(_RATE_LIMIT_HEADERS[self.kind]))


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
        "usage": {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": COMPLETION_TOKENS,
            "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
        },
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
_GEMINI_STATUSES = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED"}


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
    if body.get("stream"):
        raise _Refused(_error("openai", 400, "the loopback provider does not stream"))


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
    _check_anthropic_body(body, "bedrock")


_CHECKS = {
    "openai": _check_openai,
    "anthropic": _check_anthropic,
    "gemini": _check_gemini,
    "converse": _check_converse,
    "invoke": _check_invoke,
}


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
