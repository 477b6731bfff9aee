"""The local Lambda service: the real vmx.runtime loop in worker processes, against the loopback Runtime API.

The handlers are in tests/local_stack/handlers/. Every wait is bounded: by a function's timeout, by the
handlers' own limits, or by `eventually`.
"""

import io
import json
import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from infra.system import Function
from local_stack.lambda_runtime import StreamedInvocation
from local_stack.lambda_service import FunctionError, FunctionTimedOutError, LambdaService
from local_stack.runtime_api import FunctionFailure, MalformedBodyError, read_chunk, read_trailers, trailer_failure
from vmx.http.streaming import PRELUDE_DELIMITER

HANDLERS = Path(__file__).resolve().parent / "handlers"
ECHO = Function(name="echo", description="", source_dir="echo", settings=BaseModel, memory_mb=256, timeout_seconds=10)
SLEEPY = Function(name="sleepy", description="", source_dir="echo", settings=BaseModel, timeout_seconds=1)
STREAMING = Function(
    name="streaming",
    description="",
    source_dir="streaming",
    settings=BaseModel,
    streams_responses=True,
    timeout_seconds=15,
)
RENDEZVOUS = Function(
    name="rendezvous", description="", source_dir="rendezvous", settings=BaseModel, timeout_seconds=15
)
BROKEN = Function(name="broken", description="", source_dir="broken_import", settings=BaseModel)


@contextmanager
def lambdas(*functions: Function, max_instances: int = 2) -> Iterator[LambdaService]:
    with LambdaService(
        functions,
        environments={function.name: {} for function in functions},
        functions_root=HANDLERS,
        max_instances=max_instances,
        init_timeout_seconds=20,
    ) as service:
        yield service


def eventually(path: Path, within_seconds: float = 10) -> bool:
    until = time.monotonic() + within_seconds
    while not path.exists():
        if time.monotonic() > until:
            return False
        time.sleep(0.01)
    return True


def streamed(service: LambdaService, record: Path, release: Path, **event: Any) -> StreamedInvocation:
    record.mkdir(exist_ok=True)
    result = service.invoke(STREAMING.name, {"record": str(record), "release": str(release), **event})
    assert isinstance(result, StreamedInvocation)
    return result


def prelude(piece: bytes) -> dict[str, Any]:
    metadata, delimiter, rest = piece.partition(PRELUDE_DELIMITER)
    assert delimiter and not rest
    parsed: dict[str, Any] = json.loads(metadata)
    return parsed


def test_a_buffered_result_comes_back_with_the_context_lambda_gives() -> None:
    with lambdas(ECHO) as service:
        first: dict[str, Any] = service.invoke(ECHO.name, {"say": "hello"})
        second: dict[str, Any] = service.invoke(ECHO.name, {})
        not_ready = service.wait_until_initialised()

    assert first["event"] == {"say": "hello"}
    assert first["function_name"] == "vmx-local-echo"
    assert first["memory_mb"] == 256
    assert first["arn"] == "arn:aws:lambda:us-east-1:000000000000:function:vmx-local-echo"
    assert 0 < first["remaining_ms"] <= 10_000
    assert first["trace_id"].startswith("Root=1-")
    assert first["request_id"] != second["request_id"]
    # one after the other: the warm instance serves both
    assert first["pid"] == second["pid"]
    assert not_ready == []


def test_streamed_pieces_reach_the_invoker_while_the_handler_still_runs(tmp_path: Path) -> None:
    release = tmp_path / "release"
    with lambdas(STREAMING) as service:
        response = streamed(service, tmp_path, release, ticks=3)
        pieces = iter(response.pieces)
        head = next(pieces)
        first = next(pieces)
        # the handler cannot finish until it is released, and it is released only now
        assert not (tmp_path / "after").exists()
        release.touch()
        rest = list(pieces)
        response.finish()
        ran_after = eventually(tmp_path / "after")

    assert prelude(head)["statusCode"] == 200
    assert first == b"first"
    assert rest == [b"tick"] * 3
    assert ran_after
    assert not (tmp_path / "closed").exists()


# only an authorizer's "Unauthorized" keeps its text: any other can quote a key (vmx.runtime.client.error_report)
@pytest.mark.parametrize(
    ("message", "reported"), [("Unauthorized", "Unauthorized"), ("no such thing", "Exception (text withheld)")]
)
def test_an_error_before_the_response_is_raised_with_its_type(message: str, reported: str) -> None:
    with lambdas(ECHO) as service:
        with pytest.raises(FunctionError) as raised:
            service.invoke(ECHO.name, {"raise": message})
        after: dict[str, Any] = service.invoke(ECHO.name, {})

    assert str(raised.value) == reported
    assert raised.value.error_type == "Exception"
    assert after["event"] == {}


def test_a_failure_mid_stream_ends_the_pieces_and_is_reported_from_the_trailers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with lambdas(STREAMING) as service, caplog.at_level(logging.ERROR, logger="local_stack"):
        response = streamed(service, tmp_path, tmp_path / "release", fail="the provider went away")
        pieces = list(response.pieces)
        response.finish()
        ran_after = eventually(tmp_path / "after")

    assert prelude(pieces[0])["statusCode"] == 200
    assert pieces[1:] == [b"first"]
    assert "vmx-local-streaming failed during its response stream: RuntimeError: RuntimeError (text withheld)" in (
        caplog.messages
    )
    assert ran_after


def test_an_import_failure_is_the_init_error_and_the_next_invocation_tries_again() -> None:
    with lambdas(BROKEN) as service:
        errors = []
        for _ in range(2):
            with pytest.raises(FunctionError) as raised:
                service.invoke(BROKEN.name, {})
            errors.append(raised.value)
        not_ready = service.wait_until_initialised(0)

    assert [error.error_type for error in errors] == ["ModuleNotFoundError"] * 2
    assert [str(error) for error in errors] == ["No module named 'a_module_that_does_not_exist'"] * 2
    assert not_ready == [BROKEN.name]


def test_two_invocations_in_flight_at_once_get_two_instances(tmp_path: Path) -> None:
    event = {"meeting": str(tmp_path), "peers": 2}
    with lambdas(RENDEZVOUS, max_instances=2) as service, ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: service.invoke(RENDEZVOUS.name, event), range(2)))

    assert [answer["met"] for answer in answers] == [True, True]
    assert answers[0]["pid"] != answers[1]["pid"]


def test_at_the_cap_an_invocation_waits_for_the_busy_instance() -> None:
    with lambdas(ECHO, max_instances=1) as service, ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: service.invoke(ECHO.name, {"sleep_seconds": 0.2}), range(2)))

    assert answers[0]["pid"] == answers[1]["pid"]


def test_when_the_client_goes_away_the_body_is_closed_and_the_after_work_runs(tmp_path: Path) -> None:
    release = tmp_path / "release"
    with lambdas(STREAMING, max_instances=1) as service:
        # Given a stream that would go on far longer than the function may run
        response = streamed(service, tmp_path / "gone", release, ticks=100_000)
        pieces = iter(response.pieces)
        head = next(pieces)
        assert next(pieces) == b"first"

        # When the client goes away
        response.finish()
        release.touch()

        # Then the instance's next send fails: its body is closed and its work after the response runs
        ran_after = eventually(tmp_path / "gone" / "after")
        closed = (tmp_path / "gone" / "closed").exists()
        # and the same instance, free again, serves the next invocation
        again = streamed(service, tmp_path / "again", release, ticks=1)
        again_pieces = list(again.pieces)
        again.finish()

    assert ran_after
    assert closed
    assert again_pieces[1:] == [b"first", b"tick"]
    assert prelude(again_pieces[0])["multiValueHeaders"]["x-pid"] == prelude(head)["multiValueHeaders"]["x-pid"]


def test_a_function_past_its_timeout_is_stopped_and_its_instance_replaced() -> None:
    with lambdas(SLEEPY, max_instances=1) as service:
        before: dict[str, Any] = service.invoke(SLEEPY.name, {})
        with pytest.raises(FunctionTimedOutError) as raised:
            service.invoke(SLEEPY.name, {"sleep_seconds": 30})
        after: dict[str, Any] = service.invoke(SLEEPY.name, {})

    assert str(raised.value) == "Task timed out after 1.00 seconds"
    assert raised.value.error_type == "Sandbox.Timedout"
    assert after["pid"] != before["pid"]


def test_an_instance_that_dies_fails_its_invocation_and_is_replaced() -> None:
    with lambdas(ECHO, max_instances=1) as service:
        before: dict[str, Any] = service.invoke(ECHO.name, {})
        with pytest.raises(FunctionError) as raised:
            service.invoke(ECHO.name, {"exit": 3})
        after: dict[str, Any] = service.invoke(ECHO.name, {})

    assert str(raised.value) == "Runtime exited with error: exit status 3"
    assert raised.value.error_type == "Runtime.ExitError"
    assert after["pid"] != before["pid"]


def test_chunks_and_trailers_are_read_as_they_are_framed() -> None:
    body = io.BytesIO(
        b"5\r\nfirst\r\n3;ext=1\r\nend\r\n0\r\n"
        b"Lambda-Runtime-Function-Error-Type: RuntimeError\r\n"
        b"Lambda-Runtime-Function-Error-Body: eyJlcnJvck1lc3NhZ2UiOiAiYnJva2UifQ==\r\n\r\n"
    )

    chunks = [read_chunk(body), read_chunk(body), read_chunk(body)]
    failure = trailer_failure(read_trailers(body))

    assert chunks == [b"first", b"end", None]
    assert failure == FunctionFailure("RuntimeError", "broke")
    with pytest.raises(MalformedBodyError):
        read_chunk(io.BytesIO(b"5\r\nfir"))
