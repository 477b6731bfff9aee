"""Capacity limits as configured on a connection (enforcement lives with the completion endpoint)."""

import re
from collections import Counter
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AfterValidator,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from vmx.api_model import ApiModel

# Far above any real limit, low enough to stay exact in every JSON client.
MAX_LIMIT = 2**53 - 1


class CapacityPeriod(StrEnum):
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    LIFETIME = "lifetime"


class CapacityDimension(StrEnum):
    SOURCE_IP = "source-ip"


Limit = Annotated[StrictInt, Field(ge=0, le=MAX_LIMIT)]


class CapacityEntry(ApiModel):
    period: CapacityPeriod
    requests: Limit | None = None
    tokens: Limit | None = None
    enabled: StrictBool = True
    dimension: CapacityDimension | None = None

    @model_validator(mode="after")
    def _limits_something(self) -> "CapacityEntry":
        if self.requests is None and self.tokens is None:
            raise ValueError("give requests, tokens or both")
        return self


def _one_entry_per_window(entries: list[CapacityEntry]) -> list[CapacityEntry]:
    windows = Counter((entry.period, entry.dimension) for entry in entries)
    for (period, dimension), count in windows.items():
        if count > 1:
            scope = f"dimension '{dimension}'" if dimension else "no dimension"
            raise ValueError(f"{count} entries for period '{period}' with {scope}; give one")
    return entries


Capacity = Annotated[
    list[CapacityEntry],
    Field(max_length=len(CapacityPeriod) * (len(CapacityDimension) + 1)),
    AfterValidator(_one_entry_per_window),
]


# Lower-case letters, digits and '-': a class name is part of a counter's attribute name in the capacity table.
_CLASS_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")


def _check_class_name(name: str) -> str:
    if not _CLASS_NAME.fullmatch(name):
        raise ValueError("must be 1 to 32 lower-case letters, digits or '-', and not start with '-'")
    return name


PriorityClassName = Annotated[StrictStr, AfterValidator(_check_class_name)]
Percent = Annotated[StrictInt, Field(ge=0, le=100)]
MAX_PRIORITY_CLASSES = 10


class PriorityClass(ApiModel):
    """A share of each of the connection's own windows: `guaranteedPercent` of the limit that no other class can
    take, and `maximumPercent` that this class never passes, even when the rest is idle."""

    name: PriorityClassName
    guaranteed_percent: Percent = 0
    maximum_percent: Percent = 100

    @field_validator("maximum_percent")
    @classmethod
    def _not_below_guarantee(cls, maximum: int, info: ValidationInfo) -> int:
        guaranteed = info.data.get("guaranteed_percent")
        if guaranteed is not None and maximum < guaranteed:
            raise ValueError(
                f"is below guaranteedPercent ({guaranteed}); a class cannot be guaranteed more than it may use"
            )
        return maximum


def _distinct_and_within_limit(classes: list[PriorityClass]) -> list[PriorityClass]:
    names = [priority_class.name for priority_class in classes]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"names must be unique; repeated: {', '.join(repeated)}")
    guaranteed = sum(priority_class.guaranteed_percent for priority_class in classes)
    if guaranteed > 100:
        raise ValueError(f"guaranteedPercent values sum to {guaranteed}; they may sum to at most 100")
    return classes


class Prioritization(ApiModel):
    """Priority classes sharing the connection's own (not per-IP) windows; what no class is guaranteed is
    shared first come, first served. A request counts in its API key's class, or in `defaultClass` when the key
    names none or a class this connection does not have."""

    classes: Annotated[
        list[PriorityClass],
        Field(min_length=1, max_length=MAX_PRIORITY_CLASSES),
        AfterValidator(_distinct_and_within_limit),
    ]
    # checked against the classes only: a name the classes refused is named there, once
    default_class: StrictStr

    @field_validator("default_class")
    @classmethod
    def _one_of_the_classes(cls, default_class: str, info: ValidationInfo) -> str:
        # absent when the classes themselves were refused: that error says enough
        classes = info.data.get("classes")
        if classes is not None and default_class not in (names := [each.name for each in classes]):
            raise ValueError(f"'{default_class}' is not one of the classes ({', '.join(names)})")
        return default_class

    def class_of(self, requested: str | None) -> PriorityClass:
        """The class a request counts in: the one its key names if this connection has it, else the default."""
        by_name = {priority_class.name: priority_class for priority_class in self.classes}
        return by_name.get(requested or "", by_name[self.default_class])
