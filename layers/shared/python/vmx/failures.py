"""What a log line may say of an exception nobody expected: its type and where it was raised, never its text.

An exception's text can quote what it failed on: a header value holding a key (http.client's "Invalid header
value"), a credential, a prompt. Our own errors (DomainError, StorageUnavailable, ProviderError) are written to
hold none of those and are logged as they are; anything else is logged through `described`.
"""

import traceback

# Enough frames to find the place; the rest of the stack is the framework's.
_FRAMES = 8


def described(error: BaseException) -> dict[str, object]:
    """Log fields for `error`: its type, the frames it was raised through, and the types of its causes."""
    frames = traceback.extract_tb(error.__traceback__)[-_FRAMES:]
    causes: list[str] = []
    cause = error.__cause__ or error.__context__
    while cause is not None and len(causes) < _FRAMES:
        causes.append(type(cause).__name__)
        cause = cause.__cause__ or cause.__context__
    return {
        "error_type": type(error).__name__,
        "raised_at": [f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} in {frame.name}" for frame in frames],
        "caused_by": causes,
    }
