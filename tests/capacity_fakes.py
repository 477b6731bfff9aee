"""An in-memory CapacityCounters, faithful to the port in `vmx/capacity/ledger.py`.

One lock stands for DynamoDB's atomic conditional write: a reservation checks every window and counts in
all of them, or in none, as one step. It keeps only each period's latest window, as the table does, and
applies each request's reservation once and its release or reconcile once, as the table's marks do.
"""

import threading
from collections.abc import Mapping, Sequence
from datetime import datetime

from vmx.capacity.ledger import (
    CounterScope,
    Reservation,
    WindowCount,
    WindowLimit,
    WindowUsage,
    admissible_limits,
    in_refusal_order,
    open_windows,
    refuse_if_any_full,
    usage_of,
    window_state,
)
from vmx.capacity.limits import CapacityPeriod
from vmx.capacity.settlements import DeferredSettlement
from vmx.storage.errors import StorageUnavailable


class InMemoryCapacityCounters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[CounterScope, dict[CapacityPeriod, WindowCount]] = {}
        # the reservations of each scope not yet released or reconciled, with what they were told
        self._open: dict[CounterScope, dict[str, Reservation]] = {}

    def reserve(
        self, scope: CounterScope, limits: Sequence[WindowLimit], tokens: int, now: datetime, request_id: str
    ) -> Reservation:
        ordered = admissible_limits(limits, tokens, now)
        with self._lock:
            already = self._open.get(scope, {}).get(request_id)
            if already is not None:
                return already
            stored = self._counts.setdefault(scope, {})
            states = [window_state(limit.period, stored.get(limit.period), now) for limit in ordered]
            refuse_if_any_full(ordered, states, tokens, now)
            for state in states:
                stored[state.window.period] = WindowCount(
                    state.window.id, state.requests + Reservation.requests, state.tokens + tokens
                )
            usage = tuple(usage_of(limit, window_state(limit.period, stored[limit.period], now)) for limit in ordered)
            windows = {state.window.period: state.window.id for state in states}
            reservation = Reservation(scope, request_id, windows, tokens, usage)
            if windows:
                self._open.setdefault(scope, {})[request_id] = reservation
        return reservation

    def release(self, reservation: Reservation) -> None:
        self._settle(reservation, reservation.windows, -reservation.requests, -reservation.tokens)

    def reconcile(self, reservation: Reservation, actual_tokens: int, now: datetime) -> None:
        if actual_tokens < 0:
            raise ValueError("actual_tokens must not be negative")
        self._settle(reservation, open_windows(reservation, now), 0, actual_tokens - reservation.tokens)

    def usage(self, scope: CounterScope, limits: Sequence[WindowLimit], now: datetime) -> list[WindowUsage]:
        with self._lock:
            stored = dict(self._counts.get(scope, {}))
        return [
            usage_of(limit, window_state(limit.period, stored.get(limit.period), now))
            for limit in in_refusal_order(limits)
        ]

    def _settle(
        self, reservation: Reservation, windows: Mapping[CapacityPeriod, str], requests: int, tokens: int
    ) -> None:
        with self._lock:
            if self._open.get(reservation.scope, {}).pop(reservation.request_id, None) is None:
                return
            stored = self._counts.get(reservation.scope, {})
            for period, window_id in windows.items():
                count = stored.get(period)
                if count is not None and count.window_id == window_id:
                    stored[period] = WindowCount(window_id, count.requests + requests, count.tokens + tokens)


class InMemorySettlementQueue:
    """Keeps what the completion path could not settle, or refuses it like a queue that is down."""

    def __init__(self) -> None:
        self.kept: list[DeferredSettlement] = []
        self.down = False

    def defer(self, settlement: DeferredSettlement) -> None:
        if self.down:
            raise StorageUnavailable("SQS SendMessage failed (InternalError)")
        self.kept.append(settlement)
