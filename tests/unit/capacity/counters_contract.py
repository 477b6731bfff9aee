"""What every CapacityCounters must do, written once and run against the in-memory fake (unit tier) and
the DynamoDB adapter on moto (functional tier). A subclass supplies the `counters` fixture."""

import uuid
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmx.capacity.ledger import CapacityCounters, CapacityExceeded, CounterScope, WindowLimit, limits_for
from vmx.capacity.limits import CapacityEntry, CapacityPeriod
from vmx.capacity.windows import current_window, has_ended

MINUTE, HOUR, DAY, LIFETIME = CapacityPeriod.MINUTE, CapacityPeriod.HOUR, CapacityPeriod.DAY, CapacityPeriod.LIFETIME
# a Friday, mid-minute
NOW = datetime(2025, 3, 14, 12, 30, 15, tzinfo=UTC)
NEXT_MINUTE = datetime(2025, 3, 14, 12, 31, tzinfo=UTC)


def new_scope(source_ip: str | None = None) -> CounterScope:
    return CounterScope(f"conn-{uuid.uuid4().hex}", source_ip)


def at(hour: int, minute: int, second: float) -> datetime:
    return NOW.replace(hour=hour, minute=minute, second=0) + timedelta(seconds=second)


class CapacityCountersContract:
    @pytest.fixture
    def scope(self) -> CounterScope:
        return new_scope()

    def refusal(
        self, counters: CapacityCounters, scope: CounterScope, limits: list[WindowLimit], tokens: int, now: datetime
    ) -> CapacityExceeded:
        with pytest.raises(CapacityExceeded) as refused:
            counters.reserve(scope, limits, tokens, now, uuid4().hex)
        return refused.value

    def test_admits_exactly_the_limit(self, counters: CapacityCounters, scope: CounterScope) -> None:
        limits = [WindowLimit(MINUTE, 3, None)]
        for _ in range(3):
            counters.reserve(scope, limits, 10, NOW, uuid4().hex)

        refused = self.refusal(counters, scope, limits, 10, NOW)

        assert (refused.period, refused.limit_kind, refused.limit) == (MINUTE, "requests", 3)
        assert (refused.retry_after_seconds, refused.resets_at) == (45, NEXT_MINUTE)
        assert counters.usage(scope, limits, NOW)[0].requests_used == 3

    def test_refuses_tokens_that_do_not_fit_and_admits_those_that_do(
        self, counters: CapacityCounters, scope: CounterScope
    ) -> None:
        limits = [WindowLimit(MINUTE, None, 1000)]
        counters.reserve(scope, limits, 600, NOW, uuid4().hex)

        refused = self.refusal(counters, scope, limits, 500, NOW)
        counters.reserve(scope, limits, 400, NOW, uuid4().hex)

        assert (refused.period, refused.limit_kind, refused.limit, refused.retry_after_seconds) == (
            MINUTE,
            "tokens",
            1000,
            45,
        )
        [minute] = counters.usage(scope, limits, NOW)
        assert (minute.requests_used, minute.tokens_used, minute.tokens_remaining) == (2, 1000, 0)

    def test_a_reservation_larger_than_the_limit_is_refused_without_counting(
        self, counters: CapacityCounters, scope: CounterScope
    ) -> None:
        limits = [WindowLimit(MINUTE, 5, 1000)]

        refused = self.refusal(counters, scope, limits, 1001, NOW)

        assert (refused.limit_kind, refused.limit) == ("tokens", 1000)
        assert counters.usage(scope, limits, NOW)[0].requests_used == 0

    def test_reconciling_moves_the_token_count_both_ways(self, counters: CapacityCounters, scope: CounterScope) -> None:
        limits = [WindowLimit(MINUTE, None, 1000)]
        overestimated = counters.reserve(scope, limits, 500, NOW, uuid4().hex)
        counters.reconcile(overestimated, 200, NOW)
        assert counters.usage(scope, limits, NOW)[0].tokens_used == 200

        underestimated = counters.reserve(scope, limits, 300, NOW, uuid4().hex)
        counters.reconcile(underestimated, 900, NOW)

        assert counters.usage(scope, limits, NOW)[0].tokens_used == 1100
        assert self.refusal(counters, scope, limits, 0, NOW).limit_kind == "tokens"

    def test_the_count_starts_over_when_the_minute_rolls_over(
        self, counters: CapacityCounters, scope: CounterScope
    ) -> None:
        limits = [WindowLimit(MINUTE, 2, None)]
        last_second = at(12, 30, 59)
        counters.reserve(scope, limits, 0, last_second, uuid4().hex)
        counters.reserve(scope, limits, 0, last_second, uuid4().hex)
        assert self.refusal(counters, scope, limits, 0, last_second).retry_after_seconds == 1

        counters.reserve(scope, limits, 0, NEXT_MINUTE, uuid4().hex)

        [minute] = counters.usage(scope, limits, NEXT_MINUTE)
        assert (minute.requests_used, minute.resets_at) == (1, NEXT_MINUTE + timedelta(minutes=1))

    def test_a_changed_limit_applies_at_once_to_the_counts_so_far(
        self, counters: CapacityCounters, scope: CounterScope
    ) -> None:
        for _ in range(3):
            counters.reserve(scope, [WindowLimit(MINUTE, 5, None)], 300, NOW, uuid4().hex)

        lowered = self.refusal(counters, scope, [WindowLimit(MINUTE, 3, None)], 0, NOW)
        counters.reserve(scope, [WindowLimit(MINUTE, 4, None)], 0, NOW, uuid4().hex)
        raised_then_full = self.refusal(counters, scope, [WindowLimit(MINUTE, 4, None)], 0, NOW)
        # tokens were counted before any tokens limit existed
        tokens_added = self.refusal(counters, scope, [WindowLimit(MINUTE, 10, 1000)], 101, NOW)

        assert (lowered.limit, raised_then_full.limit) == (3, 4)
        assert (tokens_added.limit_kind, tokens_added.limit) == ("tokens", 1000)
        assert counters.usage(scope, [WindowLimit(MINUTE, 10, 1000)], NOW)[0].requests_used == 4

    def test_disabled_entries_do_not_limit(self, counters: CapacityCounters, scope: CounterScope) -> None:
        entries = [
            CapacityEntry(period=MINUTE, requests=1, enabled=False),
            CapacityEntry(period=HOUR, requests=5),
        ]
        limits = limits_for(entries, None)

        counters.reserve(scope, limits, 0, NOW, uuid4().hex)
        counters.reserve(scope, limits, 0, NOW, uuid4().hex)

        assert [(usage.period, usage.requests_used) for usage in counters.usage(scope, limits, NOW)] == [(HOUR, 2)]

    def test_names_the_shortest_full_period_and_requests_before_tokens(
        self, counters: CapacityCounters, scope: CounterScope
    ) -> None:
        limits = [WindowLimit(HOUR, None, 100), WindowLimit(MINUTE, 1, 100)]
        counters.reserve(scope, limits, 100, NOW, uuid4().hex)

        # every limit is full now
        first = self.refusal(counters, scope, limits, 1, NOW)
        # in the next minute only the hour's tokens are
        later = self.refusal(counters, scope, limits, 1, NEXT_MINUTE)

        assert (first.period, first.limit_kind) == (MINUTE, "requests")
        assert (later.period, later.limit_kind, later.resets_at) == (HOUR, "tokens", at(13, 0, 0))

    def test_each_client_ip_has_windows_of_its_own(self, counters: CapacityCounters) -> None:
        limits = [WindowLimit(MINUTE, 1, None)]
        first_ip, second_ip = new_scope("203.0.113.7"), new_scope("2001:db8::1")
        same_connection_other_ip = CounterScope(first_ip.connection_id, "198.51.100.2")
        connection_itself = CounterScope(first_ip.connection_id, None)
        counters.reserve(first_ip, limits, 0, NOW, uuid4().hex)

        refused = self.refusal(counters, first_ip, limits, 0, NOW)
        for other in (second_ip, same_connection_other_ip, connection_itself):
            counters.reserve(other, limits, 0, NOW, uuid4().hex)

        assert refused.period == MINUTE

    def test_release_takes_a_reservation_back(self, counters: CapacityCounters, scope: CounterScope) -> None:
        limits = [WindowLimit(MINUTE, 1, 100)]
        reservation = counters.reserve(scope, limits, 80, NOW, uuid4().hex)

        counters.release(reservation)

        [minute] = counters.usage(scope, limits, NOW)
        assert (minute.requests_used, minute.tokens_used) == (0, 0)
        counters.reserve(scope, limits, 100, NOW, uuid4().hex)

    def test_release_leaves_a_window_that_rolled_over_alone(
        self, counters: CapacityCounters, scope: CounterScope
    ) -> None:
        limits = [WindowLimit(MINUTE, 1, None), WindowLimit(HOUR, 10, None)]
        before = counters.reserve(scope, limits, 0, at(12, 30, 59), uuid4().hex)
        counters.reserve(scope, limits, 0, NEXT_MINUTE, uuid4().hex)

        counters.release(before)

        minute, hour = counters.usage(scope, limits, NEXT_MINUTE)
        assert (minute.requests_used, hour.requests_used) == (1, 1)

    def test_reconcile_leaves_a_window_that_rolled_over_alone(
        self, counters: CapacityCounters, scope: CounterScope
    ) -> None:
        limits = [WindowLimit(MINUTE, None, 1000), WindowLimit(HOUR, None, 1000)]
        reservation = counters.reserve(scope, limits, 100, at(12, 30, 50), uuid4().hex)

        counters.reconcile(reservation, 40, at(12, 31, 5))

        minute_then, hour_then = counters.usage(scope, limits, at(12, 30, 59))
        minute_now, hour_now = counters.usage(scope, limits, at(12, 31, 5))
        assert (minute_then.tokens_used, hour_then.tokens_used) == (100, 40)
        assert (minute_now.tokens_used, hour_now.tokens_used) == (0, 40)

    def test_lifetime_never_resets(self, counters: CapacityCounters, scope: CounterScope) -> None:
        limits = [WindowLimit(LIFETIME, 2, None)]
        counters.reserve(scope, limits, 0, NOW, uuid4().hex)
        counters.reserve(scope, limits, 0, NOW.replace(year=2027), uuid4().hex)

        refused = self.refusal(counters, scope, limits, 0, NOW.replace(year=2040))

        assert (refused.period, refused.retry_after_seconds, refused.resets_at) == (LIFETIME, None, None)
        assert counters.usage(scope, limits, NOW.replace(year=2050))[0].requests_used == 2

    def test_usage_reports_each_window(self, counters: CapacityCounters, scope: CounterScope) -> None:
        limits = [WindowLimit(DAY, 100, None), WindowLimit(MINUTE, 10, 1000)]
        counters.reserve(scope, limits, 150, NOW, uuid4().hex)
        reservation = counters.reserve(scope, limits, 150, NOW, uuid4().hex)

        minute, day = counters.usage(scope, limits, NOW)
        minute_later, day_later = counters.usage(scope, limits, NEXT_MINUTE)

        assert (minute.period, minute.requests_used, minute.requests_remaining) == (MINUTE, 2, 8)
        assert (minute.tokens_used, minute.tokens_remaining, minute.resets_at) == (300, 700, NEXT_MINUTE)
        assert (day.requests_used, day.requests_remaining, day.tokens_used, day.tokens_remaining) == (2, 98, 300, None)
        assert day.resets_at == datetime(2025, 3, 15, tzinfo=UTC)
        assert (minute_later.requests_used, day_later.requests_used) == (0, 2)
        # a reservation carries the same figures, so headers need no second read
        assert reservation.usage == (minute, day)

    def test_usage_of_a_scope_never_counted_is_zero(self, counters: CapacityCounters, scope: CounterScope) -> None:
        [hour] = counters.usage(scope, [WindowLimit(HOUR, 5, 50)], NOW)

        assert (hour.requests_used, hour.tokens_used, hour.requests_remaining, hour.tokens_remaining) == (0, 0, 5, 50)

    def test_without_limits_nothing_is_counted(self, counters: CapacityCounters, scope: CounterScope) -> None:
        reservation = counters.reserve(scope, [], 10**9, NOW, uuid4().hex)
        counters.reconcile(reservation, 5, NOW)
        counters.release(reservation)

        assert (dict(reservation.windows), reservation.usage) == ({}, ())
        assert counters.usage(scope, [], NOW) == []

    def test_a_request_whose_clock_lags_counts_in_the_newer_window(
        self, counters: CapacityCounters, scope: CounterScope
    ) -> None:
        limits = [WindowLimit(MINUTE, 1, None)]
        counters.reserve(scope, limits, 0, at(12, 31, 0.2), uuid4().hex)

        refused = self.refusal(counters, scope, limits, 0, at(12, 30, 59.9))

        assert refused.resets_at == at(12, 32, 0)

    def test_agrees_with_a_log_of_every_window(self, counters: CapacityCounters) -> None:
        # @given inside the test: the examples share the fixture (each takes a scope of its own), and
        # the contract's subclasses do not share one Hypothesis test
        @settings(max_examples=30, deadline=None)
        @given(limits=LIMIT_SETS, steps=STEPS)
        def agrees(limits: list[WindowLimit], steps: list[Step]) -> None:
            replay_against_a_log(counters, limits, steps)

        agrees()


LIMIT_SETS = st.lists(
    st.builds(
        WindowLimit,
        st.sampled_from([MINUTE, HOUR, LIFETIME]),
        st.none() | st.integers(1, 4),
        st.none() | st.integers(0, 300),
    ),
    max_size=3,
    unique_by=lambda limit: limit.period,
)
# seconds before the request, tokens reserved, then either a release (None) or the tokens used and how
# many seconds later they are reported
Step = tuple[int, int, tuple[int, int] | None]
STEPS = st.lists(
    st.tuples(st.integers(0, 50), st.integers(0, 120), st.none() | st.tuples(st.integers(0, 150), st.integers(0, 50))),
    max_size=15,
)


def replay_against_a_log(counters: CapacityCounters, limits: list[WindowLimit], steps: list[Step]) -> None:
    """A request is admitted exactly when every window, counted from a log that keeps all of them, has
    room; a refusal names the limit the module's order puts first."""
    scope = new_scope()
    ordered = sorted(limits, key=lambda limit: list(CapacityPeriod).index(limit.period))
    log: dict[tuple[CapacityPeriod, str], list[int]] = {}
    now = NOW
    for pause, tokens, settled in steps:
        now += timedelta(seconds=pause)
        windows = [current_window(limit.period, now) for limit in ordered]
        never_fits = [
            (limit.period, "tokens") for limit in ordered if limit.tokens is not None and tokens > limit.tokens
        ]
        full = []
        for limit, window in zip(ordered, windows, strict=True):
            requests_used, tokens_used = log.get((limit.period, window.id), [0, 0])
            if limit.requests is not None and requests_used + 1 > limit.requests:
                full.append((limit.period, "requests"))
            if limit.tokens is not None and tokens_used + tokens > limit.tokens:
                full.append((limit.period, "tokens"))
        try:
            reservation = counters.reserve(scope, limits, tokens, now, uuid4().hex)
        except CapacityExceeded as refused:
            assert (refused.period, refused.limit_kind) == (never_fits + full)[0]
            continue
        assert not full
        for window in windows:
            counts = log.setdefault((window.period, window.id), [0, 0])
            counts[0] += 1
            counts[1] += tokens
        if settled is None:
            counters.release(reservation)
            for window in windows:
                log[(window.period, window.id)][0] -= 1
                log[(window.period, window.id)][1] -= tokens
            continue
        actual, latency = settled
        now += timedelta(seconds=latency)
        counters.reconcile(reservation, actual, now)
        for window in windows:
            if not has_ended(window.period, window.id, now):
                log[(window.period, window.id)][1] += actual - tokens
    for usage in counters.usage(scope, limits, now):
        assert [usage.requests_used, usage.tokens_used] == log.get(
            (usage.period, current_window(usage.period, now).id), [0, 0]
        )
