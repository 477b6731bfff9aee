"""The OpenAI routes' errors that come after their status went out: at the end of a stream, or in a whole answer
kept alive with blanks. They are classified (vmx.http.errors) and logged as they would have been before the status,
and told in the body alone, in OpenAI's shape (vmx.http.error_shapes)."""

import contextlib
import json
from collections.abc import Generator, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from aws_lambda_powertools import Logger

from vmx.completions.openai_models import SSE_DONE, ChatCompletionChunk, sse_chunk, sse_event
from vmx.deadline import Deadline
from vmx.http.error_shapes import openai_error_body
from vmx.http.errors import classify, log_classified
from vmx.settings import BOOKKEEPING_SECONDS


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
    except Exception as error:  # noqa: BLE001 - the status has gone out: the client must hear of it, not hang
        yield sse_event(late_error_body(error, log, "stream"))
        return
    yield SSE_DONE


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
                yield json.dumps(late_error_body(exc, log, "whole answer")).encode()
                return
            yield outcome.completion.model_dump_json().encode()
            return
    except GeneratorExit:
        with contextlib.suppress(Exception):
            answer.result(timeout=deadline.left() + BOOKKEEPING_SECONDS)
        raise


def late_error_body(error: Exception, log: Logger, stage: str) -> dict[str, Any]:
    """The OpenAI error body of a failure that came after the status went out; `stage` is logged with it."""
    classified = classify(error)
    log_classified(log, classified, stage=stage)
    return openai_error_body(classified)
