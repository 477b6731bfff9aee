"""A whole answer kept alive: blanks while it is awaited, then its JSON, or the error it became."""

import json
import threading
from concurrent.futures import Future
from typing import Any

from aws_lambda_powertools import Logger

from vmx.completions.calls import ProviderError
from vmx.completions.openai_models import ChatCompletion
from vmx.deadline import Deadline
from vmx.errors import NotFound
from vmx.http.openai_errors import KEEPALIVE, whole_answer
from vmx.use_cases.completions import CompletionOutcome
from vmx.use_cases.refusals import ProviderFailure, RateLimits

LOG = Logger(service="test")
COMPLETION = ChatCompletion.model_validate(
    {
        "id": "c",
        "created": 0,
        "model": "prod/m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
)


def done_later(after_blanks: int, outcome: Any) -> tuple["Future[Any]", list[bytes]]:
    """A future that completes once the body has yielded `after_blanks` blanks, and the body read whole."""
    answer: Future[Any] = Future()
    pieces = []
    for piece in whole_answer(answer, Deadline.after(60), LOG, interval_seconds=0.01):
        pieces.append(piece)
        if len(pieces) == after_blanks:
            if isinstance(outcome, Exception):
                answer.set_exception(outcome)
            else:
                answer.set_result(outcome)
    return answer, pieces


def test_blanks_come_until_the_answer_then_its_json() -> None:
    _, pieces = done_later(3, CompletionOutcome(COMPLETION, RateLimits()))

    assert pieces[:3] == [KEEPALIVE] * 3
    assert json.loads(b"".join(pieces))["choices"][0]["message"]["content"] == "hi"


def test_a_provider_failure_becomes_its_openai_error_body() -> None:
    failure = ProviderFailure(ProviderError(429, "provider_rate_limited", "slow down"), RateLimits())

    _, pieces = done_later(1, failure)

    assert json.loads(b"".join(pieces))["error"] == {
        "message": "slow down",
        "type": "rate_limit_error",
        "param": None,
        "code": "provider_rate_limited",
    }


def test_a_refusal_and_an_unexpected_failure_keep_their_shapes_and_hide_internals() -> None:
    _, refused = done_later(1, NotFound("no such thing", code="model_not_found"))
    _, crashed = done_later(1, RuntimeError("secret internals"))

    assert json.loads(b"".join(refused))["error"]["code"] == "model_not_found"
    assert json.loads(b"".join(crashed))["error"] == {
        "message": "internal error",
        "type": "api_error",
        "param": None,
        "code": "internal_error",
    }


def test_a_client_that_leaves_still_waits_for_the_answer_so_its_bookkeeping_is_there() -> None:
    answer: Future[Any] = Future()
    body = whole_answer(answer, Deadline.after(60), LOG, interval_seconds=0.01)
    assert next(body) == KEEPALIVE
    threading.Timer(0.05, answer.set_result, [CompletionOutcome(COMPLETION, RateLimits())]).start()

    body.close()

    assert answer.done()
