"""Turns pydantic's validation errors into our error details, never echoing the input (it may be secret)."""

from collections.abc import Iterable, Sequence
from typing import Any

from vmx.errors import ErrorDetail

_VALUE_ERROR_PREFIXES = ("Value error, ", "Assertion failed, ")


def error_details(errors: Iterable[Any], prefix: Sequence[str | int] = ()) -> list[ErrorDetail]:
    details = []
    for error in errors:
        location = [*prefix, *error.get("loc", ())]
        message = str(error.get("msg", "is invalid"))
        for value_prefix in _VALUE_ERROR_PREFIXES:
            message = message.removeprefix(value_prefix)
        details.append(ErrorDetail(field=dotted(location), message=message, type=str(error.get("type", "invalid"))))
    return details


def dotted(location: Sequence[str | int]) -> str:
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def summary(details: list[ErrorDetail]) -> str:
    first = details[0]
    more = f" (and {len(details) - 1} more problems)" if len(details) > 1 else ""
    where = f"{first.field}: " if first.field else ""
    return f"{where}{first.message}{more}"
