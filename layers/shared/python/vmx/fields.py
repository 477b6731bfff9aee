"""Validated value types of names, descriptions and model ids."""

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, Field, StrictStr

# Line and paragraph separators (U+2028, U+2029) break a log line or a header as a newline does.
_SEPARATORS = frozenset({"Zl", "Zp"})


def _refused_in_name(char: str) -> bool:
    # C*: controls (U+0085 too), format characters (bidirectional overrides, zero-width ones), surrogates,
    # private use and unassigned
    category = unicodedata.category(char)
    return category.startswith("C") or category in _SEPARATORS


def _check_display_name(value: str) -> str:
    if value != value.strip():
        raise ValueError("must not start or end with whitespace")
    if any(_refused_in_name(char) for char in value):
        raise ValueError("must not contain control, format or line-separator characters")
    return value


def _check_connection_name(value: str) -> str:
    if "/" in value:
        raise ValueError("must not contain '/': models are addressed as '<connectionName>/<modelId>'")
    return _check_display_name(value)


# Embeddings, overrides and isolates reorder how text shows, so a description could read as something else.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _refused_in_description(char: str) -> bool:
    category = unicodedata.category(char)
    return (
        (category == "Cc" and char not in "\n\t")
        or category in _SEPARATORS
        or category == "Cs"  # a lone surrogate cannot be stored as UTF-8
        or char in _BIDI_CONTROLS
    )


def _check_description(value: str) -> str:
    if any(_refused_in_description(char) for char in value):
        raise ValueError(
            "must not contain control, line-separator or bidirectional-override characters other than newlines and tabs"
        )
    return value


def name_key(name: str) -> str:
    """What makes two names the same name: Unicode compatibility forms and case do not count."""
    return unicodedata.normalize("NFKC", name).casefold()


def _check_model_id(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    if value != value.strip():
        raise ValueError("must not start or end with whitespace")
    if any(_refused_in_name(char) for char in value):
        raise ValueError("must not contain control, format or line-separator characters")
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
