"""Translation of pynamodb and botocore failures that are not the caller's fault."""

from pynamodb.exceptions import PynamoDBException

from vmx.pagination import invalid_token


class StorageUnavailable(Exception):
    """DynamoDB could not be reached or refused the request: a server-side failure (5xx)."""


def query_failed(exc: PynamoDBException, started_from_token: bool) -> Exception:
    """A refused query that resumed from a client's nextToken blames the token, not the service."""
    if started_from_token and exc.cause_response_code == "ValidationException":
        return invalid_token()
    return unavailable(exc)


def unavailable(exc: PynamoDBException) -> StorageUnavailable:
    return StorageUnavailable(f"DynamoDB request failed ({exc.cause_response_code or type(exc).__name__})")
