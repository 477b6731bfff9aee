"""Fixed capacity windows aligned to UTC.

A minute, hour or day starts on its UTC boundary, a week on Monday 00:00 UTC (ISO weeks), a month on the
1st at 00:00 UTC; lifetime is one window that never ends. A window's id is its start in epoch seconds, so
ids of one period order like their windows, which is what lets a store tell an older window from a newer.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from vmx.capacity.limits import CapacityPeriod

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Window:
    period: CapacityPeriod
    id: str
    start: datetime
    # exclusive; None for lifetime
    end: datetime | None


def current_window(period: CapacityPeriod, now: datetime) -> Window:
    """The window of `period` that holds `now` (which must be timezone-aware)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if period is CapacityPeriod.LIFETIME:
        return Window(period, _window_id(_EPOCH), _EPOCH, None)
    start, end = _bounds(period, now.astimezone(UTC))
    return Window(period, _window_id(start), start, end)


def counting_window(period: CapacityPeriod, now: datetime, stored_id: str | None) -> Window:
    """The window a request at `now` counts in, given the window a store last counted.

    Windows never move backwards: when another instance, whose clock runs slightly ahead, has already
    opened the next window, reopening ours would wipe that window's counts, so the request joins it.
    """
    current = current_window(period, now)
    if stored_id is not None and int(stored_id) > int(current.id):
        return current_window(period, datetime.fromtimestamp(int(stored_id), UTC))
    return current


def has_ended(period: CapacityPeriod, window_id: str, now: datetime) -> bool:
    """Whether the window `window_id` of `period` lies wholly before `now`."""
    return int(window_id) < int(current_window(period, now).id)


def _window_id(start: datetime) -> str:
    return str(int(start.timestamp()))


def _bounds(period: CapacityPeriod, now: datetime) -> tuple[datetime, datetime]:
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    match period:
        case CapacityPeriod.MINUTE:
            start = now.replace(second=0, microsecond=0)
            return start, start + timedelta(minutes=1)
        case CapacityPeriod.HOUR:
            start = now.replace(minute=0, second=0, microsecond=0)
            return start, start + timedelta(hours=1)
        case CapacityPeriod.DAY:
            return midnight, midnight + timedelta(days=1)
        case CapacityPeriod.WEEK:
            start = midnight - timedelta(days=now.weekday())
            return start, start + timedelta(weeks=1)
        case CapacityPeriod.MONTH:
            start = midnight.replace(day=1)
            if start.month == 12:
                return start, start.replace(year=start.year + 1, month=1)
            return start, start.replace(month=start.month + 1)
    raise ValueError(f"no bounds for period {period}")
