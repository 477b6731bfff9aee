"""Publishing events: the port the use cases take, and its EventBridge adapter.

An event is never worth failing a user's request, and never dropped in silence: PutEvents is retried, for
the entries it reports as failed and after whole-call errors, within a small time budget; an event that
still fails is logged (its id and type, never its detail) and counted through `on_not_published`, which
the handler turns into the `EventsNotPublished` metric.
"""

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from vmx.events.models import EventDetail, put_events_entry

if TYPE_CHECKING:
    from mypy_boto3_events.client import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

# PutEvents' own limits: entries per call, and bytes per call as AWS counts them (see `entry_size`).
MAX_ENTRIES_PER_CALL = 10
MAX_REQUEST_BYTES = 256 * 1024

# What another attempt cannot fix: a missing bus or permission, or an entry EventBridge will never take.
_PERMANENT_ERRORS = frozenset(
    {
        "AccessDeniedException",
        "NotAuthorizedForSourceException",
        "ResourceNotFoundException",
        "ValidationException",
        "InvalidArgument",
        "MalformedDetail",
        "EntryTooLarge",
        "ParamValidationError",
    }
)

_T = TypeVar("_T")


class EventPublisher(Protocol):
    def publish(self, events: Sequence[EventDetail]) -> None:
        """Delivers the events, or reports those it could not; never raises for a delivery failure."""
        ...


class FailureLog(Protocol):
    """What the adapter needs of a logger: Powertools' Logger and the standard library's both fit."""

    def error(self, msg: object, *args: object, extra: Mapping[str, object] | None = None) -> None: ...


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    first_delay_seconds: float = 0.1

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.first_delay_seconds < 0:
            raise ValueError("a retry policy makes at least one attempt and never waits a negative time")

    def delays(self) -> list[float]:
        """Waits between attempts, doubling: by default 0.1, 0.2 and 0.4 s, 0.7 s in all."""
        return [self.first_delay_seconds * 2**retry for retry in range(self.attempts - 1)]


def entry_size(entry: "PutEventsRequestEntryTypeDef") -> int:
    """An entry's size as PutEvents counts it against its limit: 14 bytes for a Time, then UTF-8 text."""
    size = 14 if "Time" in entry else 0
    for text in (entry.get("Source"), entry.get("DetailType"), entry.get("Detail"), *entry.get("Resources", [])):
        size += len(text.encode()) if text else 0
    return size


def batches(items: Sequence[_T], size: Callable[[_T], int]) -> list[list[_T]]:
    """Consecutive batches within PutEvents' limits, in order; every item must fit in a call on its own."""
    result: list[list[_T]] = []
    current: list[_T] = []
    current_bytes = 0
    for item in items:
        item_bytes = size(item)
        if len(current) == MAX_ENTRIES_PER_CALL or current_bytes + item_bytes > MAX_REQUEST_BYTES:
            result.append(current)
            current, current_bytes = [], 0
        current.append(item)
        current_bytes += item_bytes
    if current:
        result.append(current)
    return result


@dataclass(frozen=True)
class _Pending:
    event: EventDetail
    entry: "PutEventsRequestEntryTypeDef"
    size: int


@dataclass(frozen=True)
class _Failure:
    pending: _Pending
    error_code: str


class EventBridgePublisher:
    def __init__(
        self,
        client: "EventBridgeClient",
        bus_name: str,
        log: FailureLog,
        on_not_published: Callable[[int], None],
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
    ):
        """`client` should not retry on its own (botocore's `total_max_attempts=1`), so `retry` bounds the time."""
        self._client = client
        self._bus_name = bus_name
        self._log = log
        self._on_not_published = on_not_published
        self._retry = retry
        self._sleep = sleep

    def publish(self, events: Sequence[EventDetail]) -> None:
        pending: list[_Pending] = []
        given_up: list[_Failure] = []
        for event in events:
            entry = put_events_entry(event, self._bus_name)
            item = _Pending(event, entry, entry_size(entry))
            if item.size > MAX_REQUEST_BYTES:
                given_up.append(_Failure(item, "EntryTooLarge"))
            else:
                pending.append(item)
        # None: no wait after the last attempt
        for wait in [*self._retry.delays(), None]:
            failures = [failure for batch in batches(pending, _size) for failure in self._put(batch)]
            given_up += [failure for failure in failures if failure.error_code in _PERMANENT_ERRORS]
            retryable = [failure for failure in failures if failure.error_code not in _PERMANENT_ERRORS]
            if not retryable:
                break
            if wait is None:
                given_up += retryable
                break
            self._sleep(wait)
            pending = [failure.pending for failure in retryable]
        self._report(given_up)

    def _put(self, batch: list[_Pending]) -> list[_Failure]:
        try:
            response = self._client.put_events(Entries=[item.entry for item in batch])
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "ClientError")
            return [_Failure(item, code) for item in batch]
        except BotoCoreError as exc:
            return [_Failure(item, type(exc).__name__) for item in batch]
        if not response.get("FailedEntryCount"):
            return []
        # results come back in the order of the entries sent
        return [
            _Failure(item, result["ErrorCode"])
            for item, result in zip(batch, response["Entries"], strict=True)
            if result.get("ErrorCode")
        ]

    def _report(self, given_up: list[_Failure]) -> None:
        for failure in given_up:
            event = failure.pending.event
            self._log.error(
                "event not published",
                extra={
                    "event_id": str(event.event_id),
                    "detail_type": event.detail_type.value,
                    "error_code": failure.error_code,
                },
            )
        if given_up:
            self._on_not_published(len(given_up))


def _size(item: _Pending) -> int:
    return item.size
