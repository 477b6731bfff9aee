"""An in-memory CapacityCounters, faithful to the port in `vmx/capacity/ledger.py`.

One lock stands for DynamoDB's atomic conditional write: a reservation checks every window and counts in
all of them, or in none, as one step. It keeps only each period's latest window, as the table does, and
applies each request's reservation once and its release or reconcile once, as the table's marks do.
"""

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from vmx.capacity.ledger import (
    CounterScope,
    Delta,
    Priority,
    Reservation,
    WindowCount,
    WindowLimit,
    WindowState,
    WindowUsage,
    admissible_limits,
    counted,
    in_refusal_order,
    open_windows,
    reconcile_delta,
    refuse_if_any_full,
    release_delta,
    reserved_delta,
    split_of,
    usage_of,
    window_state,
)
from vmx.capacity.limits import CapacityPeriod, PriorityClass
from vmx.capacity.settlements import DeferredSettlement
from vmx.storage.errors import StorageUnavailable


class InMemoryCapacityCounters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[CounterScope, dict[CapacityPeriod, WindowCount]] = {}
        # the reservations of each scope not yet released or reconciled, with what they were told
        self._open: dict[CounterScope, dict[str, Reservation]] = {}

    def reserve(
        self,
        scope: CounterScope,
        limits: Sequence[WindowLimit],
        tokens: int,
        now: datetime,
        request_id: str,
        priority: Priority | None = None,
    ) -> Reservation:
        ordered = admissible_limits(limits, tokens, now, priority)
        if not ordered:
            return Reservation(scope, request_id, {}, tokens, ())
        classes = priority.classes if priority else ()
        with self._lock:
            already = self._open.get(scope, {}).get(request_id)
            if already is not None:
                return already
            stored = self._counts.setdefault(scope, {})
            states = [window_state(limit.period, stored.get(limit.period), now) for limit in ordered]
            refuse_if_any_full(ordered, states, tokens, now, priority)
            splits = {
                state.window.period: split_of(limit, state, tokens, priority)
                for limit, state in zip(ordered, states, strict=True)
                if priority
            }
            caller = priority.caller if priority else None
            windows = {state.window.period: state.window.id for state in states}
            reservation = Reservation(scope, request_id, windows, tokens, (), priority_class=caller, splits=splits)
            for state in states:
                period = state.window.period
                stored[period] = counted(_count_of(state), caller, reserved_delta(reservation, period))
            usage = tuple(
                usage_of(limit, window_state(limit.period, stored[limit.period], now), classes) for limit in ordered
            )
            reservation = replace(reservation, usage=usage)
            self._open.setdefault(scope, {})[request_id] = reservation
        return reservation

    def release(self, reservation: Reservation) -> None:
        self._settle(reservation, reservation.windows, lambda period: release_delta(reservation, period))

    def reconcile(self, reservation: Reservation, actual_tokens: int, now: datetime) -> None:
        if actual_tokens < 0:
            raise ValueError("actual_tokens must not be negative")
        self._settle(
            reservation,
            open_windows(reservation, now),
            lambda period: reconcile_delta(reservation, period, actual_tokens),
        )

    def usage(
        self,
        scope: CounterScope,
        limits: Sequence[WindowLimit],
        now: datetime,
        classes: Sequence[PriorityClass] = (),
    ) -> list[WindowUsage]:
        with self._lock:
            stored = dict(self._counts.get(scope, {}))
        return [
            usage_of(limit, window_state(limit.period, stored.get(limit.period), now), classes)
            for limit in in_refusal_order(limits)
        ]

    def _settle(
        self,
        reservation: Reservation,
        windows: Mapping[CapacityPeriod, str],
        delta_of: Callable[[CapacityPeriod], Delta],
    ) -> None:
        with self._lock:
            if self._open.get(reservation.scope, {}).pop(reservation.request_id, None) is None:
                return
            stored = self._counts.get(reservation.scope, {})
            for period, window_id in windows.items():
                count = stored.get(period)
                if count is not None and count.window_id == window_id:
                    stored[period] = counted(count, reservation.priority_class, delta_of(period))


def _count_of(state: WindowState) -> WindowCount:
    """What the window holds as a request sees it: a window that rolled over holds nothing yet."""
    return WindowCount(
        state.window.id, state.requests, state.tokens, state.shared_requests, state.shared_tokens, state.classes
    )


class InMemorySettlementQueue:
    """Keeps what the completion path could not settle, or refuses it like a queue that is down."""

    def __init__(self) -> None:
        self.kept: list[DeferredSettlement] = []
        self.down = False

    def defer(self, settlement: DeferredSettlement) -> None:
        if self.down:
            raise StorageUnavailable("SQS SendMessage failed (InternalError)")
        self.kept.append(settlement)
