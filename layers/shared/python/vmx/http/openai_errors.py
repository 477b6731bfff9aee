"""Errors of the OpenAI-compatible routes, in OpenAI's shape, so OpenAI SDKs raise the right exception:
`{"error": {"message", "type", "param", "code"}}`."""

import contextlib
import json
import math
from collections.abc import Generator, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from vmx.clock import utc_now
from vmx.completions.calls import ProviderError
from vmx.completions.failures import RETRY_HEADERS
from vmx.completions.openai_models import SSE_DONE, ChatCompletionChunk, sse_chunk, sse_event
from vmx.credentials.errors import CredentialsUnavailable, CredentialsUnreadable
from vmx.deadline import Deadline
from vmx.errors import DomainError
from vmx.failures import described
from vmx.gateway.service import OverCapacity, ProviderFailure, RateLimits
from vmx.http.errors import request_validation_details, status_of
from vmx.http.gateway_errors import openai_error_type
from vmx.settings import BOOKKEEPING_SECONDS
from vmx.storage.errors import StorageUnavailable
from vmx.validation import summary


def openai_error_body(status: int, message: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": openai_error_type(status), "param": param, "code": code}}


def openai_error(
    status: int, message: str, code: str | None, param: str | None = None, headers: dict[str, str] | None = None
) -> Response[Any]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=openai_error_body(status, message, code, param),
        headers=headers,
    )


def event_stream(chunks: Iterator[ChatCompletionChunk], include_usage: bool, log: Logger) -> Generator[bytes]:
    """A stream's chunks as `text/event-stream` events, ending with `[DONE]`. A failure after the first byte
    can no longer change the status: it ends the stream with an error event in OpenAI's shape instead."""
    try:
        for chunk in chunks:
            yield sse_chunk(chunk, include_usage)
    except GeneratorExit:
        # the client went away: the chunks' own cleanup (letting the provider go) must run now, not whenever
        # the generator happens to be collected
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
        raise
    except ProviderError as error:
        log.info("provider failed during the stream", extra={"status": error.status, "error_code": error.code})
        yield sse_event(openai_error_body(error.status, error.message, error.code))
        return
    except Exception as error:  # noqa: BLE001 - the status has gone out: the client must hear of it, not hang
        log.error("the stream failed", extra=described(error))
        yield sse_event(openai_error_body(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error", "internal_error"))
        return
    yield SSE_DONE


def domain_refusal(error: DomainError) -> Response[Any]:
    param = error.details[0].field if error.details else None
    headers = None
    if isinstance(error, OverCapacity):
        # from the refusal's own instant, as its Retry-After is: never a later window's
        headers = rate_limit_headers(error.rate_limits, error.refused_at)
        if error.retry_after_seconds is not None:
            headers["Retry-After"] = str(error.retry_after_seconds)
    return openai_error(status_of(error).value, error.message, error.code, param, headers)


def rate_limit_headers(rate_limits: RateLimits, now: datetime) -> dict[str, str]:
    """OpenAI's x-ratelimit-* headers for the tightest requests window and the tightest tokens window."""
    headers = {}
    for kind, usage in (("requests", rate_limits.requests), ("tokens", rate_limits.tokens)):
        if usage is None:
            continue
        limit = usage.requests_limit if kind == "requests" else usage.tokens_limit
        used = usage.requests_used if kind == "requests" else usage.tokens_used
        if limit is None:
            continue
        headers[f"x-ratelimit-limit-{kind}"] = str(limit)
        headers[f"x-ratelimit-remaining-{kind}"] = str(max(limit - used, 0))
        if usage.resets_at is not None:
            headers[f"x-ratelimit-reset-{kind}"] = f"{max(math.ceil((usage.resets_at - now).total_seconds()), 0)}s"
    return headers


# Blanks that keep a whole answer's line open, and how often: well inside API Gateway's 5-minute idle limit.
KEEPALIVE = b" "
KEEPALIVE_INTERVAL_SECONDS = 30.0


def whole_answer(
    answer: "Future[Any]", deadline: Deadline, log: Logger, interval_seconds: float = KEEPALIVE_INTERVAL_SECONDS
) -> Generator[bytes]:
    """A whole answer's JSON body once `answer` is done, after a blank every `interval_seconds` until then.

    Its 200 has gone out: a failure can only be told in the body, as the OpenAI error it would have been.
    A client that leaves still waits here (within the deadline) for the answer, so that the bookkeeping the
    answer adds is there when the work after the response runs.
    """
    try:
        while True:
            try:
                outcome = answer.result(timeout=interval_seconds)
            except FutureTimeout:
                yield KEEPALIVE
                continue
            except Exception as exc:  # noqa: BLE001 - the status is spent: every failure becomes its error body
                yield json.dumps(late_error_body(exc, log)).encode()
                return
            yield outcome.completion.model_dump_json().encode()
            return
    except GeneratorExit:
        with contextlib.suppress(Exception):
            answer.result(timeout=deadline.left() + BOOKKEEPING_SECONDS)
        raise


def late_error_body(error: Exception, log: Logger) -> dict[str, Any]:
    """The OpenAI error body of a failure that came after the status went out."""
    if isinstance(error, ProviderFailure):
        log.info("provider call failed", extra={"status": error.error.status, "error_code": error.error.code})
        return openai_error_body(error.error.status, error.error.message, error.error.code)
    if isinstance(error, DomainError):
        log.info("request refused", extra={"error_code": error.code, "error_message": error.message})
        return openai_error_body(status_of(error).value, error.message, error.code)
    log.error("the answer failed", extra=described(error))
    return openai_error_body(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error", "internal_error")


def register_openai_error_handlers(app: APIGatewayRestResolver, logger: Logger) -> None:
    @app.exception_handler(DomainError)
    def _domain(error: DomainError) -> Response[Any]:
        logger.info("request refused", extra={"error_code": error.code, "error_message": error.message})
        return domain_refusal(error)

    @app.exception_handler(ProviderFailure)
    def _provider(failure: ProviderFailure) -> Response[Any]:
        error = failure.error
        logger.info("provider call failed", extra={"status": error.status, "error_code": error.code})
        # A provider's 429 is told by the provider's own limits, when it sent them: they are what refused it.
        # (its retry headers are told by our Retry-After alone)
        providers = {name: value for name, value in error.rate_limit_headers.items() if name not in RETRY_HEADERS}
        headers = providers if error.status == 429 and providers else rate_limit_headers(failure.rate_limits, utc_now())
        if error.retry_after is not None:
            headers["Retry-After"] = error.retry_after
        return openai_error(error.status, error.message, error.code, headers=headers)

    @app.exception_handler(RequestValidationError)
    def _invalid(error: RequestValidationError) -> Response[Any]:
        details = request_validation_details(error)
        return openai_error(HTTPStatus.BAD_REQUEST, summary(details), "invalid_request", details[0].field)

    @app.not_found
    def _no_route(_: NotFoundError) -> Response[Any]:
        event = app.current_event
        return openai_error(HTTPStatus.NOT_FOUND, f"no route for {event.http_method} {event.path}", "not_found")

    @app.exception_handler(CredentialsUnreadable)
    def _unreadable(error: CredentialsUnreadable) -> Response[Any]:
        logger.error("stored credentials could not be opened", extra=described(error))
        message = "the AI connection's stored credentials cannot be read; set them again with a PATCH"
        return openai_error(HTTPStatus.BAD_GATEWAY, message, "credentials_unreadable")

    @app.exception_handler([StorageUnavailable, CredentialsUnavailable])
    def _unavailable(error: Exception) -> Response[Any]:
        logger.error("dependency unavailable", extra=described(error))
        return openai_error(
            HTTPStatus.SERVICE_UNAVAILABLE, "a backing service is unavailable; retry shortly", "unavailable"
        )

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response[Any]:
        logger.error("unexpected error", extra=described(error))
        return openai_error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error", "internal_error")
