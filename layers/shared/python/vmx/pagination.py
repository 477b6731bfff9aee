"""Pages of results and the opaque tokens that continue them."""

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Generic, TypeVar

from vmx.errors import ErrorDetail, InvalidInput

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_token: str | None


def encode_token(key: dict[str, dict[str, str]]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(token: str, key_attributes: frozenset[str], partition: tuple[str, str]) -> dict[str, dict[str, str]]:
    """Decodes a token we issued for this very partition; anything else is a client error."""
    try:
        key = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, RecursionError):
        key = None
    partition_attribute, partition_value = partition
    if (
        not isinstance(key, dict)
        or set(key) != key_attributes
        or not all(
            isinstance(value, dict) and set(value) == {"S"} and isinstance(value["S"], str) for value in key.values()
        )
        or key.get(partition_attribute) != {"S": partition_value}
    ):
        raise invalid_token()
    return key


def invalid_token() -> InvalidInput:
    message = "nextToken is not a token this list issued; start again without it"
    return InvalidInput(message, [ErrorDetail(field="nextToken", message=message, type="invalid_token")])
