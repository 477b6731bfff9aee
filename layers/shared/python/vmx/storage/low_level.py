"""What the adapters on DynamoDB's low-level client share (where pynamodb's declared attributes cannot
express the items): typed attribute values, the default client, and the one translation of the SDK's failures."""

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from vmx.storage.errors import StorageUnavailable

if TYPE_CHECKING:
    from botocore.config import Config
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef


def dynamodb_client(region: str) -> "DynamoDBClient":
    """The adapters' default client. boto3 is imported here, when the first adapter is made, not with the module."""
    import boto3

    return boto3.client("dynamodb", region_name=region)


def string(value: str) -> "AttributeValueTypeDef":
    return {"S": value}


def number(value: int) -> "AttributeValueTypeDef":
    return {"N": str(value)}


def unavailable(exc: BotoCoreError | ClientError) -> StorageUnavailable:
    """Not the caller's fault: a 5xx."""
    code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else None
    return StorageUnavailable(f"DynamoDB request failed ({code or type(exc).__name__})")


def longest_call_seconds(config: "Config") -> float:
    """How long one call of a client with `config` can take at most: every attempt waits out its connect and
    read timeouts, with botocore's backoff (below 2**attempt seconds, in either retry mode) between them."""
    retries = getattr(config, "retries", None) or {}
    if "total_max_attempts" in retries:
        attempts = int(retries["total_max_attempts"])
    elif "max_attempts" in retries:
        attempts = int(retries["max_attempts"]) + 1
    else:
        # botocore's defaults: 3 attempts in standard mode, 5 in legacy
        attempts = 3 if retries.get("mode") == "standard" else 5
    # botocore sets the options a Config was not given to their defaults (60 s each), which its stubs do not declare
    timeouts = float(getattr(config, "connect_timeout", 60)) + float(getattr(config, "read_timeout", 60))
    return attempts * timeouts + sum(2.0**attempt for attempt in range(attempts - 1))
