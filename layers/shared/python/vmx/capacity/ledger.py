"""Capacity counters: the port every store implements, and the rules they share.

A request reserves one request and its estimated tokens in every limited window of a scope (a connection,
or a connection and client IP) before the provider is called, and is refused when any window lacks room.
Afterwards the estimate is reconciled with the tokens the provider reported. Limits are passed in with
each call and are not stored with the counts, so a changed limit applies to the next request and counts
carry on. A period starts counting when it is first limited.

Every write is safe to send twice: a reservation is named by its request id, and a store applies the
reservation, its release and its reconcile once each, however often they are sent (botocore's retries of
a write whose answer was lost included); a release or reconcile after the other, or twice, is a no-op.

Refusal order: limits that could never hold this request (a requests limit of 0, or a tokens limit below
the reservation) come first, then the current counts; within each, shorter periods come before longer
ones (minute, hour, day, week, month, lifetime) and, in one period, requests before tokens. The refusal
names the first limit in that order that lacks room.
"""

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar, Literal, Protocol

from vmx.capacity.limits import CapacityDimension, CapacityEntry, CapacityPeriod
from vmx.capacity.windows import Window, counting_window, current_window, has_ended

LimitKind = Literal["requests", "tokens"]

# CapacityPeriod lists its periods shortest first.
_PERIOD_RANK = {period: rank for rank, period in enumerate(CapacityPeriod)}
# sorts lifetime windows, which never reset, after every window that does
_NEVER = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class WindowLimit:
    period: CapacityPeriod
    requests: int | None
    tokens: int | None


@dataclass(frozen=True)
class CounterScope:
    connection_id: str
    # None: the connection's own windows; otherwise the windows of this client IP on the connection
    source_ip: str | None


class CapacityExceeded(Exception):
    """A window has no room for the request; `retry_after_seconds` and `resets_at` are None for lifetime.

    `usage` holds the scope's windows as the refusing store saw them at that instant (empty when the request
    could never fit and nothing was read), so that a refusal's headers need no second read and cannot describe
    a later window."""

    def __init__(
        self,
        period: CapacityPeriod,
        limit_kind: LimitKind,
        limit: int,
        retry_after_seconds: int | None,
        resets_at: datetime | None,
        usage: tuple["WindowUsage", ...] = (),
    ):
        super().__init__(f"the {period} {limit_kind} limit of {limit} leaves no room for this request")
        self.period = period
        self.limit_kind = limit_kind
        self.limit = limit
        self.retry_after_seconds = retry_after_seconds
        self.resets_at = resets_at
        self.usage = usage


@dataclass(frozen=True)
class WindowUsage:
    period: CapacityPeriod
    requests_used: int
    tokens_used: int
    requests_limit: int | None
    tokens_limit: int | None
    # None for lifetime
    resets_at: datetime | None

    @property
    def requests_remaining(self) -> int | None:
        return None if self.requests_limit is None else max(0, self.requests_limit - self.requests_used)

    @property
    def tokens_remaining(self) -> int | None:
        return None if self.tokens_limit is None else max(0, self.tokens_limit - self.tokens_used)


@dataclass(frozen=True)
class Reservation:
    scope: CounterScope
    # names the reservation in the store, so that every write of it is applied once
    request_id: str
    # the id of the window counted in, per limited period
    windows: Mapping[CapacityPeriod, str]
    tokens: int
    # the windows right after this reservation, for rate-limit headers without another read
    usage: tuple[WindowUsage, ...]
    # what the store must tidy up when it settles this reservation: marks of requests that never settled
    orphans: tuple[str, ...] = ()
    requests: ClassVar[int] = 1


class CapacityCounters(Protocol):
    def reserve(
        self, scope: CounterScope, limits: Sequence[WindowLimit], tokens: int, now: datetime, request_id: str
    ) -> Reservation:
        """Counts one request and `tokens` in every window of `limits`, all or none, once per `request_id`.
        Raises CapacityExceeded naming the first limit without room, in the order the module describes."""
        ...

    def release(self, reservation: Reservation) -> None:
        """Takes back a reservation whose request never reached the provider, in the windows that are
        still the reserved ones; once, and not after a reconcile."""
        ...

    def reconcile(self, reservation: Reservation, actual_tokens: int, now: datetime) -> None:
        """Replaces the reserved tokens with `actual_tokens` in the windows that are still the reserved
        ones (a window that has rolled over is left alone); once, and not after a release. This settles the
        reservation even when it counts no tokens."""
        ...

    def usage(self, scope: CounterScope, limits: Sequence[WindowLimit], now: datetime) -> list[WindowUsage]:
        """Each limited window's counts, in refusal order; a window that has rolled over reads as unused."""
        ...


# What follows is shared by every store, so that no two of them can count or refuse differently.


@dataclass(frozen=True)
class WindowCount:
    """What a store holds for one period: the window it last counted and that window's totals."""

    window_id: str
    requests: int
    tokens: int


@dataclass(frozen=True)
class WindowState:
    """A period as a request at some instant sees it: the window it counts in and what that window holds."""

    window: Window
    requests: int
    tokens: int
    # the window the store holds for this period, if any: the counted one, or an older one to reset
    stored_window_id: str | None

    @property
    def continues_stored(self) -> bool:
        return self.stored_window_id == self.window.id


def limits_for(entries: Sequence[CapacityEntry], dimension: CapacityDimension | None) -> list[WindowLimit]:
    """The enabled entries of one dimension (None: the connection's own windows) as limits."""
    return [
        WindowLimit(entry.period, entry.requests, entry.tokens)
        for entry in entries
        if entry.enabled and entry.dimension == dimension
    ]


def in_refusal_order(limits: Sequence[WindowLimit]) -> list[WindowLimit]:
    periods = [limit.period for limit in limits]
    if len(set(periods)) != len(periods):
        raise ValueError("give at most one limit per period")
    return sorted(limits, key=lambda limit: _PERIOD_RANK[limit.period])


def admissible_limits(limits: Sequence[WindowLimit], tokens: int, now: datetime) -> list[WindowLimit]:
    """`limits` in refusal order, after refusing a request that none of their windows could ever hold."""
    if tokens < 0:
        raise ValueError("tokens must not be negative")
    ordered = in_refusal_order(limits)
    for limit in ordered:
        refuse_if_full(limit, WindowState(current_window(limit.period, now), 0, 0, None), tokens, now)
    return ordered


def window_state(period: CapacityPeriod, stored: WindowCount | None, now: datetime) -> WindowState:
    stored_id = stored.window_id if stored else None
    window = counting_window(period, now, stored_id)
    if stored is not None and stored.window_id == window.id:
        return WindowState(window, stored.requests, stored.tokens, stored_id)
    return WindowState(window, 0, 0, stored_id)


def refuse_if_full(
    limit: WindowLimit, state: WindowState, tokens: int, now: datetime, seen: tuple[WindowUsage, ...] = ()
) -> None:
    """Raises CapacityExceeded when one more request with `tokens` does not fit the window; `seen` is every
    window of the scope as the store read them, for the refusal to carry."""
    if limit.requests is not None and state.requests + Reservation.requests > limit.requests:
        raise _exceeded(limit.period, "requests", limit.requests, state.window, now, seen)
    if limit.tokens is not None and state.tokens + tokens > limit.tokens:
        raise _exceeded(limit.period, "tokens", limit.tokens, state.window, now, seen)


def refuse_if_any_full(
    limits: Sequence[WindowLimit], states: Sequence[WindowState], tokens: int, now: datetime
) -> None:
    """Raises CapacityExceeded for the first window of `limits` (in refusal order) without room."""
    seen = tuple(usage_of(limit, state) for limit, state in zip(limits, states, strict=True))
    for limit, state in zip(limits, states, strict=True):
        refuse_if_full(limit, state, tokens, now, seen)


def usage_of(limit: WindowLimit, state: WindowState) -> WindowUsage:
    return WindowUsage(limit.period, state.requests, state.tokens, limit.requests, limit.tokens, state.window.end)


def open_windows(reservation: Reservation, now: datetime) -> dict[CapacityPeriod, str]:
    """The reserved windows that have not ended by `now`: the only ones worth reconciling."""
    return {
        period: window_id for period, window_id in reservation.windows.items() if not has_ended(period, window_id, now)
    }


def tightest(usages: Sequence[WindowUsage]) -> tuple[WindowUsage | None, WindowUsage | None]:
    """The windows with the least room left for requests and for tokens (ties: the one that resets
    soonest; lifetime last), for rate-limit headers. None where no window limits that kind."""
    return (
        _least_room(usages, lambda usage: usage.requests_remaining),
        _least_room(usages, lambda usage: usage.tokens_remaining),
    )


def _least_room(usages: Sequence[WindowUsage], remaining: Callable[[WindowUsage], int | None]) -> WindowUsage | None:
    candidates = [
        (room, usage.resets_at or _NEVER, usage) for usage in usages if (room := remaining(usage)) is not None
    ]
    return min(candidates, key=lambda candidate: candidate[:2])[2] if candidates else None


def _exceeded(
    period: CapacityPeriod, kind: LimitKind, limit: int, window: Window, now: datetime, seen: tuple[WindowUsage, ...]
) -> CapacityExceeded:
    if window.end is None:
        return CapacityExceeded(period, kind, limit, None, None, seen)
    return CapacityExceeded(period, kind, limit, math.ceil((window.end - now).total_seconds()), window.end, seen)
