"""Work after the response: one step that fails (a throttled reconcile, say) is logged and counted, and the
steps after it still run; nothing is run twice."""

from typing import Any

from vmx.afterwards import Afterwards
from vmx.storage.errors import StorageUnavailable


class RecordingLog:
    def __init__(self) -> None:
        self.failures: list[dict[str, Any] | None] = []

    def exception(self, msg: object, *args: object, extra: dict[str, object] | None = None) -> None:
        self.failures.append(extra)


def test_a_failed_step_is_logged_and_counted_and_the_next_steps_still_run() -> None:
    done: list[str] = []
    log = RecordingLog()
    afterwards = Afterwards()

    def throttled() -> None:
        raise StorageUnavailable("DynamoDB request failed (ThrottlingException)")

    afterwards.add("reconcile", throttled)
    afterwards.add("publish", lambda: done.append("published"))

    failed = afterwards.run(log)

    assert failed == 1
    assert done == ["published"]
    assert log.failures == [{"work": "reconcile"}]


def test_work_runs_once() -> None:
    done: list[str] = []
    afterwards = Afterwards()
    afterwards.add("publish", lambda: done.append("published"))

    afterwards.run(RecordingLog())
    again = afterwards.run(RecordingLog())

    assert (done, again) == (["published"], 0)
