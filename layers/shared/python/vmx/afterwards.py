"""Work that waits until the answer has gone out: the client never waits on bookkeeping."""

from collections.abc import Callable
from typing import Protocol


class FailureLog(Protocol):
    def exception(self, msg: object, *args: object, extra: dict[str, object] | None = None) -> None: ...


class Afterwards:
    """Callables to run, in order, once the last byte of the response has been sent (or the client left).

    One that fails is logged and the rest still run: nothing can reach the client any more.
    """

    def __init__(self) -> None:
        self._work: list[tuple[str, Callable[[], None]]] = []

    def add(self, what: str, work: Callable[[], None]) -> None:
        """`what` names the work in the log line if it fails."""
        self._work.append((what, work))

    def run(self, log: FailureLog) -> int:
        """Runs and forgets everything added so far; returns how many failed."""
        work, self._work = self._work, []
        failed = 0
        for what, step in work:
            try:
                step()
            except Exception:  # every failure is logged; one step's failure must not skip the others
                failed += 1
                log.exception("work after the response failed", extra={"work": what})
        return failed
