"""Translation of pynamodb and botocore failures that are not the caller's fault."""

from pynamodb.exceptions import PynamoDBException


class StorageUnavailable(Exception):
    """DynamoDB could not be reached or refused the request: a server-side failure (5xx)."""


def unavailable(exc: PynamoDBException) -> StorageUnavailable:
    return StorageUnavailable(f"DynamoDB request failed ({exc.cause_response_code or type(exc).__name__})")
