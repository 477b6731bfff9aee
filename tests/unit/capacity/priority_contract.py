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
    Reservation,
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

    @pytest.mark.parametrize(("requests", "tokens"), [(True, False), (False, True)])
    def test_with_every_share_guaranteed_a_class_never_takes_anothers_guarantee(
        self, counters: CapacityCounters, scope: CounterScope, requests: bool, tokens: bool
    ) -> None:
        limits = [WindowLimit(MINUTE, 10 if requests else None, 1000 if tokens else None)]
        # nothing is shared: production may use all, but only what batch leaves of its 40 %
        classes = (
            PriorityClass(name="production", guaranteed_percent=60),
            PriorityClass(name="batch", guaranteed_percent=40),
        )
        amount = 100 if tokens else 0
        for _ in range(6):
            counters.reserve(scope, limits, amount, NOW, uuid4().hex, Priority(classes, "production"))

        with pytest.raises(CapacityExceeded) as refused:
            counters.reserve(scope, limits, amount, NOW, uuid4().hex, Priority(classes, "production"))
        for _ in range(4):
            counters.reserve(scope, limits, amount, NOW, uuid4().hex, Priority(classes, "batch"))

        assert (refused.value.priority_class, refused.value.share) == ("production", "shared")
        assert refused.value.limit == (600 if tokens else 6)

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

    def test_changed_shares_apply_at_once_to_the_counts_so_far(
        self, counters: CapacityCounters, scope: CounterScope
    ) -> None:
        limits = [WindowLimit(MINUTE, 10, None)]
        self.reserve(counters, scope, limits, "batch", times=4)
        # production now guaranteed 4 of 10, batch allowed 6
        wider = (
            PriorityClass(name="production", guaranteed_percent=40),
            PriorityClass(name="batch", maximum_percent=60),
        )

        for _ in range(2):
            counters.reserve(scope, limits, 0, NOW, uuid4().hex, Priority(wider, "batch"))
        with pytest.raises(CapacityExceeded) as refused:
            counters.reserve(scope, limits, 0, NOW, uuid4().hex, Priority(wider, "batch"))

        # batch's 4 still count: 2 more reach its new maximum
        assert (refused.value.priority_class, refused.value.share, refused.value.limit) == ("batch", "maximum", 6)
        [window] = counters.usage(scope, limits, NOW, wider)
        assert [usage.requests_used for usage in window.classes] == [0, 6]

    def test_agrees_with_a_reference_model(self, counters: CapacityCounters) -> None:
        @settings(max_examples=150, deadline=None)
        @given(classes=CLASS_SETS, limits=LIMIT_SETS, steps=STEPS)
        def agrees(classes: tuple[PriorityClass, ...], limits: list[WindowLimit], steps: list["Step"]) -> None:
            replay_against_a_model(counters, classes, limits, steps)

        agrees()


def _class_sets(draw: st.DrawFn) -> tuple[PriorityClass, ...]:
    """One to three classes, mostly more than one; often the last takes every percent left, so that nothing is
    shared."""
    count = draw(st.sampled_from([1, 2, 2, 3, 3]))
    left = 100
    classes = []
    for index in range(count):
        last = index == count - 1
        guaranteed = left if last and draw(st.booleans()) else draw(st.integers(0, left))
        left -= guaranteed
        maximum = draw(st.integers(guaranteed, 100))
        classes.append(PriorityClass(name=f"c{index}", guaranteed_percent=guaranteed, maximum_percent=maximum))
    return tuple(classes)


CLASS_SETS = st.composite(_class_sets)()
LIMIT_SETS = st.lists(
    st.builds(
        WindowLimit,
        st.sampled_from([MINUTE, HOUR]),
        st.none() | st.integers(1, 6),
        st.none() | st.integers(0, 300),
    ),
    min_size=1,
    max_size=2,
    unique_by=lambda limit: limit.period,
)


@dataclass(frozen=True)
class Reserve:
    class_index: int
    pause: int
    tokens: int


@dataclass(frozen=True)
class Settle:
    """Settles one of the reservations still open (by index, modulo their number): a release (None) or a
    reconcile with the tokens used."""

    open_index: int
    pause: int
    actual_tokens: int | None


Step = Reserve | Settle
# pauses mostly none, so that windows fill before they roll over; reservations twice as likely as settlements
RESERVES = st.builds(Reserve, st.integers(0, 2), st.sampled_from([0, 0, 0, 5, 30]), st.integers(0, 150))
SETTLES = st.builds(Settle, st.integers(0, 5), st.sampled_from([0, 0, 5, 30]), st.none() | st.integers(0, 200))
STEPS = st.lists(RESERVES | RESERVES | SETTLES, max_size=25)


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


@dataclass(frozen=True)
class _Open:
    reservation: Reservation
    caller: str
    tokens: int
    windows: dict[CapacityPeriod, str]
    # per (period, kind): what it counted in its class's guarantee
    guaranteed: dict[tuple[CapacityPeriod, str], int]


def replay_against_a_model(
    counters: CapacityCounters, classes: tuple[PriorityClass, ...], limits: list[WindowLimit], steps: list[Step]
) -> None:
    """Reservations and their settlements in any order, against a model of the module's rules: the same
    admissions and refusals (limit, kind and share), and in the end the same use and room per class."""
    scope = CounterScope(f"conn-{uuid.uuid4().hex}", None)
    ordered = sorted(limits, key=lambda limit: list(CapacityPeriod).index(limit.period))
    model: dict[tuple[CapacityPeriod, str, str], _Window] = {}
    held: list[_Open] = []
    now = NOW

    def window(period: CapacityPeriod, window_id: str, kind: str) -> _Window:
        return model.setdefault((period, window_id, kind), _Window())

    def shares(name: str, limit: int) -> tuple[int, int, int]:
        """Guaranteed, maximum and the shared part of `limit` for the class `name`."""
        own = next(each for each in classes if each.name == name)
        shared = limit - sum(each.guaranteed_percent * limit // 100 for each in classes)
        return own.guaranteed_percent * limit // 100, own.maximum_percent * limit // 100, shared

    def kinds(tokens: int) -> list[tuple[WindowLimit, str, int | None, int]]:
        return [
            (limit, kind, most, amount)
            for limit in ordered
            for kind, most, amount in (("requests", limit.requests, 1), ("tokens", limit.tokens, tokens))
        ]

    def reserve(step: Reserve) -> None:
        caller = classes[step.class_index % len(classes)].name
        never: list[tuple[CapacityPeriod, str, str | None]] = []
        full: list[tuple[CapacityPeriod, str, str | None]] = []
        guaranteed_parts = {}
        for limit, kind, most, amount in kinds(step.tokens):
            counted = window(limit.period, current_window(limit.period, now).id, kind)
            mine = counted.classes.setdefault(caller, _Counts())
            own, maximum, shared = shares(caller, most) if most is not None else (0, 0, 0)
            guaranteed = max(0, min(amount, own - mine.guaranteed))
            guaranteed_parts[(limit.period, kind)] = guaranteed
            if most is None:
                continue
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
            reservation = counters.reserve(scope, limits, step.tokens, now, uuid4().hex, Priority(classes, caller))
        except CapacityExceeded as refused:
            assert (refused.period, refused.limit_kind, refused.share) == (never + full)[0]
            return
        assert not never and not full
        windows = {limit.period: current_window(limit.period, now).id for limit in ordered}
        add(caller, step.tokens, windows, guaranteed_parts, 1)
        held.append(_Open(reservation, caller, step.tokens, windows, guaranteed_parts))

    def add(
        caller: str,
        tokens: int,
        windows: dict[CapacityPeriod, str],
        guaranteed_parts: dict[tuple[CapacityPeriod, str], int],
        sign: int,
    ) -> None:
        for limit, kind, _, amount in kinds(tokens):
            counted = window(limit.period, windows[limit.period], kind)
            guaranteed = guaranteed_parts[(limit.period, kind)]
            counted.total += sign * amount
            counted.shared += sign * (amount - guaranteed)
            counted.classes.setdefault(caller, _Counts()).used += sign * amount
            counted.classes[caller].guaranteed += sign * guaranteed

    def settle(step: Settle) -> None:
        if not held:
            return
        settled = held.pop(step.open_index % len(held))
        if step.actual_tokens is None:
            counters.release(settled.reservation)
            add(settled.caller, settled.tokens, settled.windows, settled.guaranteed, -1)
            return
        counters.reconcile(settled.reservation, step.actual_tokens, now)
        for limit in ordered:
            if has_ended(limit.period, settled.windows[limit.period], now):
                continue
            counted = window(limit.period, settled.windows[limit.period], "tokens")
            mine = counted.classes[settled.caller]
            difference = step.actual_tokens - settled.tokens
            in_shared = settled.tokens - settled.guaranteed[(limit.period, "tokens")]
            from_shared = 0 if difference >= 0 else min(-difference, in_shared)
            counted.total += difference
            counted.shared -= from_shared
            mine.used += difference
            mine.guaranteed += difference + from_shared

    for step in steps:
        now += timedelta(seconds=step.pause)
        if isinstance(step, Reserve):
            reserve(step)
        else:
            settle(step)
    for usage in counters.usage(scope, limits, now, classes):
        window_id = current_window(usage.period, now).id
        requests, tokens_window = window(usage.period, window_id, "requests"), window(usage.period, window_id, "tokens")
        assert (usage.requests_used, usage.tokens_used) == (requests.total, tokens_window.total)
        for class_usage_now in usage.classes:
            expected = []
            for counted, most in ((requests, usage.requests_limit), (tokens_window, usage.tokens_limit)):
                mine = counted.classes.get(class_usage_now.name, _Counts())
                room = None
                if most is not None:
                    own, maximum, shared = shares(class_usage_now.name, most)
                    within = max(0, own - mine.guaranteed) + max(0, shared - counted.shared)
                    room = max(0, min(maximum - mine.used, within, most - counted.total))
                expected += [mine.used, room]
            assert [
                class_usage_now.requests_used,
                class_usage_now.requests_remaining,
                class_usage_now.tokens_used,
                class_usage_now.tokens_remaining,
            ] == expected
