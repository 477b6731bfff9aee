"""An API Gateway REST API (Lambda proxy integration, Lambda REQUEST authorizer) on loopback.

The pure parts (route matching, event building, policy evaluation, response mapping) are functions
of their inputs; `ApiGateway.handle` strings them together, and `local_stack.server` puts it on HTTP.
"""

import base64
import binascii
import dataclasses
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from infra.system import (
    AUTHORIZER_CACHE_SECONDS,
    CORS_ALLOW_HEADERS,
    CORS_MAX_AGE_SECONDS,
    SECURITY_HEADERS,
    STREAMING_FUNCTIONS,
    Route,
)
from local_stack.lambda_runtime import ACCOUNT_ID, REGION, Invoke, StreamedInvocation
from vmx.http.gateway_errors import gateway_error_payload, method_not_allowed_message
from vmx.http.streaming import PRELUDE_DELIMITER

STAGE = "local"
API_ID = "local"
INVOKE_ACTION = "execute-api:Invoke"

logger = logging.getLogger("local_stack")


@dataclass(frozen=True)
class HttpRequest:
    method: str
    # the request target as sent: path and, when present, "?" and the query string
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    # the TCP peer: API Gateway's sourceIp never comes from a header a client can set
    source_ip: str

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]

    def header(self, name: str) -> str | None:
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        return values[-1] if values else None


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    # A streamed body: written piece by piece after `body`, then `finish()` once all is sent or the client left.
    stream: Iterator[bytes] | None = None
    finish: Callable[[], None] | None = None


def error_response(status: int, code: str, message: str, *headers: tuple[str, str]) -> HttpResponse:
    """An error of the gateway itself, in the body the stack's gateway responses have in AWS: our shape and
    OpenAI's at once, since API Gateway's own errors cannot tell the OpenAI routes from the others."""
    body = json.dumps(gateway_error_payload(status, code, message)).encode()
    return HttpResponse(status, [("Content-Type", "application/json"), *SECURITY_HEADERS.items(), *headers], body)


def method_not_allowed(methods: list[str]) -> HttpResponse:
    """What the stack's MOCK ANY method of each route's path answers for the methods the path lacks."""
    allow = ("Allow", ", ".join(methods))
    return error_response(405, "method_not_allowed", method_not_allowed_message(methods), allow)


def unauthorized() -> HttpResponse:
    return error_response(401, "unauthorized", "Unauthorized")


def forbidden() -> HttpResponse:
    return error_response(403, "forbidden", "User is not authorized to access this resource")


def internal_error(status: int) -> HttpResponse:
    return error_response(status, "internal_error", "Internal server error")


def body_too_large(limit: int, *headers: tuple[str, str]) -> HttpResponse:
    return error_response(400, "body_too_large", f"request body is larger than {limit} bytes", *headers)


# --- routing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RouteMatch:
    route: Route
    # URL-decoded values, keyed by the {names} of the route's path
    path_parameters: dict[str, str]


class Router:
    """Matches a request path against API Gateway resource paths such as `/a/{id}/b`.

    A `{param}` matches one non-empty segment; a literal segment beats a parameter, as in API Gateway,
    and so an empty segment (a trailing slash, `//`) matches nothing. A method the best-matching
    resource does not define matches nothing either (`methods` names those it does, for the 405).
    """

    def __init__(self, routes: Iterable[Route]) -> None:
        self._resources: dict[str, dict[str, Route]] = {}
        for route in routes:
            self._resources.setdefault(route.path, {})[route.method] = route

    def resolve(self, method: str, path: str) -> RouteMatch | None:
        best = self._best_resource(path)
        if best is None:
            return None
        resource, parameters = best
        route = self._resources[resource].get(method)
        return RouteMatch(route, parameters) if route else None

    def methods(self, path: str) -> list[str]:
        """The methods of the resource `path` matches, in the order the routes name them."""
        best = self._best_resource(path)
        return list(self._resources[best[0]]) if best else []

    def _best_resource(self, path: str) -> tuple[str, dict[str, str]] | None:
        segments = path.split("/")
        if segments[0] != "":
            return None
        candidates = []
        for resource in self._resources:
            matched = _match_segments(resource.split("/"), segments)
            if matched is not None:
                candidates.append((matched[0], resource, matched[1]))
        if not candidates:
            return None
        _, resource, parameters = max(candidates, key=lambda candidate: candidate[0])
        return resource, parameters


def _match_segments(template: list[str], segments: list[str]) -> tuple[tuple[bool, ...], dict[str, str]] | None:
    if len(template) != len(segments):
        return None
    parameters: dict[str, str] = {}
    specificity: list[bool] = []
    for expected, actual in zip(template, segments, strict=True):
        if expected.startswith("{") and expected.endswith("}"):
            if not actual:
                return None
            parameters[expected[1:-1]] = unquote(actual)
            specificity.append(False)
        elif expected == actual:
            specificity.append(True)
        else:
            return None
    return tuple(specificity), parameters


# --- events ----------------------------------------------------------------------------------------


def method_arn(method: str, path: str) -> str:
    return f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{API_ID}/{STAGE}/{method}/{path.removeprefix('/')}"


def _request_fields(request: HttpRequest, match: RouteMatch, request_id: str, time_epoch_ms: int) -> dict[str, Any]:
    """What the proxy event and the REQUEST authorizer event share."""
    headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in request.headers:
        headers[name] = value
        multi_headers.setdefault(name, []).append(value)
    query: dict[str, str] = {}
    multi_query: dict[str, list[str]] = {}
    for name, value in parse_qsl(request.query, keep_blank_values=True):
        query[name] = value
        multi_query.setdefault(name, []).append(value)
    return {
        "resource": match.route.path,
        "path": request.path,
        "httpMethod": request.method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        # API Gateway sends null rather than an empty map for these
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": match.path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": match.route.path,
            "resourcePath": match.route.path,
            "httpMethod": request.method,
            "extendedRequestId": request_id,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(time_epoch_ms / 1000)),
            "path": f"/{STAGE}{request.path}",
            "accountId": ACCOUNT_ID,
            "protocol": "HTTP/1.1",
            "stage": STAGE,
            "domainPrefix": API_ID,
            "requestTimeEpoch": time_epoch_ms,
            "requestId": request_id,
            "identity": {
                "sourceIp": request.source_ip,
                "userAgent": request.header("User-Agent"),
                "accessKey": None,
                "accountId": None,
                "apiKey": None,
                "apiKeyId": None,
                "caller": None,
                "cognitoAuthenticationProvider": None,
                "cognitoAuthenticationType": None,
                "cognitoIdentityId": None,
                "cognitoIdentityPoolId": None,
                "principalOrgId": None,
                "user": None,
                "userArn": None,
                "clientCert": None,
            },
            "domainName": request.header("Host"),
            "apiId": API_ID,
        },
    }


def build_authorizer_event(
    request: HttpRequest, match: RouteMatch, *, request_id: str, time_epoch_ms: int
) -> dict[str, Any]:
    return {
        "type": "REQUEST",
        "methodArn": method_arn(request.method, request.path),
        **_request_fields(request, match, request_id, time_epoch_ms),
    }


def build_proxy_event(
    request: HttpRequest,
    match: RouteMatch,
    *,
    request_id: str,
    time_epoch_ms: int,
    authorizer: dict[str, str] | None,
) -> dict[str, Any]:
    event = _request_fields(request, match, request_id, time_epoch_ms)
    event["requestContext"]["authorizer"] = authorizer
    try:
        event["body"] = request.body.decode() if request.body else None
        event["isBase64Encoded"] = False
    except UnicodeDecodeError:
        event["body"] = base64.b64encode(request.body).decode("ascii")
        event["isBase64Encoded"] = True
    return event


# --- authorizer results ----------------------------------------------------------------------------


class AuthorizerConfigurationError(ValueError):
    """An authorizer result API Gateway cannot use; it answers 500 then."""


def authorizer_context(result: Any) -> dict[str, str]:
    """The `requestContext.authorizer` that API Gateway hands the integration: context plus principalId.

    Context values must be strings, numbers or booleans, and reach the integration as strings.
    """
    if not isinstance(result, dict) or not isinstance(result.get("principalId"), str):
        raise AuthorizerConfigurationError("the authorizer result has no principalId")
    if not isinstance(result.get("policyDocument"), dict):
        raise AuthorizerConfigurationError("the authorizer result has no policyDocument")
    context = result.get("context") or {}
    if not isinstance(context, dict):
        raise AuthorizerConfigurationError("the authorizer context is not a map")
    flat: dict[str, str] = {}
    for key, value in context.items():
        if isinstance(value, bool):
            flat[key] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            flat[key] = str(value)
        else:
            raise AuthorizerConfigurationError(f"authorizer context value {key!r} is not a scalar")
    return {**flat, "principalId": result["principalId"]}


def is_allowed(policy_document: dict[str, Any], arn: str) -> bool:
    """IAM evaluation as API Gateway does it for one method ARN: an explicit Deny wins, else an Allow
    is needed. `*` and `?` are wildcards in Resource and Action."""
    statements = policy_document.get("Statement") or []
    allowed = False
    for statement in [statements] if isinstance(statements, dict) else statements:
        if not isinstance(statement, dict) or not _applies(statement, arn):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


def _applies(statement: dict[str, Any], arn: str) -> bool:
    actions = _as_list(statement.get("Action"))
    resources = _as_list(statement.get("Resource"))
    return any(_wildcard_match(action, INVOKE_ACTION, re.IGNORECASE) for action in actions) and any(
        _wildcard_match(resource, arn) for resource in resources
    )


def _as_list(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return [item for item in values if isinstance(item, str)]


def _wildcard_match(pattern: str, value: str, flags: int = 0) -> bool:
    regex = "".join(".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern)
    return re.fullmatch(regex, value, flags) is not None


# --- proxy results ---------------------------------------------------------------------------------

# Framing is the server's business: API Gateway drops these from an integration's response too.
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})


def _status_and_headers(result: dict[str, Any]) -> tuple[int, list[tuple[str, str]]]:
    status = result.get("statusCode")
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ValueError(f"statusCode {status!r} is not an HTTP status")
    multi_headers: dict[str, list[Any]] = result.get("multiValueHeaders") or {}
    single_headers: dict[str, Any] = result.get("headers") or {}
    headers = [(name, str(value)) for name, values in multi_headers.items() for value in values]
    covered = {name.lower() for name in multi_headers}
    headers += [(name, str(value)) for name, value in single_headers.items() if name.lower() not in covered]
    headers = [(name, value) for name, value in headers if name.lower() not in _FRAMING_HEADERS]
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    return status, headers


# API Gateway reads at most this much of a streamed response looking for the end of its prelude.
_MAX_PRELUDE_BYTES = 64 * 1024


def streamed_response(result: Any) -> HttpResponse:
    """Maps a streaming Lambda's output (JSON prelude, eight NUL bytes, body) to HTTP as API Gateway's STREAM
    transfer mode does: the status and headers once the prelude is complete, then the body as it comes.
    Raises ValueError when API Gateway would answer 502 (no or an invalid prelude)."""
    if not isinstance(result, StreamedInvocation):
        raise ValueError("the streaming function did not stream a response")
    received = b""
    pieces = iter(result.pieces)
    try:
        while PRELUDE_DELIMITER not in received:
            received += next(pieces)
            if len(received) > _MAX_PRELUDE_BYTES:
                raise ValueError("the response's prelude has no end")
        prelude, _, first = received.partition(PRELUDE_DELIMITER)
        metadata = json.loads(prelude)
        if not isinstance(metadata, dict):
            raise ValueError("the response's prelude is not a JSON object")
        status, headers = _status_and_headers(metadata)
    except (StopIteration, ValueError) as exc:
        result.finish()
        raise ValueError(f"invalid streamed response: {exc or 'it ended before its prelude'}") from None

    def body() -> Iterator[bytes]:
        if first:
            yield first
        yield from pieces

    return HttpResponse(status, headers, stream=body(), finish=result.finish)


def proxy_response(result: Any) -> HttpResponse:
    """Maps a Lambda proxy result to HTTP; raises ValueError when API Gateway would answer 502."""
    if not isinstance(result, dict):
        raise ValueError("the handler did not return a map")
    status, headers = _status_and_headers(result)
    body = result.get("body") or ""
    if not isinstance(body, str):
        raise ValueError("body is not a string")
    try:
        payload = base64.b64decode(body, validate=True) if result.get("isBase64Encoded") else body.encode()
    except binascii.Error as exc:
        raise ValueError("body is not valid base64") from exc
    return HttpResponse(status, headers, payload)


# --- the gateway -----------------------------------------------------------------------------------


class ApiGateway:
    """Routes a request, runs the authorizer for authorized routes, and invokes the route's function.

    The authorizer's result is cached per Authorization header for `authorizer_cache_seconds`, as the stack
    configures API Gateway to: a revoked key may pass for that long, here as in AWS. The routes of
    `streaming_functions` use the STREAM transfer mode: their responses are written as they are produced.
    """

    def __init__(
        self,
        routes: Iterable[Route],
        invoke: Invoke,
        authorizer_function: str,
        allowed_origin: str | None = None,
        *,
        streaming_functions: Iterable[str] = STREAMING_FUNCTIONS,
        authorizer_cache_seconds: float = AUTHORIZER_CACHE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._router = Router(routes)
        self._invoke = invoke
        self._authorizer_function = authorizer_function
        # As the stack's CORS set-up: preflights answered here, and this origin on the gateway's own errors.
        self._allowed_origin = allowed_origin
        self._streaming_functions = frozenset(streaming_functions)
        self._authorizer_cache_seconds = authorizer_cache_seconds
        self._monotonic = monotonic
        self._authorizer_results: dict[str, tuple[float, dict[str, Any]]] = {}
        self._cache_lock = threading.Lock()

    def handle(self, request: HttpRequest) -> HttpResponse:
        if self._allowed_origin and request.method == "OPTIONS" and (methods := self._router.methods(request.path)):
            return self._preflight(methods)
        resolved = self._router.resolve(request.method, request.path)
        if resolved is None:
            if methods := self._router.methods(request.path):
                return self._own(method_not_allowed(methods))
            # API Gateway answers MISSING_AUTHENTICATION_TOKEN, which the stack maps to this 404.
            return self._own(error_response(404, "not_found", f"no such route: {request.method} {request.path}"))
        request_id = str(uuid.uuid4())
        time_epoch_ms = int(time.time() * 1000)
        authorizer: dict[str, str] | None = None
        if resolved.route.authorized:
            decision = self._authorize(request, resolved, request_id, time_epoch_ms)
            if isinstance(decision, HttpResponse):
                return _with_request_id(self._own(decision), request_id)
            authorizer = decision
        event = build_proxy_event(
            request, resolved, request_id=request_id, time_epoch_ms=time_epoch_ms, authorizer=authorizer
        )
        function = resolved.route.function
        to_http = streamed_response if function in self._streaming_functions else proxy_response
        try:
            response = to_http(self._invoke(function, event))
        except Exception:
            # API Gateway answers 502 when the function fails or returns something it cannot map.
            logger.exception("function %s failed", resolved.route.function)
            response = self._own(internal_error(502))
        return _with_request_id(response, request_id)

    def _preflight(self, methods: list[str]) -> HttpResponse:
        """What the stack's MOCK OPTIONS methods answer, whoever asks: the browser compares the origin."""
        assert self._allowed_origin is not None
        headers = [
            ("Access-Control-Allow-Origin", self._allowed_origin),
            ("Vary", "Origin"),
            ("Access-Control-Allow-Methods", ",".join(methods)),
            ("Access-Control-Allow-Headers", ",".join(CORS_ALLOW_HEADERS)),
            ("Access-Control-Max-Age", str(CORS_MAX_AGE_SECONDS)),
        ]
        return HttpResponse(204, headers)

    def _own(self, response: HttpResponse) -> HttpResponse:
        """A response of the gateway itself, with the headers the stack's gateway responses carry."""
        if not self._allowed_origin:
            return response
        cors = [("Access-Control-Allow-Origin", self._allowed_origin), ("Vary", "Origin")]
        return dataclasses.replace(response, headers=[*response.headers, *cors])

    def _authorize(
        self, request: HttpRequest, match: RouteMatch, request_id: str, time_epoch_ms: int
    ) -> dict[str, str] | HttpResponse:
        # API Gateway answers 401 itself, without calling the authorizer, when the identity source is absent.
        if not (request.header("Authorization") or "").strip():
            return unauthorized()
        event = build_authorizer_event(request, match, request_id=request_id, time_epoch_ms=time_epoch_ms)
        identity = request.header("Authorization") or ""
        result = self._cached_result(identity)
        fresh = result is None
        try:
            if result is None:
                result = self._invoke(self._authorizer_function, event)
            context = authorizer_context(result)
        except Exception as exc:
            # Lambda authorizers have one way to say 401: an error whose message is exactly "Unauthorized".
            if str(exc) == "Unauthorized":
                return unauthorized()
            logger.exception("authorizer failed")
            return internal_error(500)
        if fresh:
            self._keep_result(identity, result)
        # A cached policy is evaluated against each request's own method ARN, as API Gateway does.
        if not is_allowed(result["policyDocument"], event["methodArn"]):
            return forbidden()
        return context

    def flush_authorizer_cache(self) -> None:
        """As API Gateway's FlushStageAuthorizersCache: every key is checked again on its next request."""
        with self._cache_lock:
            self._authorizer_results.clear()

    def _cached_result(self, identity: str) -> dict[str, Any] | None:
        with self._cache_lock:
            cached = self._authorizer_results.get(identity)
        return cached[1] if cached is not None and self._monotonic() < cached[0] else None

    def _keep_result(self, identity: str, result: dict[str, Any]) -> None:
        if self._authorizer_cache_seconds <= 0:
            return
        with self._cache_lock:
            self._authorizer_results[identity] = (self._monotonic() + self._authorizer_cache_seconds, result)


def _with_request_id(response: HttpResponse, request_id: str) -> HttpResponse:
    return dataclasses.replace(response, headers=[*response.headers, ("x-amzn-RequestId", request_id)])
