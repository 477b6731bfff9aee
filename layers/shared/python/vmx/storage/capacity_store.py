"""Capacity counters in the capacity table: one item per scope, holding every limited window.

Keys: `CAP#<connectionId>` / `GLOBAL` for a connection's own windows, `IP#<ip>` for one client IP's. For
each period p the item holds `<p>_w` (the id of the window counted), `<p>_r` (requests) and `<p>_t`
(tokens). Per-IP items expire (`expiresAt`) when their last window ends, unless a lifetime window is limited.
With priority classes, the window w of period p also holds, for requests (r) and tokens (t), `<p>_sr_<w>`
(the shared part's use) and per class c `<p>_cr_<w>_<c>` (its use) and `<p>_gr_<w>_<c>` (the part of it in
its guarantee). Named by their window, a rolled-over window's class counts are plain leftovers, which the
write that rolls the window over removes.

A reservation is one UpdateItem adding to every window, conditional on each being the current window and
having room, that also marks the item with the request (`q_<requestId>`: when it was reserved) unless the
mark is there already. Its release or reconcile removes the mark, conditional on it being there. So every
write is applied once however often it is sent: a retried reservation whose first attempt was applied finds
its mark (and reads as admitted), a retried release or reconcile finds none (and does nothing), and one can
never follow the other. The item holds one mark per reservation in flight (about 45 bytes each). A mark older
than any invocation can live (ORPHANED_AFTER) belongs to a request whose settling never came; the next
settling write of that scope drops it, leaving its counts as reserved (an overcount, never an undercount).
When the condition fails, DynamoDB returns the item as it was: a current window without room is a refusal,
with no further write; a window that rolled over (or was never counted) is reset by a second write that also
counts the request, conditional on the stored window still being the old one, so racing instances cannot reset
a window twice. The steady state costs one write; the first request of a window two.

A class's reservation is split between its guarantee and the shared part by the counts this instance last saw
(every write returns the item), and the write's conditions bound each part: `<p>_gr_… <= G - guaranteed part`,
`<p>_sr_… <= S - shared part`, `<p>_cr_… <= M - all` (DynamoDB conditions have no arithmetic, so the bounds are
computed here). A view that others' reservations made stale fails a condition and the item comes back: one more
write, split by what the item holds. A view that others' releases made stale can only count in the shared part
what the guarantee could have held: every bound holds all the same.

pynamodb 6 cannot send ReturnValuesOnConditionCheckFailure with an UpdateItem (only inside transactions),
and without it a refusal would cost a second read, so this adapter uses the low-level boto3 client.
"""

import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from botocore.exceptions import BotoCoreError, ClientError

from vmx.capacity.ledger import (
    ClassCount,
    CounterScope,
    Delta,
    Priority,
    Reservation,
    Split,
    WindowCount,
    WindowLimit,
    WindowState,
    WindowUsage,
    admissible_limits,
    in_refusal_order,
    open_windows,
    reconcile_delta,
    refuse_if_any_full,
    release_delta,
    split_delta,
    split_of,
    usage_of,
    window_state,
)
from vmx.capacity.limits import CapacityPeriod, PriorityClass
from vmx.capacity.windows import current_window
from vmx.storage import low_level
from vmx.storage.errors import StorageUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

# Each failed attempt means another writer rolled a window over or filled one; six periods can roll over
# at most once each for a given instant, so this is never reached without something badly wrong.
_ATTEMPTS = 8
# the table's TTL attribute (CAPACITY_TABLE in infra/system.py)
_EXPIRES_AT = "expiresAt"
_MARK_PREFIX = "q_"
_REQUEST_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")
# Longer than a completion's invocation can run (15 minutes): a mark this old will never be settled.
ORPHANED_AFTER = timedelta(minutes=30)
# <period>_<s|c|g><r|t>_<window id>[_<class>]: a window's shared part, a class's use or its guaranteed part
_CLASS_COUNT = re.compile(rf"({'|'.join(CapacityPeriod)})_([scg])([rt])_([0-9]+)(?:_([a-z0-9-]+))?")
# the scopes whose last seen counts an instance keeps, to split class reservations by
_SEEN_SCOPES = 1000

_Item = Mapping[str, Any]


class DynamoCapacityCounters:
    def __init__(self, table_name: str, region: str, client: "DynamoDBClient | None" = None):
        """`client` replaces the default one: one with bounded timeouts on the completion path, or in tests one
        that counts or serialises DynamoDB calls."""
        self._table_name = table_name
        self._client = client or low_level.dynamodb_client(region)
        # each scope's windows as the last write or read of it returned them
        self._seen: dict[CounterScope, dict[CapacityPeriod, WindowCount]] = {}

    def reserve(
        self,
        scope: CounterScope,
        limits: Sequence[WindowLimit],
        tokens: int,
        now: datetime,
        request_id: str,
        priority: Priority | None = None,
    ) -> Reservation:
        mark = _mark(request_id)
        ordered = admissible_limits(limits, tokens, now, priority)
        if not ordered:
            return Reservation(scope, request_id, {}, tokens, ())
        seen = self._seen.get(scope, {})
        states = [_expected(limit.period, seen.get(limit.period), now) for limit in ordered]
        item: _Item = {}
        for _ in range(_ATTEMPTS):
            splits = {
                limit.period: split_of(limit, state, tokens, priority)
                for limit, state in zip(ordered, states, strict=True)
                if priority is not None
            }
            update = _reservation(scope, ordered, states, tokens, priority, splits, _class_counts_in(item))
            update.conditions.append(f"attribute_not_exists({update.name('mark', mark)})")
            update.sets.append(f"#mark = {update.value('marked', low_level.number(int(now.timestamp())))}")
            written, item, stored = self._write(scope, update)
            # the mark is there only if an earlier attempt of this very write was applied
            admitted = written or mark in item
            states = [window_state(limit.period, stored.get(limit.period), now) for limit in ordered]
            if admitted:
                windows = {state.window.period: state.window.id for state in states}
                classes = priority.classes if priority else ()
                usage = tuple(usage_of(limit, state, classes) for limit, state in zip(ordered, states, strict=True))
                return Reservation(
                    scope,
                    request_id,
                    windows,
                    tokens,
                    usage,
                    _orphaned_marks(item, now),
                    priority.caller if priority else None,
                    splits,
                )
            refuse_if_any_full(ordered, states, tokens, now, priority)
        raise StorageUnavailable("capacity counters kept changing under concurrent writes")

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
        ordered = in_refusal_order(limits)
        if not ordered:
            return []
        try:
            item = self._client.get_item(TableName=self._table_name, Key=_key(scope), ConsistentRead=True)
        except (BotoCoreError, ClientError) as exc:
            raise low_level.unavailable(exc) from exc
        stored = self._remember(scope, item.get("Item", {}))
        return [
            usage_of(limit, window_state(limit.period, stored.get(limit.period), now), classes) for limit in ordered
        ]

    def _settle(
        self,
        reservation: Reservation,
        windows: Mapping[CapacityPeriod, str],
        delta_of: Callable[[CapacityPeriod], Delta],
    ) -> None:
        """Adds to the counts of the windows that are still the given ones (a rolled-over one is skipped) and
        removes the reservation's mark, if the mark is still there; drops the orphaned marks it was shown."""
        if not reservation.windows:
            return
        pending = {period: window_id for period, window_id in windows.items() if delta_of(period)}
        while True:
            update = _Update()
            update.removes.append(update.name("mark", _mark(reservation.request_id)))
            update.conditions.append("attribute_exists(#mark)")
            update.removes += [update.name(f"orphan{index}", mark) for index, mark in enumerate(reservation.orphans)]
            for period, window_id in pending.items():
                delta = delta_of(period)
                update.conditions.append(f"{period}_w = {update.value(f'{period}_w', low_level.string(window_id))}")
                update.adds += [f"{period}_r {update.number(delta.requests)}"] if delta.requests else []
                update.adds += [f"{period}_t {update.number(delta.tokens)}"] if delta.tokens else []
                if reservation.priority_class is not None:
                    _add_class_counts(update, period, window_id, reservation.priority_class, delta)
            written, item, stored = self._write(reservation.scope, update)
            if written or _mark(reservation.request_id) not in item:
                # settled now, or already by an earlier attempt of this write (or of the other settling write)
                return
            # The condition failed on a window of this very item, so at least one window drops out each time.
            pending = {
                period: window_id
                for period, window_id in pending.items()
                if period in stored and stored[period].window_id == window_id
            }

    def _write(self, scope: CounterScope, update: "_Update") -> tuple[bool, _Item, dict[CapacityPeriod, WindowCount]]:
        """Sends one conditional UpdateItem; returns whether it was written, with the item after the write,
        or as it stood when the condition failed, and that item's window counts."""
        # DynamoDB refuses an empty map: a settling write that changes no count has no values
        values: dict[str, Any] = {"ExpressionAttributeValues": update.values} if update.values else {}
        try:
            response = self._client.update_item(
                TableName=self._table_name,
                Key=_key(scope),
                UpdateExpression=update.expression(),
                ConditionExpression=" AND ".join(update.conditions),
                ExpressionAttributeNames=update.names,
                **values,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                # botocore's stubs do not declare the item that DynamoDB returns with this error
                item = cast(Mapping[str, _Item], exc.response).get("Item", {})
                return False, item, self._remember(scope, item)
            raise low_level.unavailable(exc) from exc
        except BotoCoreError as exc:
            raise low_level.unavailable(exc) from exc
        item = response.get("Attributes", {})
        return True, item, self._remember(scope, item)

    def _remember(self, scope: CounterScope, item: _Item) -> dict[CapacityPeriod, WindowCount]:
        counts = _window_counts(item)
        self._seen.pop(scope, None)
        if len(self._seen) >= _SEEN_SCOPES:
            # the longest unseen goes (a dict keeps insertion order)
            del self._seen[next(iter(self._seen))]
        self._seen[scope] = counts
        return counts


@dataclass
class _Update:
    """An update expression and its condition, built clause by clause over shared placeholders."""

    sets: list[str] = field(default_factory=list)
    adds: list[str] = field(default_factory=list)
    removes: list[str] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, "AttributeValueTypeDef"] = field(default_factory=dict)

    def name(self, placeholder: str, attribute: str) -> str:
        self.names[f"#{placeholder}"] = attribute
        return f"#{placeholder}"

    def value(self, name: str, value: "AttributeValueTypeDef") -> str:
        placeholder = f":{name}"
        self.values[placeholder] = value
        return placeholder

    def attribute(self, attribute: str) -> str:
        """A placeholder of its own, for an attribute whose name holds a class's name."""
        return self.name(f"a{len(self.names)}", attribute)

    def number(self, number: int) -> str:
        return self.value(f"n{len(self.values)}", low_level.number(number))

    def expression(self) -> str:
        clauses = [("SET", self.sets), ("ADD", self.adds), ("REMOVE", self.removes)]
        return " ".join(f"{keyword} {', '.join(parts)}" for keyword, parts in clauses if parts)


def _reservation(
    scope: CounterScope,
    limits: Sequence[WindowLimit],
    states: Sequence[WindowState],
    tokens: int,
    priority: Priority | None,
    splits: Mapping[CapacityPeriod, Split],
    class_counts: Sequence["_ClassCountName"],
) -> _Update:
    """Counts one request and `tokens` in each window: added to a window that carries on (which must have
    room), or written over one that rolled over (which must still be the one we saw, and loses the class counts
    of `class_counts` that belong to older windows); in a class, split as `splits` say, each part in its bound."""
    update = _Update()
    requests = update.value("requests", low_level.number(Reservation.requests))
    reserved = update.value("tokens", low_level.number(tokens))
    for limit, state in zip(limits, states, strict=True):
        period = limit.period
        window_id = update.value(f"{period}_w", low_level.string(state.window.id))
        if state.continues_stored:
            update.adds += [f"{period}_r {requests}", f"{period}_t {reserved}"]
            update.conditions.append(f"{period}_w = {window_id}")
            if limit.requests is not None:
                most = update.value(f"{period}_most_r", low_level.number(limit.requests - Reservation.requests))
                update.conditions.append(f"{period}_r <= {most}")
            if limit.tokens is not None:
                most = update.value(f"{period}_most_t", low_level.number(limit.tokens - tokens))
                update.conditions.append(f"{period}_t <= {most}")
        else:
            update.sets += [f"{period}_w = {window_id}", f"{period}_r = {requests}", f"{period}_t = {reserved}"]
            if state.stored_window_id is None:
                update.conditions.append(f"attribute_not_exists({period}_w)")
            else:
                stale = update.value(f"{period}_stale", low_level.string(state.stored_window_id))
                update.conditions.append(f"{period}_w = {stale}")
            update.removes += [
                update.attribute(count.attribute)
                for count in class_counts
                if count.period == period and count.window_id != state.window.id
            ]
        if priority is not None:
            _reserve_in_class(update, limit, state.window.id, tokens, priority, splits[period])
    if scope.source_ip is not None:
        ends = [state.window.end for state in states]
        if any(end is None for end in ends):
            update.removes.append(_EXPIRES_AT)
        else:
            last_end = max(end for end in ends if end is not None)
            update.sets.append(
                f"{_EXPIRES_AT} = {update.value('expires', low_level.number(int(last_end.timestamp())))}"
            )
    return update


def _reserve_in_class(
    update: _Update, limit: WindowLimit, window_id: str, tokens: int, priority: Priority, split: Split
) -> None:
    """Counts the reservation in its class and the shared part, each part conditional on its bound."""
    period = limit.period
    _add_class_counts(update, period, window_id, priority.caller, split_delta(tokens, split))
    for unit, most, amount, guaranteed in (
        ("r", limit.requests, Reservation.requests, split.guaranteed_requests),
        ("t", limit.tokens, tokens, split.guaranteed_tokens),
    ):
        if most is None:
            continue
        shares = priority.shares(most)
        bounds = (
            (_class_count(period, "c", unit, window_id, priority.caller), amount, shares.maximum),
            (_class_count(period, "g", unit, window_id, priority.caller), guaranteed, shares.guaranteed),
            (_class_count(period, "s", unit, window_id), amount - guaranteed, shares.shared),
        )
        for name, added, bound in bounds:
            if not added:
                continue
            count, at_most = update.attribute(name), update.number(bound - added)
            # A count not yet written is 0, which fits unless the part alone is beyond its bound (nothing is shared,
            # say, and the guarantee is used): then the write must fail, and the item it returns decides.
            fits = (
                f"{count} <= {at_most}" if bound < added else f"(attribute_not_exists({count}) OR {count} <= {at_most})"
            )
            update.conditions.append(fits)


def _add_class_counts(
    update: _Update, period: CapacityPeriod, window_id: str, priority_class: str, delta: Delta
) -> None:
    added = (
        (_class_count(period, "c", "r", window_id, priority_class), delta.requests),
        (_class_count(period, "c", "t", window_id, priority_class), delta.tokens),
        (_class_count(period, "g", "r", window_id, priority_class), delta.guaranteed_requests),
        (_class_count(period, "g", "t", window_id, priority_class), delta.guaranteed_tokens),
        (_class_count(period, "s", "r", window_id), delta.shared_requests),
        (_class_count(period, "s", "t", window_id), delta.shared_tokens),
    )
    update.adds += [f"{update.attribute(name)} {update.number(amount)}" for name, amount in added if amount]


def _class_count(
    period: CapacityPeriod, kind: str, unit: str, window_id: str, priority_class: str | None = None
) -> str:
    """The attribute of a shared part's (s) or a class's use (c) or guaranteed part (g), of requests (r) or
    tokens (t), in one window."""
    return f"{period}_{kind}{unit}_{window_id}" + (f"_{priority_class}" if priority_class else "")


class _ClassCountName(NamedTuple):
    """An attribute of the item that holds a class count, and what its name says."""

    attribute: str
    period: CapacityPeriod
    # s: the shared part, c: a class's use, g: its guaranteed part
    kind: str
    # r: requests, t: tokens
    unit: str
    window_id: str
    priority_class: str | None


def _class_counts_in(item: _Item) -> list[_ClassCountName]:
    return [
        _ClassCountName(name, CapacityPeriod(match[1]), match[2], match[3], match[4], match[5])
        for name in item
        if (match := _CLASS_COUNT.fullmatch(name))
    ]


def _expected(period: CapacityPeriod, seen: WindowCount | None, now: datetime) -> WindowState:
    """Until DynamoDB has shown us the item, the steady state: every window current, with room, its classes
    counted as this instance last saw them."""
    window = current_window(period, now)
    if seen is not None and seen.window_id == window.id:
        return window_state(period, seen, now)
    return WindowState(window, 0, 0, window.id)


def _mark(request_id: str) -> str:
    if not _REQUEST_ID.fullmatch(request_id):
        raise ValueError("a request id is 1 to 64 letters, digits, '_' or '-'")
    return _MARK_PREFIX + request_id


def _orphaned_marks(item: _Item, now: datetime) -> tuple[str, ...]:
    oldest_live = (now - ORPHANED_AFTER).timestamp()
    return tuple(
        name
        for name, value in item.items()
        if name.startswith(_MARK_PREFIX) and "N" in value and float(value["N"]) < oldest_live
    )


def _window_counts(item: _Item) -> dict[CapacityPeriod, WindowCount]:
    counts = {
        period: WindowCount(item[f"{period}_w"]["S"], int(item[f"{period}_r"]["N"]), int(item[f"{period}_t"]["N"]))
        for period in CapacityPeriod
        if f"{period}_w" in item
    }
    shared: dict[CapacityPeriod, dict[str, int]] = defaultdict(dict)
    classes: dict[CapacityPeriod, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for count in _class_counts_in(item):
        period = count.period
        if period not in counts or counts[period].window_id != count.window_id:
            continue
        value = int(item[count.attribute]["N"])
        if count.kind == "s":
            shared[period][count.unit] = value
        elif count.priority_class:
            classes[period][count.priority_class][count.kind + count.unit] = value
    return {
        period: WindowCount(
            count.window_id,
            count.requests,
            count.tokens,
            shared[period].get("r", 0),
            shared[period].get("t", 0),
            {
                name: ClassCount(held.get("cr", 0), held.get("ct", 0), held.get("gr", 0), held.get("gt", 0))
                for name, held in classes[period].items()
            },
        )
        for period, count in counts.items()
    }


def _key(scope: CounterScope) -> dict[str, "AttributeValueTypeDef"]:
    sort_key = "GLOBAL" if scope.source_ip is None else f"IP#{scope.source_ip}"
    return {"pk": low_level.string(f"CAP#{scope.connection_id}"), "sk": low_level.string(sort_key)}
