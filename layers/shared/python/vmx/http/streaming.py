"""Responses written as they are produced, in the form API Gateway's streaming Lambda integration reads.

A streaming function answers with its status and headers as a JSON prelude, eight NUL bytes, then the body's
bytes as they come; API Gateway sends the prelude to the client as the status line and headers and streams the
rest. `after` is what the function still does once the client has its last byte (or has gone away): the
runtime calls it then, never before.
"""

import base64
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from vmx.afterwards import Afterwards
from vmx.deadline import Deadline

# Separates the prelude from the body (API Gateway's and Lambda function URLs' streaming format).
PRELUDE_DELIMITER = b"\x00" * 8
# What the Lambda Runtime API is told the streamed response is.
STREAMING_CONTENT_TYPE = "application/vnd.awslambda.http-integration-response"


@dataclass
class StreamingResponse:
    status_code: int
    multi_value_headers: dict[str, list[str]]
    body: Iterable[bytes]
    after: Callable[[], None]

    def encoded(self) -> Iterator[bytes]:
        """The prelude and delimiter, then each piece of the body as it is produced."""
        prelude = {"statusCode": self.status_code, "multiValueHeaders": self.multi_value_headers, "cookies": []}
        yield json.dumps(prelude).encode() + PRELUDE_DELIMITER
        for piece in self.body:
            if piece:
                yield piece

    def close(self) -> None:
        """Stops producing the body (the client went away): a generator runs its cleanup now."""
        close = getattr(self.body, "close", None)
        if close is not None:
            close()


class Exchange:
    """One invocation of a streaming route: its deadline, the work kept for after the response, and the body a
    route streams instead of returning (Powertools' resolver builds the status and headers, not the body)."""

    def __init__(self, deadline: Deadline):
        self.deadline = deadline
        self.afterwards = Afterwards()
        self._body: Iterable[bytes] | None = None

    def stream(self, body: Iterable[bytes]) -> None:
        self._body = body

    def response(self, result: dict[str, Any], after: Callable[[], None]) -> StreamingResponse:
        """`result` is the resolver's proxy response; its body is used unless the route streamed one."""
        headers: dict[str, list[str]] = {
            name: [str(value) for value in values] for name, values in (result.get("multiValueHeaders") or {}).items()
        }
        for name, value in (result.get("headers") or {}).items():
            headers.setdefault(name, [str(value)])
        if self._body is not None:
            body: Iterable[bytes] = self._body
        else:
            text = result.get("body") or ""
            body = [base64.b64decode(text) if result.get("isBase64Encoded") else text.encode()]
        return StreamingResponse(int(result["statusCode"]), headers, body, after)
