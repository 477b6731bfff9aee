"""Capacity counters: the port every store implements, and the rules they share.

A request reserves one request and its estimated tokens in every limited window of a scope (a connection,
or a connection and client IP) before the provider is called, and is refused when any window lacks room.
Afterwards the estimate is reconciled with the tokens the provider reported. Limits are passed in with
each call and are not stored with the counts, so a changed limit applies to the next request and counts
carry on. A period starts counting when it is first limited.

Every write is safe to send twice: a reservation is named by its request id, and a store applies the
reservation, its release and its reconcile once each, however often they are sent (botocore's retries of
a write whose answer was lost included); a release or reconcile after the other, or twice, is a no-op.

Priority classes (vmx.capacity.limits.Prioritization) divide a connection's own windows. Of a limit L, class c
is guaranteed G_c = floor(g_c·L/100) and never passes M_c = floor(m_c·L/100); S = L - ΣG is shared, first come,
first served. Besides the window's totals, a store counts per class its use (bounded by M_c) and the part of it
counted in its guarantee (bounded by G_c), and per window the shared use (bounded by S). A reservation counts
in its class's guarantee what room is left there and the rest in the shared part; since only class c counts in
G_c, no other class can take it. The reservation keeps that split, so that a release gives back exactly what it
took; a reconcile gives back from the shared part first, and counts an answer larger than its reservation in
the class's guaranteed part, so that its class has less room, not the others; the window's total counts it too,
and the connection's limit is kept over every class: an overrun near the limit can leave another class short
of its guarantee until the window resets, never let the connection pass its limit. Class counts are kept per
window: a window that rolls over starts them from zero; changed shares apply at once to the counts so far (a
class removed and added again in one window finds its counts).

Refusal order: limits that could never hold this request (a requests limit of 0, or a tokens limit below
the reservation; for a class, below its maximum or its guarantee and the shared part together) come first,
then the current counts; within each, shorter periods come before longer ones (minute, hour, day, week, month,
lifetime) and, in one period, requests before tokens, and for one of them the window's limit, then the class's
maximum, then its guarantee and the shared part. The refusal names the first limit in that order that lacks
room.
"""

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import astuple, dataclass, field, replace
from datetime import UTC, datetime
from typing import ClassVar, Literal, Protocol

from vmx.capacity.limits import CapacityDimension, CapacityEntry, CapacityPeriod, PriorityClass
from vmx.capacity.windows import Window, counting_window, current_window, has_ended

LimitKind = Literal["requests", "tokens"]
# which share of a class had no room: its maximum, or its guarantee and the shared part together
ClassShare = Literal["maximum", "shared"]

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
class Shares:
    """A class's shares of one limit."""

    guaranteed: int
    maximum: int
    # what no class is guaranteed: shared by every class
    shared: int

    @property
    def reachable(self) -> int:
        """The most the class can use in the window: its maximum, or less where others' guarantees leave less."""
        return min(self.maximum, self.guaranteed + self.shared)


def shares_of(classes: Sequence[PriorityClass], name: str, limit: int) -> Shares:
    def share(percent: int) -> int:
        return percent * limit // 100

    own = next(each for each in classes if each.name == name)
    shared = limit - sum(share(each.guaranteed_percent) for each in classes)
    return Shares(share(own.guaranteed_percent), share(own.maximum_percent), shared)


@dataclass(frozen=True)
class Priority:
    """The priority classes of a connection and the one a request counts in."""

    classes: tuple[PriorityClass, ...]
    caller: str

    def shares(self, limit: int) -> Shares:
        return shares_of(self.classes, self.caller, limit)


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
        priority_class: str | None = None,
        share: ClassShare | None = None,
    ):
        """With a `priority_class`, `limit` is the class's `share` of the window's limit: its maximum, or (shared)
        its guarantee plus the shared part, all it could use with no other class using the shared part."""
        whose = f"priority class '{priority_class}' share ({share}) of " if priority_class else ""
        super().__init__(f"the {whose}{period} {limit_kind} limit of {limit} leaves no room for this request")
        self.period = period
        self.limit_kind = limit_kind
        self.limit = limit
        self.retry_after_seconds = retry_after_seconds
        self.resets_at = resets_at
        self.usage = usage
        self.priority_class = priority_class
        self.share = share


@dataclass(frozen=True)
class ClassUsage:
    """One priority class in one window; guaranteed, maximum (what it can reach) and remaining are None where
    the window does not limit that kind."""

    name: str
    requests_used: int
    tokens_used: int
    requests_guaranteed: int | None
    tokens_guaranteed: int | None
    requests_maximum: int | None
    tokens_maximum: int | None
    requests_remaining: int | None
    tokens_remaining: int | None


@dataclass(frozen=True)
class WindowUsage:
    period: CapacityPeriod
    requests_used: int
    tokens_used: int
    requests_limit: int | None
    tokens_limit: int | None
    # None for lifetime
    resets_at: datetime | None
    # per priority class, when the scope has classes
    classes: tuple[ClassUsage, ...] = ()

    @property
    def requests_remaining(self) -> int | None:
        return None if self.requests_limit is None else max(0, self.requests_limit - self.requests_used)

    @property
    def tokens_remaining(self) -> int | None:
        return None if self.tokens_limit is None else max(0, self.tokens_limit - self.tokens_used)

    def seen_by(self, priority_class: str | None) -> "WindowUsage":
        """The window as one class sees it, for its rate-limit headers: limited to what the class can reach,
        and used by everything that keeps it from that (its own use, and the shared part others took)."""
        usage = next((each for each in self.classes if each.name == priority_class), None)
        if usage is None:
            return self
        return replace(
            self,
            requests_limit=usage.requests_maximum,
            requests_used=_unavailable(usage.requests_maximum, usage.requests_remaining, self.requests_used),
            tokens_limit=usage.tokens_maximum,
            tokens_used=_unavailable(usage.tokens_maximum, usage.tokens_remaining, self.tokens_used),
            classes=(),
        )


def _unavailable(maximum: int | None, remaining: int | None, used: int) -> int:
    return used if maximum is None or remaining is None else maximum - remaining


@dataclass(frozen=True)
class Split:
    """What a reservation counted in its class's guarantee in one window; the rest it counted as shared."""

    guaranteed_requests: int = 0
    guaranteed_tokens: int = 0


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
    # the class counted in, with its split per window; None where the scope has no classes
    priority_class: str | None = None
    splits: Mapping[CapacityPeriod, Split] = field(default_factory=dict)
    requests: ClassVar[int] = 1


class CapacityCounters(Protocol):
    def reserve(
        self,
        scope: CounterScope,
        limits: Sequence[WindowLimit],
        tokens: int,
        now: datetime,
        request_id: str,
        priority: Priority | None = None,
    ) -> Reservation:
        """Counts one request and `tokens` in every window of `limits`, all or none, once per `request_id`, in
        `priority`'s class when given. Raises CapacityExceeded naming the first limit without room, in the order
        the module describes."""
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

    def usage(
        self,
        scope: CounterScope,
        limits: Sequence[WindowLimit],
        now: datetime,
        classes: Sequence[PriorityClass] = (),
    ) -> list[WindowUsage]:
        """Each limited window's counts (per class of `classes` too), in refusal order; a window that has
        rolled over reads as unused."""
        ...


# What follows is shared by every store, so that no two of them can count or refuse differently.


@dataclass(frozen=True)
class ClassCount:
    """One class's counts in one window: its use, and the part of it counted in its guarantee."""

    requests: int = 0
    tokens: int = 0
    guaranteed_requests: int = 0
    guaranteed_tokens: int = 0


@dataclass(frozen=True)
class WindowCount:
    """What a store holds for one period: the window it last counted and that window's totals."""

    window_id: str
    requests: int
    tokens: int
    shared_requests: int = 0
    shared_tokens: int = 0
    classes: Mapping[str, ClassCount] = field(default_factory=dict)


@dataclass(frozen=True)
class WindowState:
    """A period as a request at some instant sees it: the window it counts in and what that window holds."""

    window: Window
    requests: int
    tokens: int
    # the window the store holds for this period, if any: the counted one, or an older one to reset
    stored_window_id: str | None
    shared_requests: int = 0
    shared_tokens: int = 0
    classes: Mapping[str, ClassCount] = field(default_factory=dict)

    @property
    def continues_stored(self) -> bool:
        return self.stored_window_id == self.window.id

    def of_class(self, name: str) -> ClassCount:
        return self.classes.get(name) or ClassCount()


@dataclass(frozen=True)
class Delta:
    """What a settling write adds to one window: its totals and, for a class, its counts and the shared ones."""

    requests: int
    tokens: int
    guaranteed_requests: int = 0
    guaranteed_tokens: int = 0
    shared_requests: int = 0
    shared_tokens: int = 0

    def __bool__(self) -> bool:
        return any(astuple(self))

    def __neg__(self) -> "Delta":
        return Delta(*(-count for count in astuple(self)))


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


def admissible_limits(
    limits: Sequence[WindowLimit], tokens: int, now: datetime, priority: Priority | None = None
) -> list[WindowLimit]:
    """`limits` in refusal order, after refusing a request that none of their windows could ever hold."""
    if tokens < 0:
        raise ValueError("tokens must not be negative")
    ordered = in_refusal_order(limits)
    for limit in ordered:
        refuse_if_full(limit, WindowState(current_window(limit.period, now), 0, 0, None), tokens, now, priority)
    return ordered


def window_state(period: CapacityPeriod, stored: WindowCount | None, now: datetime) -> WindowState:
    stored_id = stored.window_id if stored else None
    window = counting_window(period, now, stored_id)
    if stored is not None and stored.window_id == window.id:
        return WindowState(
            window,
            stored.requests,
            stored.tokens,
            stored_id,
            stored.shared_requests,
            stored.shared_tokens,
            stored.classes,
        )
    return WindowState(window, 0, 0, stored_id)


def refuse_if_full(
    limit: WindowLimit,
    state: WindowState,
    tokens: int,
    now: datetime,
    priority: Priority | None = None,
    seen: tuple[WindowUsage, ...] = (),
) -> None:
    """Raises CapacityExceeded when one more request with `tokens` (in `priority`'s class) does not fit the
    window; `seen` is every window of the scope as the store read them, for the refusal to carry."""
    counted = state.of_class(priority.caller) if priority else ClassCount()
    kinds: tuple[tuple[LimitKind, int | None, int, int, int, int, int], ...] = (
        (
            "requests",
            limit.requests,
            Reservation.requests,
            state.requests,
            counted.requests,
            counted.guaranteed_requests,
            state.shared_requests,
        ),
        ("tokens", limit.tokens, tokens, state.tokens, counted.tokens, counted.guaranteed_tokens, state.shared_tokens),
    )
    for kind, most, amount, used, class_used, guaranteed_used, shared_used in kinds:
        if most is None:
            continue
        if used + amount > most:
            raise _exceeded(limit.period, kind, most, state.window, now, seen)
        if priority is None:
            continue
        shares = priority.shares(most)
        if class_used + amount > shares.maximum:
            raise _exceeded(limit.period, kind, shares.maximum, state.window, now, seen, priority.caller, "maximum")
        beyond_guarantee = amount - _within_guarantee(shares, guaranteed_used, amount)
        if beyond_guarantee and shared_used + beyond_guarantee > shares.shared:
            open_to_it = shares.guaranteed + shares.shared
            raise _exceeded(limit.period, kind, open_to_it, state.window, now, seen, priority.caller, "shared")


def refuse_if_any_full(
    limits: Sequence[WindowLimit],
    states: Sequence[WindowState],
    tokens: int,
    now: datetime,
    priority: Priority | None = None,
) -> None:
    """Raises CapacityExceeded for the first window of `limits` (in refusal order) without room."""
    classes = priority.classes if priority else ()
    seen = tuple(usage_of(limit, state, classes) for limit, state in zip(limits, states, strict=True))
    for limit, state in zip(limits, states, strict=True):
        refuse_if_full(limit, state, tokens, now, priority, seen)


def split_of(limit: WindowLimit, state: WindowState, tokens: int, priority: Priority) -> Split:
    """How much of a reservation its class's guarantee takes in this window (all it has room for)."""
    counted = state.of_class(priority.caller)

    def within(most: int | None, guaranteed_used: int, amount: int) -> int:
        return 0 if most is None else _within_guarantee(priority.shares(most), guaranteed_used, amount)

    return Split(
        within(limit.requests, counted.guaranteed_requests, Reservation.requests),
        within(limit.tokens, counted.guaranteed_tokens, tokens),
    )


def _within_guarantee(shares: Shares, guaranteed_used: int, amount: int) -> int:
    return max(0, min(amount, shares.guaranteed - guaranteed_used))


def reserved_delta(reservation: Reservation, period: CapacityPeriod) -> Delta:
    """What a reservation added to one window: the negation of its release."""
    if reservation.priority_class is None:
        return Delta(Reservation.requests, reservation.tokens)
    return split_delta(reservation.tokens, reservation.splits.get(period, Split()))


def split_delta(tokens: int, split: Split) -> Delta:
    """What a reservation of `tokens` in a class adds to a window, split as `split` says."""
    return Delta(
        Reservation.requests,
        tokens,
        split.guaranteed_requests,
        split.guaranteed_tokens,
        Reservation.requests - split.guaranteed_requests,
        tokens - split.guaranteed_tokens,
    )


def release_delta(reservation: Reservation, period: CapacityPeriod) -> Delta:
    return -reserved_delta(reservation, period)


def reconcile_delta(reservation: Reservation, period: CapacityPeriod, actual_tokens: int) -> Delta:
    """Tokens given back come from the shared part first; tokens beyond the reservation count in the class's
    guaranteed part, so that only the class that ran over has less room for it."""
    difference = actual_tokens - reservation.tokens
    if reservation.priority_class is None or difference >= 0:
        return Delta(0, difference, guaranteed_tokens=difference if reservation.priority_class else 0)
    reserved = reserved_delta(reservation, period)
    from_shared = min(-difference, reserved.shared_tokens)
    return Delta(0, difference, guaranteed_tokens=difference + from_shared, shared_tokens=-from_shared)


def counted(count: WindowCount, priority_class: str | None, delta: Delta) -> WindowCount:
    """`count` with `delta` added, in `priority_class` when it has one."""
    if priority_class is None:
        return replace(count, requests=count.requests + delta.requests, tokens=count.tokens + delta.tokens)
    before = count.classes.get(priority_class) or ClassCount()
    after = ClassCount(
        before.requests + delta.requests,
        before.tokens + delta.tokens,
        before.guaranteed_requests + delta.guaranteed_requests,
        before.guaranteed_tokens + delta.guaranteed_tokens,
    )
    return WindowCount(
        count.window_id,
        count.requests + delta.requests,
        count.tokens + delta.tokens,
        count.shared_requests + delta.shared_requests,
        count.shared_tokens + delta.shared_tokens,
        {**count.classes, priority_class: after},
    )


def usage_of(limit: WindowLimit, state: WindowState, classes: Sequence[PriorityClass] = ()) -> WindowUsage:
    return WindowUsage(
        limit.period,
        state.requests,
        state.tokens,
        limit.requests,
        limit.tokens,
        state.window.end,
        tuple(_class_usage(limit, state, classes, each.name) for each in classes),
    )


def _class_usage(limit: WindowLimit, state: WindowState, classes: Sequence[PriorityClass], name: str) -> ClassUsage:
    counted = state.of_class(name)

    def shares(most: int | None) -> Shares | None:
        return None if most is None else shares_of(classes, name, most)

    def remaining(
        most: int | None, share: Shares | None, used: int, class_used: int, guaranteed_used: int, shared_used: int
    ) -> int | None:
        # the least of: what its maximum leaves, what its guarantee and the shared part leave, what the limit leaves
        if most is None or share is None:
            return None
        within = max(0, share.guaranteed - guaranteed_used) + max(0, share.shared - shared_used)
        return max(0, min(share.maximum - class_used, within, most - used))

    requests, tokens = shares(limit.requests), shares(limit.tokens)
    return ClassUsage(
        name=name,
        requests_used=counted.requests,
        tokens_used=counted.tokens,
        requests_guaranteed=requests.guaranteed if requests else None,
        tokens_guaranteed=tokens.guaranteed if tokens else None,
        requests_maximum=requests.reachable if requests else None,
        tokens_maximum=tokens.reachable if tokens else None,
        requests_remaining=remaining(
            limit.requests,
            requests,
            state.requests,
            counted.requests,
            counted.guaranteed_requests,
            state.shared_requests,
        ),
        tokens_remaining=remaining(
            limit.tokens, tokens, state.tokens, counted.tokens, counted.guaranteed_tokens, state.shared_tokens
        ),
    )


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
    period: CapacityPeriod,
    kind: LimitKind,
    limit: int,
    window: Window,
    now: datetime,
    seen: tuple[WindowUsage, ...],
    priority_class: str | None = None,
    share: ClassShare | None = None,
) -> CapacityExceeded:
    retry_after = None if window.end is None else math.ceil((window.end - now).total_seconds())
    return CapacityExceeded(period, kind, limit, retry_after, window.end, seen, priority_class, share)
