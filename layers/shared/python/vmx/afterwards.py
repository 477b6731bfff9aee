"""Work that waits until the answer has gone out: the client never waits on bookkeeping."""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from vmx.deadline import Deadline
from vmx.failures import described

# Pauses before the second, third and fourth attempt of work that is safe to repeat.
RETRY_PAUSES_SECONDS = (0.05, 0.2, 0.5)


class FailureLog(Protocol):
    def error(self, msg: object, *args: object, extra: dict[str, object] | None = None) -> None: ...


@dataclass(frozen=True)
class _Step:
    what: str
    # given the run's deadline, which work that bounds its own waits (a publish) keeps to
    work: Callable[[Deadline], None]
    # the longest one attempt can take; None: not safe to repeat, tried once
    attempt_seconds: float | None
    give_up: Callable[[], None] | None
    # the longest `give_up` can take: kept free by every attempt
    give_up_seconds: float


class Afterwards:
    """Callables to run, in order, once the last byte of the response has been sent (or the client left).

    One that fails is logged and the rest still run: nothing can reach the client any more. Work that is safe
    to repeat is tried again while the time left holds another attempt, and handed to its `give_up` (its
    repair later) when it still fails or no attempt fits.
    """

    def __init__(
        self, pauses: Sequence[float] = RETRY_PAUSES_SECONDS, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._steps: list[_Step] = []
        self._pauses = pauses
        self._sleep = sleep

    def add(
        self,
        what: str,
        work: Callable[[], None],
        *,
        attempt_seconds: float | None = None,
        give_up: Callable[[], None] | None = None,
        give_up_seconds: float = 0.0,
    ) -> None:
        """`what` names the work in the log line if it fails. `attempt_seconds`, for work that is safe to
        repeat, bounds how long one attempt can take, and `give_up_seconds` how long its `give_up` can: an
        attempt starts only when both fit in the time left, and `give_up` only when it does."""
        self._steps.append(_Step(what, lambda deadline: work(), attempt_seconds, give_up, give_up_seconds))

    def add_within(self, what: str, work: Callable[[Deadline], None]) -> None:
        """Work tried once, given the deadline of the run, within which it returns (it bounds its own waits)."""
        self._steps.append(_Step(what, work, None, None, 0.0))

    def run(self, log: FailureLog, deadline: Deadline) -> int:
        """Runs and forgets everything added so far, within `deadline`; returns how many steps failed."""
        steps, self._steps = self._steps, []
        failed = 0
        for step in steps:
            if not self._attempt(step, log, deadline):
                failed += 1
                if step.give_up is not None:
                    self._give_up(step, step.give_up, log, deadline)
        return failed

    def _attempt(self, step: _Step, log: FailureLog, deadline: Deadline) -> bool:
        pauses = iter(self._pauses if step.attempt_seconds is not None else ())
        pause = 0.0
        while True:
            needed = pause + (step.attempt_seconds or 0.0) + step.give_up_seconds
            if step.attempt_seconds is not None and deadline.left() < needed:
                log.error("no time left for work after the response", extra={"work": step.what})
                return False
            if pause:
                self._sleep(pause)
            try:
                step.work(deadline)
                return True
            except Exception as error:  # noqa: BLE001 - every failure is logged; one must not skip the others
                pause = next(pauses, -1.0)
                if pause < 0:
                    log.error("work after the response failed", extra={"work": step.what, **described(error)})
                    return False

    @staticmethod
    def _give_up(step: _Step, give_up: Callable[[], None], log: FailureLog, deadline: Deadline) -> None:
        if deadline.left() < step.give_up_seconds:
            log.error("no time left to keep work after the response for later", extra={"work": step.what})
            return
        try:
            give_up()
        except Exception as error:  # noqa: BLE001 - the repair's failure is the last word: logged, counted
            log.error(
                "work after the response could not be kept for later", extra={"work": step.what, **described(error)}
            )
