"""What the use cases publish events through; vmx.aws.event_bus is its EventBridge adapter."""

from collections.abc import Sequence
from typing import Protocol

from vmx.deadline import Deadline
from vmx.events.models import EventDetail


class EventPublisher(Protocol):
    def publish(self, events: Sequence[EventDetail], deadline: Deadline | None = None) -> None:
        """Delivers the events (or keeps them to deliver later), or reports those it could not; never raises for
        a delivery failure, and returns by `deadline` (when given) or sooner."""
        ...
