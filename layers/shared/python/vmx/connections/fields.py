"""Validated value types of names, descriptions and model ids."""

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, Field, StrictStr


def _check_display_name(value: str) -> str:
    if value != value.strip():
        raise ValueError("must not start or end with whitespace")
    if any(unicodedata.category(char).startswith("C") for char in value):
        raise ValueError("must not contain control characters")
    return value


def _check_connection_name(value: str) -> str:
    if "/" in value:
        raise ValueError("must not contain '/': models are addressed as '<connectionName>/<modelId>'")
    return _check_display_name(value)


def _check_description(value: str) -> str:
    if any(unicodedata.category(char) == "Cc" and char not in "\n\t" for char in value):
        raise ValueError("must not contain control characters other than newlines and tabs")
    return value


def name_key(name: str) -> str:
    """What makes two names the same name: Unicode compatibility forms and case do not count."""
    return unicodedata.normalize("NFKC", name).casefold()


def _check_model_id(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    if value != value.strip():
        raise ValueError("must not start or end with whitespace")
    return value


def _distinct(values: list[str]) -> list[str]:
    if not values:
        raise ValueError("must list at least one model; send null to allow every model")
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"lists model '{value}' more than once")
        seen.add(value)
    return values


DisplayName = Annotated[StrictStr, Field(min_length=1, max_length=128), AfterValidator(_check_display_name)]
ConnectionName = Annotated[StrictStr, Field(min_length=1, max_length=128), AfterValidator(_check_connection_name)]
Description = Annotated[StrictStr, Field(max_length=1024), AfterValidator(_check_description)]
ModelId = Annotated[StrictStr, Field(min_length=1, max_length=256), AfterValidator(_check_model_id)]
AllowedModels = Annotated[list[ModelId], Field(max_length=1000), AfterValidator(_distinct)]
ProviderName = Annotated[StrictStr, Field(min_length=1, max_length=64)]
