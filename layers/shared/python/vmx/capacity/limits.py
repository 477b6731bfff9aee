"""Capacity limits as configured on a connection (enforcement lives with the completion endpoint)."""

from collections import Counter
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field, StrictBool, StrictInt, model_validator

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
