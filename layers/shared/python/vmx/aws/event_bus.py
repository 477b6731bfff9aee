"""Publishing events on EventBridge: the adapter of the use cases' port (vmx.events.ports).

An event is never worth failing a user's request, and never lost to a bus that fails for a while: PutEvents
is retried, for the entries it reports as failed and after whole-call errors; an event that still fails is
kept in the outbox (vmx.aws.event_outbox) for its consumer to publish later, and counted through
`on_deferred` (`EventsDeferred`). All of it within a time budget (`RetryPolicy.budget_seconds`, shortened to
the caller's deadline if it gives one): an attempt starts only when it and keeping what it may fail to deliver
both fit in the time left. Only an event EventBridge will never take (a permanent error), or one the outbox
could not keep either, is logged (its id and type, never its detail) and counted through `on_not_published`
(`EventsNotPublished`, which has an alarm).
"""

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from vmx.aws.event_outbox import EventOutbox
from vmx.deadline import Deadline
from vmx.events.models import EventDetail, put_events_entry

if TYPE_CHECKING:
    from mypy_boto3_events.client import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

# What the handlers count, through `on_deferred` and `on_not_published`; the second has an alarm (infra.alarms).
EVENTS_DEFERRED_METRIC = "EventsDeferred"
EVENTS_NOT_PUBLISHED_METRIC = "EventsNotPublished"

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


class FailureLog(Protocol):
    """What the adapter needs of a logger: Powertools' Logger and the standard library's both fit."""

    def error(self, msg: object, *args: object, extra: Mapping[str, object] | None = None) -> None: ...


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long the publisher tries. The clients it is given must not retry on their own
    (botocore's `total_max_attempts=1`), and one call of theirs must take at most `attempt_seconds` (the bus)
    or `keep_seconds` (the outbox): their connect and read timeouts."""

    attempts: int = 4
    first_delay_seconds: float = 0.1
    attempt_seconds: float = 1.5
    keep_attempts: int = 2
    keep_seconds: float = 1.5
    # the longest a publish takes, whatever the caller's deadline
    budget_seconds: float = 5.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.keep_attempts < 1:
            raise ValueError("a retry policy makes at least one attempt on the bus and one on the outbox")
        if min(self.first_delay_seconds, self.attempt_seconds, self.keep_seconds) < 0:
            raise ValueError("a retry policy never waits a negative time")
        if self.budget_seconds < self.attempt_seconds + self.keep_seconds:
            raise ValueError("the budget must hold one attempt on the bus and one on the outbox")

    def delays(self) -> list[float]:
        """Waits between attempts on the bus, doubling: by default 0.1, 0.2 and 0.4 s, 0.7 s in all."""
        return [self.first_delay_seconds * 2**retry for retry in range(self.attempts - 1)]

    def keep_delays(self) -> list[float]:
        """Waits between attempts on the outbox: the first delay each time."""
        return [self.first_delay_seconds] * (self.keep_attempts - 1)


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
    # the bus's last answer, or NO_TIME_LEFT when no attempt fitted in the time left
    error_code: str
    # why it was not kept for later instead: None for a permanent error, which no later attempt can fix
    outbox: str | None = None


NO_TIME_LEFT = "NoTimeLeft"


class EventBridgePublisher:
    def __init__(
        self,
        client: "EventBridgeClient",
        bus_name: str,
        log: FailureLog,
        on_not_published: Callable[[int], None],
        outbox: EventOutbox,
        on_deferred: Callable[[int], None],
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        """`clock` is the one a `Deadline` is on (the monotonic clock); `sleep` waits on it."""
        self._client = client
        self._bus_name = bus_name
        self._log = log
        self._on_not_published = on_not_published
        self._outbox = outbox
        self._on_deferred = on_deferred
        self._retry = retry
        self._sleep = sleep
        self._clock = clock

    def publish(self, events: Sequence[EventDetail], deadline: Deadline | None = None) -> None:
        ends = self._clock() + self._retry.budget_seconds
        if deadline is not None:
            ends = min(ends, deadline.at)
        pending: list[_Pending] = []
        given_up: list[_Failure] = []
        for event in events:
            entry = put_events_entry(event, self._bus_name)
            item = _Pending(event, entry, entry_size(entry))
            if item.size > MAX_REQUEST_BYTES:
                given_up.append(_Failure(item, "EntryTooLarge"))
            else:
                pending.append(item)
        retryable = [_Failure(item, NO_TIME_LEFT) for item in pending]
        for pause in [0.0, *self._retry.delays()]:
            # an attempt starts only when it, and keeping for later what it may fail to deliver, fit in the time left
            if not retryable or self._left(ends) < pause + self._retry.attempt_seconds + self._retry.keep_seconds:
                break
            if pause:
                self._sleep(pause)
            failures = [failure for batch in batches(pending, _size) for failure in self._put(batch)]
            given_up += [failure for failure in failures if failure.error_code in _PERMANENT_ERRORS]
            retryable = [failure for failure in failures if failure.error_code not in _PERMANENT_ERRORS]
            pending = [failure.pending for failure in retryable]
        if retryable:
            given_up += self._defer(retryable, ends)
        self._report(given_up)

    def _defer(self, failures: list[_Failure], ends: float) -> list[_Failure]:
        """Hands the failures to the outbox, within the time left; returns those it could not keep."""
        for pause in [0.0, *self._retry.keep_delays()]:
            if self._left(ends) < pause + self._retry.keep_seconds:
                return [replace(failure, outbox=failure.outbox or "no time left") for failure in failures]
            if pause:
                self._sleep(pause)
            lost = set(self._outbox.keep([failure.pending.entry for failure in failures]))
            if len(lost) < len(failures):
                self._on_deferred(len(failures) - len(lost))
            failures = [
                replace(failure, outbox="failed") for position, failure in enumerate(failures) if position in lost
            ]
            if not failures:
                break
        return failures

    def _left(self, ends: float) -> float:
        return ends - self._clock()

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
                    # for an event that could have been kept for later: why it was not
                    **({"outbox": failure.outbox} if failure.outbox else {}),
                },
            )
        if given_up:
            self._on_not_published(len(given_up))


def _size(item: _Pending) -> int:
    return item.size
