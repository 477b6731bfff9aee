"""Capacity counters in the capacity table: one item per scope, holding every limited window.

Keys: `CAP#<connectionId>` / `GLOBAL` for a connection's own windows, `IP#<ip>` for one client IP's. For
each period p the item holds `<p>_w` (the id of the window counted), `<p>_r` (requests) and `<p>_t`
(tokens). Per-IP items expire (`expiresAt`) when their last window ends, unless a lifetime window is limited.

A reservation is one UpdateItem adding to every window, conditional on each being the current window and
having room, that also marks the item with the request (`q_<requestId>`: when it was reserved) unless the
mark is there already. Its release or reconcile removes the mark, conditional on it being there. So every
write is applied once however often it is sent: a retried reservation whose first attempt was applied finds
its mark (and reads as admitted), a retried release or reconcile finds none (and does nothing), and one can
never follow the other. The item holds one mark per reservation in flight (about 45 bytes each). A mark older
than any invocation can live (ORPHANED_AFTER) belongs to a request whose settling never came; the next
settling write of that scope drops it, leaving its counts as reserved (an overcount, never an undercount). When the condition fails, DynamoDB returns the item as it was: a current window without room
is a refusal, with no further write; a window that rolled over (or was never counted) is reset by a second
write that also counts the request, conditional on the stored window still being the old one, so racing
instances cannot reset a window twice. The steady state costs one write; the first request of a window two.

pynamodb 6 cannot send ReturnValuesOnConditionCheckFailure with an UpdateItem (only inside transactions),
and without it a refusal would cost a second read, so this adapter uses the low-level boto3 client.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import BotoCoreError, ClientError

from vmx.capacity.ledger import (
    CounterScope,
    Reservation,
    WindowCount,
    WindowLimit,
    WindowState,
    WindowUsage,
    admissible_limits,
    in_refusal_order,
    open_windows,
    refuse_if_any_full,
    usage_of,
    window_state,
)
from vmx.capacity.limits import CapacityPeriod
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

_Item = Mapping[str, Any]


class DynamoCapacityCounters:
    def __init__(self, table_name: str, region: str, client: "DynamoDBClient | None" = None):
        """`client` replaces the default one: one with bounded timeouts on the completion path, or in tests one
        that counts or serialises DynamoDB calls."""
        self._table_name = table_name
        self._client = client or low_level.dynamodb_client(region)

    def reserve(
        self, scope: CounterScope, limits: Sequence[WindowLimit], tokens: int, now: datetime, request_id: str
    ) -> Reservation:
        mark = _mark(request_id)
        ordered = admissible_limits(limits, tokens, now)
        if not ordered:
            return Reservation(scope, request_id, {}, tokens, ())
        # Until DynamoDB has shown us the item, assume the steady state: every window current, with room.
        states = [_assumed_current(limit.period, now) for limit in ordered]
        for _ in range(_ATTEMPTS):
            update = _reservation(scope, ordered, states, tokens)
            update.conditions.append(f"attribute_not_exists({update.name('mark', mark)})")
            update.sets.append(f"#mark = {update.value('marked', low_level.number(int(now.timestamp())))}")
            written, item = self._write(scope, update)
            # the mark is there only if an earlier attempt of this very write was applied
            admitted = written or mark in item
            stored = _window_counts(item)
            states = [window_state(limit.period, stored.get(limit.period), now) for limit in ordered]
            if admitted:
                windows = {state.window.period: state.window.id for state in states}
                usage = tuple(usage_of(limit, state) for limit, state in zip(ordered, states, strict=True))
                return Reservation(scope, request_id, windows, tokens, usage, _orphaned_marks(item, now))
            refuse_if_any_full(ordered, states, tokens, now)
        raise StorageUnavailable("capacity counters kept changing under concurrent writes")

    def release(self, reservation: Reservation) -> None:
        self._settle(reservation, reservation.windows, -reservation.requests, -reservation.tokens)

    def reconcile(self, reservation: Reservation, actual_tokens: int, now: datetime) -> None:
        if actual_tokens < 0:
            raise ValueError("actual_tokens must not be negative")
        self._settle(reservation, open_windows(reservation, now), 0, actual_tokens - reservation.tokens)

    def usage(self, scope: CounterScope, limits: Sequence[WindowLimit], now: datetime) -> list[WindowUsage]:
        ordered = in_refusal_order(limits)
        if not ordered:
            return []
        try:
            item = self._client.get_item(TableName=self._table_name, Key=_key(scope), ConsistentRead=True)
        except (BotoCoreError, ClientError) as exc:
            raise low_level.unavailable(exc) from exc
        stored = _window_counts(item.get("Item", {}))
        return [usage_of(limit, window_state(limit.period, stored.get(limit.period), now)) for limit in ordered]

    def _settle(
        self, reservation: Reservation, windows: Mapping[CapacityPeriod, str], requests: int, tokens: int
    ) -> None:
        """Adds to the counts of the windows that are still the given ones (a rolled-over one is skipped) and
        removes the reservation's mark, if the mark is still there; drops the orphaned marks it was shown."""
        if not reservation.windows:
            return
        pending = dict(windows)
        while True:
            update = _Update()
            update.removes.append(update.name("mark", _mark(reservation.request_id)))
            update.conditions.append("attribute_exists(#mark)")
            update.removes += [update.name(f"orphan{index}", mark) for index, mark in enumerate(reservation.orphans)]
            for period, window_id in pending.items() if requests or tokens else ():
                update.conditions.append(f"{period}_w = {update.value(f'{period}_w', low_level.string(window_id))}")
                if requests:
                    update.adds.append(f"{period}_r {update.value('requests', low_level.number(requests))}")
                if tokens:
                    update.adds.append(f"{period}_t {update.value('tokens', low_level.number(tokens))}")
            written, item = self._write(reservation.scope, update)
            if written or _mark(reservation.request_id) not in item:
                # settled now, or already by an earlier attempt of this write (or of the other settling write)
                return
            # The condition failed on a window of this very item, so at least one window drops out each time.
            stored = _window_counts(item)
            pending = {
                period: window_id
                for period, window_id in pending.items()
                if period in stored and stored[period].window_id == window_id
            }

    def _write(self, scope: CounterScope, update: "_Update") -> tuple[bool, _Item]:
        """Sends one conditional UpdateItem; returns whether it was written, with the item after the write,
        or as it stood when the condition failed."""
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
                return False, cast(Mapping[str, _Item], exc.response).get("Item", {})
            raise low_level.unavailable(exc) from exc
        except BotoCoreError as exc:
            raise low_level.unavailable(exc) from exc
        return True, response.get("Attributes", {})


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

    def expression(self) -> str:
        clauses = [("SET", self.sets), ("ADD", self.adds), ("REMOVE", self.removes)]
        return " ".join(f"{keyword} {', '.join(parts)}" for keyword, parts in clauses if parts)


def _reservation(
    scope: CounterScope, limits: Sequence[WindowLimit], states: Sequence[WindowState], tokens: int
) -> _Update:
    """Counts one request and `tokens` in each window: added to a window that carries on (which must have
    room), or written over one that rolled over (which must still be the one we saw)."""
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


def _assumed_current(period: CapacityPeriod, now: datetime) -> WindowState:
    window = current_window(period, now)
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
    return {
        period: WindowCount(item[f"{period}_w"]["S"], int(item[f"{period}_r"]["N"]), int(item[f"{period}_t"]["N"]))
        for period in CapacityPeriod
        if f"{period}_w" in item
    }


def _key(scope: CounterScope) -> dict[str, "AttributeValueTypeDef"]:
    sort_key = "GLOBAL" if scope.source_ip is None else f"IP#{scope.source_ip}"
    return {"pk": low_level.string(f"CAP#{scope.connection_id}"), "sk": low_level.string(sort_key)}
