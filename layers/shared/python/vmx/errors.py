"""Domain errors. They carry a stable machine-readable code; `vmx.http.errors` maps them to HTTP."""

from typing import ClassVar

from pydantic import BaseModel


class ErrorDetail(BaseModel):
    """One problem with the input: where it is (`field`, a dotted path) and what is wrong."""

    field: str
    message: str
    type: str = "invalid"


class DomainError(Exception):
    code: ClassVar[str] = "error"

    def __init__(self, message: str, details: list[ErrorDetail] | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or []
        if code is not None:
            self.code = code  # type: ignore[misc]


class InvalidInput(DomainError):
    code = "invalid_request"


class BodyTooLarge(DomainError):
    code = "body_too_large"


class UnsupportedMediaType(DomainError):
    code = "unsupported_media_type"


class Unauthenticated(DomainError):
    code = "unauthorized"


class Forbidden(DomainError):
    code = "forbidden"


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class PreconditionFailed(DomainError):
    code = "precondition_failed"


class TooManyRequests(DomainError):
    code = "rate_limit_exceeded"
