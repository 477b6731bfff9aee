"""What every CapacityCounters must do with priority classes, run against the in-memory fake (unit tier) and the
DynamoDB adapter on moto (functional tier), beside counters_contract. A subclass supplies `counters`.

The reference model here is written from the rules in vmx.capacity.ledger's docstring, not from its code."""

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.capacity.counters_contract import NEXT_MINUTE, NOW, new_scope
from vmx.capacity.ledger import (
    CapacityCounters,
    CapacityExceeded,
    ClassUsage,
    CounterScope,
    Priority,
    WindowLimit,
)
from vmx.capacity.limits import CapacityPeriod, PriorityClass
from vmx.capacity.windows import current_window, has_ended

MINUTE, HOUR = CapacityPeriod.MINUTE, CapacityPeriod.HOUR
PRODUCTION = PriorityClass(name="production", guaranteed_percent=60)
BATCH = PriorityClass(name="batch", maximum_percent=40)
CLASSES = (PRODUCTION, BATCH)


def as_class(name: str, classes: tuple[PriorityClass, ...] = CLASSES) -> Priority:
    return Priority(classes, name)


def class_usage(counters: CapacityCounters, scope: CounterScope, limits: list[WindowLimit], name: str) -> ClassUsage:
    [window] = counters.usage(scope, limits, NOW, CLASSES)
    return next(usage for usage in window.classes if usage.name == name)


class PriorityClassesContract:
    @pytest.fixture
    def scope(self) -> CounterScope:
        return new_scope()

    def reserve(
        self,
        counters: CapacityCounters,
        scope: CounterScope,
        limits: list[WindowLimit],
        name: str,
        tokens: int = 0,
        times: int = 1,
    ) -> None:
        for _ in range(times):
            counters.reserve(scope, limits, tokens, NOW, uuid4().hex, as_class(name))

    def refusal(
        self, counters: CapacityCounters, scope: CounterScope, limits: list[WindowLimit], name: str, tokens: int = 0
    ) -> CapacityExceeded:
        with pytest.raises(CapacityExceeded) as refused:
            counters.reserve(scope, limits, tokens, NOW, uuid4().hex, as_class(name))
        return refused.value

    def test_a_maximum_share_holds_even_when_the_rest_is_idle(
        self, counters: CapacityCounters, scope: CounterScope
    ) -> None:
        limits = [WindowLimit(MINUTE, 10, None)]
        self.reserve(counters, scope, limits, "batch", times=4)

        refused = self.refusal(counters, scope, limits, "batch")

        assert (refused.priority_class, refused.share, refused.limit, refused.limit_kind) == (
            "batch",
            "maximum",
            4,
            "requests",
        )
        assert refused.retry_after_seconds == 45
        assert counters.usage(scope, limits, NOW)[0].requests_used == 4

    def test_the_guaranteed_share_stays_for_its_class_after_others_came_first(
        self, counters: CapacityCounters, scope: CounterScope
    ) -> None:
        limits = [WindowLimit(MINUTE, 10, None)]
        roomy_batch = (PRODUCTION, PriorityClass(name="batch"))
        for _ in range(4):
            counters.reserve(scope, limits, 0, NOW, uuid4().hex, Priority(roomy_batch, "batch"))

        with pytest.raises(CapacityExceeded) as refused:
            counters.reserve(scope, limits, 0, NOW, uuid4().hex, Priority(roomy_batch, "batch"))
        self.reserve(counters, scope, limits, "production", times=6)
        connection_full = self.refusal(counters, scope, limits, "production")

        # batch had all the shared part (40 %), never production's 60 %
        assert (refused.value.priority_class, refused.value.share, refused.value.limit) == ("batch", "shared", 4)
        assert (connection_full.priority_class, connection_full.limit) == (None, 10)

    def test_shared_capacity_goes_first_come_first_served(
        self, counters: CapacityCounters, scope: CounterScope
    ) -> None:
        limits = [WindowLimit(MINUTE, 10, None)]
        # 5 guaranteed to production, 1 to ops, 4 shared
        classes = (
            PriorityClass(name="production", guaranteed_percent=50),
            PriorityClass(name="ops", guaranteed_percent=10),
            PriorityClass(name="batch"),
        )
        for name in ["production"] * 7 + ["batch"] * 2:
            counters.reserve(scope, limits, 0, NOW, uuid4().hex, Priority(classes, name))

        # production came first to half the shared part; batch had the other half
        with pytest.raises(CapacityExceeded) as refused:
            counters.reserve(scope, limits, 0, NOW, uuid4().hex, Priority(classes, "batch"))
        counters.reserve(scope, limits, 0, NOW, uuid4().hex, Priority(classes, "ops"))

        assert (refused.value.priority_class, refused.value.share, refused.value.limit) == ("batch", "shared", 4)
        assert counters.usage(scope, limits, NOW)[0].requests_used == 10

    def test_tokens_are_split_between_the_guarantee_and_the_shared_part(
        self, counters: CapacityCounters, scope: CounterScope
    ) -> None:
        limits = [WindowLimit(MINUTE, None, 1000)]
        # 500 guaranteed to production, 100 to ops (unused here), 400 shared
        classes = (
            PriorityClass(name="production", guaranteed_percent=50),
            PriorityClass(name="ops", guaranteed_percent=10),
            PriorityClass(name="batch"),
        )
        counters.reserve(scope, limits, 700, NOW, uuid4().hex, Priority(classes, "production"))

        # 500 in production's guarantee, 200 of the shared 400: batch may have 200 more
        counters.reserve(scope, limits, 200, NOW, uuid4().hex, Priority(classes, "batch"))
        with pytest.raises(CapacityExceeded) as refused:
            counters.reserve(scope, limits, 1, NOW, uuid4().hex, Priority(classes, "batch"))

        assert (refused.value.share, refused.value.limit_kind, refused.value.limit) == ("shared", "tokens", 400)
        [window] = counters.usage(scope, limits, NOW, classes)
        production, ops, batch = window.classes
        assert (production.tokens_used, production.tokens_guaranteed, production.tokens_remaining) == (700, 500, 0)
        assert (ops.tokens_remaining, batch.tokens_remaining, window.tokens_remaining) == (100, 0, 100)

    def test_a_release_gives_back_both_parts(self, counters: CapacityCounters, scope: CounterScope) -> None:
        limits = [WindowLimit(MINUTE, None, 1000)]
        reservation = counters.reserve(scope, limits, 700, NOW, uuid4().hex, as_class("production"))

        counters.release(reservation)

        self.reserve(counters, scope, limits, "batch", tokens=400)
        self.reserve(counters, scope, limits, "production", tokens=600)
        [window] = counters.usage(scope, limits, NOW, CLASSES)
        assert (window.tokens_used, [usage.tokens_used for usage in window.classes]) == (1000, [600, 400])

    def test_a_reconcile_gives_back_the_shared_part_first(
        self, counters: CapacityCounters, scope: CounterScope
    ) -> None:
        limits = [WindowLimit(MINUTE, None, 1000)]
        reservation = counters.reserve(scope, limits, 700, NOW, uuid4().hex, as_class("production"))

        counters.reconcile(reservation, 500, NOW)

        # 100 back to the shared part, 100 to production's guarantee: batch has all 400 of the shared part
        self.reserve(counters, scope, limits, "batch", tokens=400)
        self.reserve(counters, scope, limits, "production", tokens=100)
        assert self.refusal(counters, scope, limits, "production", tokens=1).priority_class is None

    def test_an_answer_larger_than_its_reservation_counts_against_its_own_class(
        self, counters: CapacityCounters, scope: CounterScope
    ) -> None:
        limits = [WindowLimit(MINUTE, None, 1000)]
        reservation = counters.reserve(scope, limits, 100, NOW, uuid4().hex, as_class("production"))

        counters.reconcile(reservation, 650, NOW)

        # production ran 50 past its guarantee; the shared part is still whole for batch
        self.reserve(counters, scope, limits, "batch", tokens=350)
        production = class_usage(counters, scope, limits, "production")
        assert (production.tokens_used, production.tokens_remaining) == (650, 0)

    def test_what_no_window_could_hold_for_the_class_is_refused_without_counting(
        self, counters: CapacityCounters, scope: CounterScope
    ) -> None:
        limits = [WindowLimit(MINUTE, 10, 1000)]

        refused = self.refusal(counters, scope, limits, "batch", tokens=401)

        assert (refused.share, refused.limit_kind, refused.limit) == ("maximum", "tokens", 400)
        assert counters.usage(scope, limits, NOW)[0].requests_used == 0

    def test_usage_tells_each_class_its_shares_and_room(self, counters: CapacityCounters, scope: CounterScope) -> None:
        limits = [WindowLimit(MINUTE, 10, None)]
        self.reserve(counters, scope, limits, "production", times=7)
        self.reserve(counters, scope, limits, "batch", times=1)

        [window] = counters.usage(scope, limits, NOW, CLASSES)

        production, batch = window.classes
        assert (production.requests_used, production.requests_guaranteed, production.requests_maximum) == (7, 6, 10)
        assert (batch.requests_used, batch.requests_guaranteed, batch.requests_maximum) == (1, 0, 4)
        assert (production.requests_remaining, batch.requests_remaining) == (2, 2)
        assert (production.tokens_guaranteed, production.tokens_remaining) == (None, None)
        seen = window.seen_by("batch")
        assert (seen.requests_limit, seen.requests_remaining) == (4, 2)

    def test_class_counts_start_over_with_the_window(self, counters: CapacityCounters, scope: CounterScope) -> None:
        limits = [WindowLimit(MINUTE, 10, None)]
        self.reserve(counters, scope, limits, "batch", times=4)

        counters.reserve(scope, limits, 0, NEXT_MINUTE, uuid4().hex, as_class("batch"))

        [window] = counters.usage(scope, limits, NEXT_MINUTE, CLASSES)
        assert [usage.requests_used for usage in window.classes] == [0, 1]

    def test_a_class_removed_and_added_again_later_starts_from_zero(
        self, counters: CapacityCounters, scope: CounterScope
    ) -> None:
        limits = [WindowLimit(HOUR, 10, None)]
        self.reserve(counters, scope, limits, "batch", times=4)
        later = NOW + timedelta(hours=1)
        counters.reserve(scope, limits, 0, later, uuid4().hex)

        counters.reserve(scope, limits, 0, later, uuid4().hex, as_class("batch"))

        [window] = counters.usage(scope, limits, later, CLASSES)
        assert (window.requests_used, [usage.requests_used for usage in window.classes]) == (2, [0, 1])

    def test_agrees_with_a_reference_model(self, counters: CapacityCounters) -> None:
        @settings(max_examples=40, deadline=None)
        @given(classes=CLASS_SETS, limits=LIMIT_SETS, steps=STEPS)
        def agrees(classes: tuple[PriorityClass, ...], limits: list[WindowLimit], steps: list["Step"]) -> None:
            replay_against_a_model(counters, classes, limits, steps)

        agrees()


def _class_sets(draw: st.DrawFn) -> tuple[PriorityClass, ...]:
    count = draw(st.integers(1, 3))
    left = 100
    classes = []
    for index in range(count):
        guaranteed = draw(st.integers(0, left))
        left -= guaranteed
        maximum = draw(st.integers(guaranteed, 100))
        classes.append(PriorityClass(name=f"c{index}", guaranteed_percent=guaranteed, maximum_percent=maximum))
    return tuple(classes)


CLASS_SETS = st.composite(_class_sets)()
LIMIT_SETS = st.lists(
    st.builds(
        WindowLimit,
        st.sampled_from([MINUTE, HOUR]),
        st.none() | st.integers(1, 8),
        st.none() | st.integers(0, 400),
    ),
    min_size=1,
    max_size=2,
    unique_by=lambda limit: limit.period,
)
# the class (by index, modulo their number), seconds before the request, tokens reserved, then a release
# (None) or the tokens used and how many seconds later they are reported, or nothing yet (-1: still open)
Step = tuple[int, int, int, tuple[int, int] | None]
STEPS = st.lists(
    st.tuples(
        st.integers(0, 2),
        st.integers(0, 30),
        st.integers(0, 150),
        st.none() | st.tuples(st.integers(0, 200), st.integers(0, 40)),
    ),
    max_size=20,
)


@dataclass
class _Counts:
    used: int = 0
    guaranteed: int = 0


@dataclass
class _Window:
    """One window of one kind (requests or tokens), as the rules describe it."""

    total: int = 0
    shared: int = 0
    classes: dict[str, _Counts] = field(default_factory=dict)


def replay_against_a_model(
    counters: CapacityCounters, classes: tuple[PriorityClass, ...], limits: list[WindowLimit], steps: list[Step]
) -> None:
    scope = CounterScope(f"conn-{uuid.uuid4().hex}", None)
    ordered = sorted(limits, key=lambda limit: list(CapacityPeriod).index(limit.period))
    model: dict[tuple[CapacityPeriod, str, str], _Window] = {}
    now = NOW

    def window(period: CapacityPeriod, window_id: str, kind: str) -> _Window:
        return model.setdefault((period, window_id, kind), _Window())

    def shares(priority_class: PriorityClass, limit: int) -> tuple[int, int, int]:
        shared = limit - sum(each.guaranteed_percent * limit // 100 for each in classes)
        return priority_class.guaranteed_percent * limit // 100, priority_class.maximum_percent * limit // 100, shared

    for class_index, pause, tokens, settled in steps:
        now += timedelta(seconds=pause)
        caller = classes[class_index % len(classes)]
        kinds = [
            (limit, kind, most, amount)
            for limit in ordered
            for kind, most, amount in (("requests", limit.requests, 1), ("tokens", limit.tokens, tokens))
        ]
        never: list[tuple[CapacityPeriod, str, str | None]] = []
        full: list[tuple[CapacityPeriod, str, str | None]] = []
        splits = {}
        for limit, kind, most, amount in kinds:
            counted = window(limit.period, current_window(limit.period, now).id, kind)
            mine = counted.classes.setdefault(caller.name, _Counts())
            guaranteed = max(0, min(amount, (shares(caller, most)[0] - mine.guaranteed) if most is not None else 0))
            splits[(limit.period, kind)] = guaranteed
            if most is None:
                continue
            own, maximum, shared = shares(caller, most)
            if amount > most:
                never.append((limit.period, kind, None))
            elif amount > maximum:
                never.append((limit.period, kind, "maximum"))
            elif amount - min(amount, own) > shared:
                never.append((limit.period, kind, "shared"))
            if counted.total + amount > most:
                full.append((limit.period, kind, None))
            elif mine.used + amount > maximum:
                full.append((limit.period, kind, "maximum"))
            elif amount - guaranteed and counted.shared + amount - guaranteed > shared:
                full.append((limit.period, kind, "shared"))
        try:
            reservation = counters.reserve(scope, limits, tokens, now, uuid4().hex, Priority(classes, caller.name))
        except CapacityExceeded as refused:
            assert (refused.period, refused.limit_kind, refused.share) == (never + full)[0]
            continue
        assert not never and not full
        for limit, kind, _, amount in kinds:
            counted = window(limit.period, current_window(limit.period, now).id, kind)
            guaranteed = splits[(limit.period, kind)]
            counted.total += amount
            counted.shared += amount - guaranteed
            counted.classes[caller.name].used += amount
            counted.classes[caller.name].guaranteed += guaranteed
        windows = {limit.period: current_window(limit.period, now).id for limit in ordered}
        if settled is None:
            counters.release(reservation)
            for limit, kind, _, amount in kinds:
                counted = window(limit.period, windows[limit.period], kind)
                guaranteed = splits[(limit.period, kind)]
                counted.total -= amount
                counted.shared -= amount - guaranteed
                counted.classes[caller.name].used -= amount
                counted.classes[caller.name].guaranteed -= guaranteed
            continue
        actual, latency = settled
        now += timedelta(seconds=latency)
        counters.reconcile(reservation, actual, now)
        for limit in ordered:
            if has_ended(limit.period, windows[limit.period], now):
                continue
            counted = window(limit.period, windows[limit.period], "tokens")
            mine = counted.classes[caller.name]
            difference = actual - tokens
            from_shared = 0 if difference >= 0 else min(-difference, tokens - splits[(limit.period, "tokens")])
            counted.total += difference
            counted.shared -= from_shared
            mine.used += difference
            mine.guaranteed += difference + from_shared
    for usage in counters.usage(scope, limits, now, classes):
        window_id = current_window(usage.period, now).id
        requests, tokens_window = window(usage.period, window_id, "requests"), window(usage.period, window_id, "tokens")
        assert (usage.requests_used, usage.tokens_used) == (requests.total, tokens_window.total)
        for class_usage_now in usage.classes:
            assert (class_usage_now.requests_used, class_usage_now.tokens_used) == (
                requests.classes.get(class_usage_now.name, _Counts()).used,
                tokens_window.classes.get(class_usage_now.name, _Counts()).used,
            )
