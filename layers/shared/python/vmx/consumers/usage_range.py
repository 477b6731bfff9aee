"""The range of a usage query, validated as the API receives it (the `from`, `to` and `granularity` query
parameters), before anything is read."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from vmx.consumers.usage_stats import Granularity
from vmx.errors import ErrorDetail, InvalidInput

# A chart of more than a month of hours, or a year of days, is better drawn from coarser buckets.
MAX_SPAN = {Granularity.HOUR: timedelta(days=31), Granularity.DAY: timedelta(days=366)}
# What a query that leaves out `from` covers, up to its `to` (which defaults to now).
DEFAULT_SPAN = timedelta(hours=24)


@dataclass(frozen=True)
class UsageRange:
    granularity: Granularity
    # in UTC; the series holds the buckets that start before `end` and end after `start`
    start: datetime
    end: datetime


def usage_range(start: str | None, end: str | None, granularity: str, now: datetime) -> UsageRange:
    """`start` and `end` are the `from` and `to` parameters: ISO 8601 instants with a time zone; `to` left out is
    `now`, `from` left out is DEFAULT_SPAN before `to`. Raises InvalidInput naming every parameter at fault."""
    details: list[ErrorDetail] = []
    first = _instant("from", start, details) if start is not None else None
    last = _instant("to", end, details) if end is not None else now.astimezone(UTC)
    if start is None and last is not None:
        first = last - DEFAULT_SPAN
    try:
        unit = Granularity(granularity)
    except ValueError:
        unit = None
        details.append(ErrorDetail(field="granularity", message="granularity must be 'hour' or 'day'"))
    if first is not None and last is not None:
        if first >= last:
            details.append(ErrorDetail(field="to", message="to must be later than from"))
        elif unit is not None and last - first > MAX_SPAN[unit]:
            days = MAX_SPAN[unit].days
            details.append(ErrorDetail(field="to", message=f"a range of {unit} buckets spans at most {days} days"))
    if details or first is None or last is None or unit is None:
        message = details[0].message if len(details) == 1 else "invalid usage range"
        raise InvalidInput(message, details)
    return UsageRange(unit, first, last)


def _instant(name: str, text: str, details: list[ErrorDetail]) -> datetime | None:
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        details.append(ErrorDetail(field=name, message=f"{name} must be an ISO 8601 date and time"))
        return None
    if instant.tzinfo is None:
        details.append(ErrorDetail(field=name, message=f"{name} needs a time zone, such as Z or +02:00"))
        return None
    return instant.astimezone(UTC)
