"""Work after the response: one step that fails (a throttled reconcile, say) is logged and counted, and the
steps after it still run; work that is safe to repeat is tried again while an attempt fits in the time left,
then handed to its repair; nothing is run twice."""

import time
from dataclasses import dataclass

import pytest

from vmx.afterwards import RETRY_PAUSES_SECONDS, Afterwards
from vmx.deadline import Deadline
from vmx.storage.errors import StorageUnavailable


class RecordingLog:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, object]]] = []

    def error(self, msg: object, *args: object, extra: dict[str, object] | None = None) -> None:
        # the work and the error's type, never its text (vmx.failures)
        assert extra is not None and "message" not in extra
        kept: dict[str, object] = {key: extra[key] for key in ("work", "error_type") if key in extra}
        self.lines.append((str(msg), kept))


class FailingTimes:
    """Work that fails its first `failures` attempts."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts = 0

    def __call__(self) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise StorageUnavailable("DynamoDB request failed (ThrottlingException)")


class ClockedSleep:
    """Sleeps without waiting: moves a deadline closer instead, so time left shrinks as it would."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self.slept = 0.0

    def __call__(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.slept += seconds

    def deadline(self, seconds: float) -> "ShrinkingDeadline":
        return ShrinkingDeadline(time.monotonic() + seconds, self)


@dataclass(frozen=True)
class ShrinkingDeadline(Deadline):
    sleep: ClockedSleep

    def left(self) -> float:
        return max(super().left() - self.sleep.slept, 0.0)


def test_a_failed_step_is_logged_and_counted_and_the_next_steps_still_run() -> None:
    done: list[str] = []
    log = RecordingLog()
    afterwards = Afterwards()
    afterwards.add("reconcile", FailingTimes(1))
    afterwards.add("publish", lambda: done.append("published"))

    failed = afterwards.run(log, Deadline.after(60))

    assert failed == 1
    assert done == ["published"]
    assert log.lines == [("work after the response failed", {"work": "reconcile", "error_type": "StorageUnavailable"})]


def test_work_that_is_not_safe_to_repeat_is_tried_once() -> None:
    publish = FailingTimes(1)
    afterwards = Afterwards(sleep=ClockedSleep())
    afterwards.add("publish", publish)

    assert afterwards.run(RecordingLog(), Deadline.after(60)) == 1
    assert publish.attempts == 1


def test_work_safe_to_repeat_is_tried_again_after_growing_pauses_until_it_succeeds() -> None:
    reconcile, sleep, kept = FailingTimes(3), ClockedSleep(), []
    log = RecordingLog()
    afterwards = Afterwards(sleep=sleep)
    afterwards.add("reconcile", reconcile, attempt_seconds=1.0, give_up=lambda: kept.append("kept"))

    failed = afterwards.run(log, sleep.deadline(60))

    assert (failed, reconcile.attempts, kept, log.lines) == (0, 4, [], [])
    assert sleep.pauses == list(RETRY_PAUSES_SECONDS)


def test_work_that_keeps_failing_is_handed_to_its_repair_once_the_attempts_run_out() -> None:
    reconcile, kept = FailingTimes(100), []
    log = RecordingLog()
    afterwards = Afterwards(sleep=ClockedSleep())
    afterwards.add("reconcile", reconcile, attempt_seconds=1.0, give_up=lambda: kept.append("kept"))

    assert afterwards.run(log, Deadline.after(60)) == 1
    assert reconcile.attempts == len(RETRY_PAUSES_SECONDS) + 1
    assert kept == ["kept"]
    assert log.lines == [("work after the response failed", {"work": "reconcile", "error_type": "StorageUnavailable"})]


def test_an_attempt_starts_only_when_it_fits_in_the_time_left() -> None:
    # 2.3 s left, attempts of up to 1 s: the first (0 s pause) and second (0.05) fit, the third (0.2 more) does not
    reconcile, sleep, kept = FailingTimes(100), ClockedSleep(), []
    log = RecordingLog()
    afterwards = Afterwards(sleep=sleep)
    spent_per_attempt = 1.0

    def slow_failure() -> None:
        sleep.slept += spent_per_attempt
        reconcile()

    afterwards.add("reconcile", slow_failure, attempt_seconds=1.0, give_up=lambda: kept.append("kept"))

    assert afterwards.run(log, sleep.deadline(2.3)) == 1
    assert reconcile.attempts == 2
    assert kept == ["kept"]
    assert log.lines == [("no time left for work after the response", {"work": "reconcile"})]


def test_with_no_time_for_one_attempt_the_work_goes_straight_to_its_repair() -> None:
    reconcile, kept = FailingTimes(0), []
    afterwards = Afterwards(sleep=ClockedSleep())
    afterwards.add("release", reconcile, attempt_seconds=5.0, give_up=lambda: kept.append("kept"))

    assert afterwards.run(RecordingLog(), Deadline.after(1)) == 1
    assert (reconcile.attempts, kept) == (0, ["kept"])


def test_a_repair_that_fails_too_is_logged_and_the_next_steps_still_run() -> None:
    done: list[str] = []
    log = RecordingLog()
    afterwards = Afterwards(sleep=ClockedSleep())

    def queue_down() -> None:
        raise StorageUnavailable("SQS SendMessage failed (InternalError)")

    afterwards.add("reconcile", FailingTimes(100), attempt_seconds=1.0, give_up=queue_down)
    afterwards.add("publish", lambda: done.append("published"))

    assert afterwards.run(log, Deadline.after(60)) == 1
    assert done == ["published"]
    assert [line for line, _ in log.lines] == [
        "work after the response failed",
        "work after the response could not be kept for later",
    ]


@pytest.mark.parametrize("attempt_seconds", [None, 1.0])
def test_work_runs_once(attempt_seconds: float | None) -> None:
    done: list[str] = []
    afterwards = Afterwards()
    afterwards.add("publish", lambda: done.append("published"), attempt_seconds=attempt_seconds)

    afterwards.run(RecordingLog(), Deadline.after(60))
    again = afterwards.run(RecordingLog(), Deadline.after(60))

    assert (done, again) == (["published"], 0)


def test_attempts_leave_time_for_the_repair_and_the_repair_starts_only_if_it_fits() -> None:
    sleep, kept = ClockedSleep(), []
    log = RecordingLog()
    afterwards = Afterwards(sleep=sleep)
    # 3 s left: an attempt (1 s) plus the repair (2.5 s) does not fit, so none starts; the repair does
    afterwards.add(
        "release", FailingTimes(0), attempt_seconds=1.0, give_up=lambda: kept.append("kept"), give_up_seconds=2.5
    )
    # the next step: not even its repair (5 s) fits
    afterwards.add(
        "reconcile",
        lambda: (_ for _ in ()).throw(AssertionError("no attempt fits")),
        attempt_seconds=1.0,
        give_up=lambda: kept.append("late"),
        give_up_seconds=5.0,
    )

    assert afterwards.run(log, sleep.deadline(3)) == 2
    assert kept == ["kept"]
    assert [line for line, _ in log.lines] == [
        "no time left for work after the response",
        "no time left for work after the response",
        "no time left to keep work after the response for later",
    ]


def test_work_that_bounds_its_own_waits_is_given_the_runs_deadline_and_tried_once() -> None:
    given: list[Deadline] = []
    deadline = Deadline.after(7)
    afterwards = Afterwards(sleep=ClockedSleep())

    def publish(until: Deadline) -> None:
        given.append(until)
        raise StorageUnavailable("the bus is down")

    afterwards.add_within("publish", publish)

    assert afterwards.run(RecordingLog(), deadline) == 1
    assert given == [deadline]
