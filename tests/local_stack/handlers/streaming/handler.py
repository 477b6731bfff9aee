"""Streams `first`, waits for the file `release` to exist, then streams `ticks` pieces, or fails with `fail`.

It records in the folder `record` whether its body was closed early (`closed`) and when its work after the
response ran (`after`); the response's header x-pid names the process that served it.
"""

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vmx.http.streaming import StreamingResponse

WAIT_LIMIT_SECONDS = 10


def lambda_handler(event: dict[str, Any], context: Any) -> StreamingResponse:
    record = Path(event["record"])
    release = Path(event["release"])

    def body() -> Iterator[bytes]:
        try:
            yield b"first"
            if "fail" in event:
                raise RuntimeError(event["fail"])
            waited_until = time.monotonic() + WAIT_LIMIT_SECONDS
            while not release.exists() and time.monotonic() < waited_until:
                time.sleep(0.01)
            for _ in range(event["ticks"]):
                yield b"tick"
                time.sleep(0.01)
        except GeneratorExit:
            (record / "closed").touch()
            raise

    def after() -> None:
        (record / "after").touch()

    return StreamingResponse(200, {"x-pid": [str(os.getpid())]}, body(), after)
