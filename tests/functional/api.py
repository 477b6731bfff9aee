"""Drives the API in-process through the local stack's API Gateway emulation: routing, the authorizer
and proxy events exactly as over HTTP, without a socket."""

import json
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from types import ModuleType
from typing import Any
from urllib.parse import quote

import boto3

from infra.system import AUTHORIZER, FUNCTIONS, ROUTES, Function
from local_stack.gateway import ApiGateway, HttpRequest, HttpResponse
from local_stack.lambda_runtime import LambdaRuntime, load_handler
from tests.aws_faults import AwsFaults

SOURCE_IP = "198.51.100.7"


@dataclass
class ApiResponse:
    status: int
    headers: dict[str, str]
    text: str

    @property
    def body(self) -> Any:
        return json.loads(self.text) if self.text else None

    @property
    def error(self) -> dict[str, Any]:
        error: dict[str, Any] = self.body["error"]
        return error


@dataclass
class Api:
    gateway: ApiGateway
    token: str | None = None
    captured: list[ApiResponse] = field(default_factory=list)
    source_ip: str = SOURCE_IP

    def as_key(self, token: str | None) -> "Api":
        return Api(self.gateway, token, self.captured, self.source_ip)

    def from_ip(self, source_ip: str) -> "Api":
        return Api(self.gateway, self.token, self.captured, source_ip)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> ApiResponse:
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if self.token is not None:
            all_headers.setdefault("Authorization", f"Bearer {self.token}")
        payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        response = self.open(method, path, payload, all_headers)
        body = response.body
        if response.stream is not None:
            # read whole, as a client would, and only then let the function do its work after the response
            body += b"".join(response.stream)
            assert response.finish is not None
            response.finish()
        result = ApiResponse(response.status, {key.lower(): value for key, value in response.headers}, body.decode())
        self.captured.append(result)
        return result

    def open(self, method: str, path: str, payload: bytes, headers: dict[str, str]) -> HttpResponse:
        """The gateway's response as it comes: a streamed body is left for the caller to read and finish."""
        return self.gateway.handle(HttpRequest(method, path, list(headers.items()), payload, source_ip=self.source_ip))

    def get(self, path: str, **kwargs: Any) -> ApiResponse:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> ApiResponse:
        return self.request("POST", path, body, **kwargs)

    def patch(self, path: str, body: Any = None, **kwargs: Any) -> ApiResponse:
        return self.request("PATCH", path, body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> ApiResponse:
        return self.request("DELETE", path, **kwargs)


def in_process_gateway() -> ApiGateway:
    runtime = LambdaRuntime(FUNCTIONS, {function.name: load_handler(function) for function in FUNCTIONS})
    return ApiGateway(ROUTES, runtime.invoke, AUTHORIZER.name)


def handler_module(function: Function) -> ModuleType:
    """A function's handler module, as the in-process gateway loaded it."""
    return sys.modules[f"local_stack_function_{function.name}"]


@contextmanager
def faults_in(function: Function) -> Iterator[AwsFaults]:
    """Faults on every client `function` creates meanwhile: its cached wiring is dropped on the way in and out."""
    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    session = boto3.DEFAULT_SESSION
    assert session is not None
    injected = AwsFaults()
    injected.install(session)
    handler_module(function).function.rebuild()
    try:
        yield injected
    finally:
        injected.uninstall(session)
        handler_module(function).function.rebuild()


def wsgi_app(gateway: ApiGateway, source_ip: str = SOURCE_IP) -> Callable[..., Iterable[bytes]]:
    """The gateway as a WSGI application, for clients that drive one in process (Schemathesis)."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        query = environ.get("QUERY_STRING", "")
        # the path as sent (API Gateway routes it still encoded; PATH_INFO is decoded), then the query
        sent = (environ.get("REQUEST_URI") or quote(environ["PATH_INFO"])).partition("?")[0]
        path = sent + (f"?{query}" if query else "")
        headers = [
            (name[5:].replace("_", "-").title(), value) for name, value in environ.items() if name.startswith("HTTP_")
        ]
        headers += [
            (name.replace("_", "-").title(), environ[name])
            for name in ("CONTENT_TYPE", "CONTENT_LENGTH")
            if environ.get(name)
        ]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        response = gateway.handle(HttpRequest(environ["REQUEST_METHOD"], path, headers, body, source_ip=source_ip))
        payload = response.body
        if response.stream is not None:
            payload += b"".join(response.stream)
            assert response.finish is not None
            response.finish()
        start_response(f"{response.status} {HTTPStatus(response.status).phrase}", list(response.headers))
        return [payload]

    return app
