"""An in-memory EventPublisher, faithful to the port in `vmx/events/publisher.py`: it keeps what it is given."""

import threading
from collections.abc import Sequence
from typing import TypeVar

from vmx.deadline import Deadline
from vmx.events.models import EventDetail

_E = TypeVar("_E", bound=EventDetail)


class InMemoryEventPublisher:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.published: list[EventDetail] = []

    def publish(self, events: Sequence[EventDetail], deadline: Deadline | None = None) -> None:
        with self._lock:
            self.published.extend(events)

    def of_type(self, kind: type[_E]) -> list[_E]:
        with self._lock:
            return [event for event in self.published if isinstance(event, kind)]
