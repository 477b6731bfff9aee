"""A point in time by which something must be done, on the monotonic clock: an invocation's time budget."""

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Deadline:
    at: float

    @classmethod
    def after(cls, seconds: float) -> "Deadline":
        return cls(time.monotonic() + seconds)

    def left(self) -> float:
        """Seconds until the deadline, never below zero."""
        return max(self.at - time.monotonic(), 0.0)

    def sooner(self, seconds: float) -> "Deadline":
        """This deadline moved `seconds` earlier: the time left once something else has been set aside."""
        return Deadline(self.at - seconds)

    @property
    def passed(self) -> bool:
        return time.monotonic() >= self.at
