"""What the adapters on DynamoDB's low-level client share (where pynamodb's declared attributes cannot
express the items): typed attribute values, and the one translation of the SDK's failures."""

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from vmx.storage.errors import StorageUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef


def string(value: str) -> "AttributeValueTypeDef":
    return {"S": value}


def number(value: int) -> "AttributeValueTypeDef":
    return {"N": str(value)}


def unavailable(exc: BotoCoreError | ClientError) -> StorageUnavailable:
    """Not the caller's fault: a 5xx."""
    code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else None
    return StorageUnavailable(f"DynamoDB request failed ({code or type(exc).__name__})")
