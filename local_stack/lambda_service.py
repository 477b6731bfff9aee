"""The functions of `infra/system.py` run as Lambda runs them: in execution environments of their own.

Each function gets instances: worker processes running `python -m vmx.runtime`, the runtime loop that runs in
AWS, against a Runtime API of their own (`local_stack.runtime_api`). An instance serves one invocation at a
time, including whatever its runtime does after the response; an invocation goes to a free instance, and
when every instance is busy a new one is started, up to `max_instances` per function. One instance of each
function is started up front. An instance that dies is replaced; one that runs past its function's timeout is
killed, as Lambda does.

An instance's environment is its function's (local_stack.emulator.function_environment) and what Lambda sets
for an execution environment; nothing of the local stack's own process environment, nor of another function's.

`LambdaService.invoke(name, event)` keeps the contract of `LambdaRuntime.invoke`, the in-process stand-in the
functional tests use: a buffered function's result, a streaming function's `StreamedInvocation` whose pieces
arrive as the instance sends them, or the invocation's error raised as a `FunctionError`.
"""

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from infra.handlers import FUNCTIONS_ROOT
from infra.system import Function
from local_stack.lambda_runtime import ACCOUNT_ID, REGION, StreamedInvocation, function_name
from local_stack.runtime_api import (
    FunctionFailure,
    Invocation,
    Piece,
    Result,
    RuntimeEndpoint,
    StreamEnded,
    StreamStarted,
    TimedOut,
)

logger = logging.getLogger("local_stack")

LAYER_PATH = Path(__file__).resolve().parent.parent / "layers" / "shared" / "python"
HANDLER = "handler.lambda_handler"
DEFAULT_MAX_INSTANCES = 8
# Lambda gives an environment 10 s to initialise; a laptop starting every function at once needs longer.
INIT_TIMEOUT_SECONDS = 30.0
# How long stopped instances get to exit before they are killed.
STOP_GRACE_SECONDS = 5.0


class FunctionError(Exception):
    """An invocation's error as Lambda returns it to the invoker; `str()` is its errorMessage, which is how
    API Gateway recognises an authorizer's "Unauthorized"."""

    def __init__(self, failure: FunctionFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure

    @property
    def error_type(self) -> str:
        return self.failure.error_type


class FunctionTimedOutError(FunctionError):
    """The function ran past its timeout (or its instance past the init timeout); the instance was killed."""


@dataclass(frozen=True)
class _Instance:
    number: int
    endpoint: RuntimeEndpoint
    process: "subprocess.Popen[bytes]"


class _FunctionInstances:
    """One function's instances: started on demand up to a cap, replaced when they die."""

    def __init__(
        self,
        function: Function,
        functions_root: Path,
        max_instances: int,
        init_timeout_seconds: float,
        environment: Mapping[str, str],
    ) -> None:
        self.function = function
        self.name = function_name(function)
        self._task_root = functions_root / function.source_dir
        self._arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.name}"
        self._max_instances = max_instances
        self._init_timeout_seconds = init_timeout_seconds
        self._function_environment = dict(environment)
        self._changed = threading.Condition()
        self._instances: list[_Instance] = []
        self._watchers: list[threading.Thread] = []
        self._started = 0
        self._closing = False
        # invocations in dispatch, waiting for a free instance
        self._waiting = 0

    def start(self) -> None:
        with self._changed:
            self._start()

    def dispatch(self, invocation: Invocation) -> _Instance:
        """Assigns the invocation to the first instance that is free. When every one is busy, a new instance is
        started (one per waiting invocation, up to the cap) but the invocation still goes to whichever instance
        is free first: a warm one finishing in milliseconds usually beats a new one's seconds of imports. A
        function with no initialised instance at all hands it to a starting one, which reports an init failure.
        Waits up to the function's timeout."""
        give_up_at = time.monotonic() + self.function.timeout_seconds
        with self._changed:
            self._waiting += 1
            try:
                while not self._closing:
                    warm = [instance for instance in self._instances if instance.endpoint.initialised]
                    for instance in warm or self._instances:
                        if instance.endpoint.try_assign(invocation):
                            return instance
                    starting = len(self._instances) - len(warm)
                    if starting < self._waiting and len(self._instances) < self._max_instances:
                        self._start()
                        continue
                    remaining = give_up_at - time.monotonic()
                    if remaining <= 0:
                        raise FunctionError(FunctionFailure("TooManyRequestsException", "Rate Exceeded."))
                    self._changed.wait(remaining)
            finally:
                self._waiting -= 1
        raise FunctionError(FunctionFailure("ServiceException", "the local Lambda service is stopping"))

    def wait_initialised(self, until: float) -> bool:
        """Whether an instance has initialised by `until` (monotonic); False at once if none is starting."""
        with self._changed:
            while not any(instance.endpoint.initialised for instance in self._instances):
                remaining = until - time.monotonic()
                if not self._instances or remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True

    def kill(self, instance: _Instance) -> None:
        with contextlib.suppress(ProcessLookupError):
            instance.process.kill()

    def stop(self) -> None:
        """Asks every instance to end (SIGTERM) and starts no more."""
        with self._changed:
            self._closing = True
            instances = list(self._instances)
            self._changed.notify_all()
        for instance in instances:
            with contextlib.suppress(ProcessLookupError):
                instance.process.terminate()

    def join(self, grace_until: float) -> None:
        """Waits for the instances to end, killing those still running at `grace_until` (monotonic)."""
        with self._changed:
            instances = list(self._instances)
            watchers = list(self._watchers)
        for instance in instances:
            try:
                instance.process.wait(max(grace_until - time.monotonic(), 0))
            except subprocess.TimeoutExpired:
                logger.warning("%s instance %d did not stop; killing it", self.name, instance.number)
                self.kill(instance)
        for watcher in watchers:
            watcher.join()

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _start(self) -> _Instance:
        """Starts an instance (the lock is held)."""
        self._started += 1
        self._watchers = [watcher for watcher in self._watchers if watcher.is_alive()]
        endpoint = RuntimeEndpoint(self._arn, self._init_timeout_seconds, self._notify)
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "vmx.runtime"],
                env=self._environment(endpoint, self._started),
                cwd=self._task_root,
                # Ctrl+C in a terminal reaches the whole process group: the stack stops its instances itself
                start_new_session=True,
            )
        except OSError:
            endpoint.close(FunctionFailure("ServiceException", "the instance could not be started"))
            raise
        instance = _Instance(self._started, endpoint, process)
        self._instances.append(instance)
        watcher = threading.Thread(target=self._watch, args=(instance,), name=f"{self.name}-{instance.number}")
        self._watchers.append(watcher)
        watcher.start()
        logger.info("%s instance %d started (pid %d)", self.name, instance.number, process.pid)
        return instance

    def _environment(self, endpoint: RuntimeEndpoint, number: int) -> dict[str, str]:
        """The function's environment and what Lambda sets for one of its execution environments."""
        task_root = str(self._task_root)
        path = [task_root, str(LAYER_PATH), *filter(None, [self._function_environment.get("PYTHONPATH")])]
        return self._function_environment | (
            {
                "AWS_LAMBDA_RUNTIME_API": endpoint.address,
                "_HANDLER": HANDLER,
                "LAMBDA_TASK_ROOT": task_root,
                "AWS_LAMBDA_FUNCTION_NAME": self.name,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.function.memory_mb),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": f"local/instance-{number}",
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                # as bin/vmx-streaming-runtime puts them: the function's code, then the layer
                "PYTHONPATH": os.pathsep.join(path),
                # the instance's log lines as they are written, not when a buffer fills
                "PYTHONUNBUFFERED": "1",
            }
        )

    def _watch(self, instance: _Instance) -> None:
        """Waits for the instance to end; fails what it was running and replaces it."""
        code = instance.process.wait()
        failure = instance.endpoint.init_failure or _exit_failure(code)
        initialised = instance.endpoint.initialised
        with self._changed:
            self._instances.remove(instance)
            closing = self._closing
            try:
                if initialised and not closing:
                    # one that never initialised is not: the next invocation starts one, retrying the init
                    self._start()
            except OSError:
                logger.exception("%s: cannot start an instance in place of instance %d", self.name, instance.number)
            finally:
                self._changed.notify_all()
        instance.endpoint.close(failure)
        if not closing:
            logger.warning("%s instance %d ended: %s", self.name, instance.number, failure.message)


def _exit_failure(code: int) -> FunctionFailure:
    reason = f"signal: {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
    return FunctionFailure("Runtime.ExitError", f"Runtime exited with error: {reason}")


class LambdaService:
    """Every function in its own instances, invoked by name; a context manager that starts and stops them."""

    def __init__(
        self,
        functions: Iterable[Function],
        *,
        environments: Mapping[str, Mapping[str, str]],
        functions_root: Path = FUNCTIONS_ROOT,
        max_instances: int = DEFAULT_MAX_INSTANCES,
        init_timeout_seconds: float = INIT_TIMEOUT_SECONDS,
    ) -> None:
        """`environments` holds each function's environment by name: all that its instances are told besides
        what Lambda sets."""
        if max_instances < 1:
            raise ValueError("max_instances must be at least 1")
        functions = list(functions)
        missing = sorted(function.name for function in functions if function.name not in environments)
        if missing:
            raise ValueError(f"no environment for functions {missing}")
        self._functions = {
            function.name: _FunctionInstances(
                function, functions_root, max_instances, init_timeout_seconds, environments[function.name]
            )
            for function in functions
        }
        self._init_timeout_seconds = init_timeout_seconds

    def __enter__(self) -> "LambdaService":
        try:
            for instances in self._functions.values():
                instances.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        for instances in self._functions.values():
            instances.stop()
        grace_until = time.monotonic() + STOP_GRACE_SECONDS
        for instances in self._functions.values():
            instances.join(grace_until)

    def wait_until_initialised(self, timeout_seconds: float | None = None) -> list[str]:
        """Waits for each function's first instance to load its handler; returns the functions none of whose
        instances did (an init error, or still loading after the timeout)."""
        until = time.monotonic() + (self._init_timeout_seconds if timeout_seconds is None else timeout_seconds)
        return [name for name, instances in self._functions.items() if not instances.wait_initialised(until)]

    def invoke(self, name: str, event: dict[str, Any]) -> Any:
        instances = self._functions[name]
        invocation = Invocation(json.dumps(event).encode(), instances.function.timeout_seconds)
        instance = instances.dispatch(invocation)
        answer = invocation.next_answer()
        if isinstance(answer, Result):
            try:
                return json.loads(answer.payload)
            except ValueError:
                raise FunctionError(FunctionFailure("Runtime.InvalidResponse", "the response is not JSON")) from None
        if isinstance(answer, StreamStarted):
            return StreamedInvocation(self._pieces(instances, instance, invocation), invocation.cancel)
        if isinstance(answer, FunctionFailure):
            raise FunctionError(answer)
        if isinstance(answer, TimedOut):
            instances.kill(instance)
            raise FunctionTimedOutError(self._timed_out(instances, instance, answer))
        raise FunctionError(FunctionFailure("Runtime.InvalidResponse", "the runtime sent a piece before a response"))

    def _pieces(self, instances: _FunctionInstances, instance: _Instance, invocation: Invocation) -> Iterator[bytes]:
        while True:
            answer = invocation.next_answer()
            if isinstance(answer, Piece):
                yield answer.data
                continue
            if isinstance(answer, StreamEnded) and answer.failure is not None:
                logger.error(
                    "%s failed during its response stream: %s: %s",
                    instances.name,
                    answer.failure.error_type,
                    answer.failure.message,
                )
            elif isinstance(answer, TimedOut):
                instances.kill(instance)
                logger.error("%s", self._timed_out(instances, instance, answer).message)
            return

    @staticmethod
    def _timed_out(instances: _FunctionInstances, instance: _Instance, answer: TimedOut) -> FunctionFailure:
        if answer.before_handoff:
            message = f"{instances.name} instance {instance.number} did not initialise in time; it was stopped"
            return FunctionFailure("Runtime.InitTimeout", message)
        seconds = instances.function.timeout_seconds
        return FunctionFailure("Sandbox.Timedout", f"Task timed out after {seconds:.2f} seconds")
