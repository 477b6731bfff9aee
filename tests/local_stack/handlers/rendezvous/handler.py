"""Waits until `peers` invocations have arrived in the folder `meeting`, then answers with its process id.
One instance serving the invocations in turn would wait out the limit and answer that nobody came."""

import os
import time
from pathlib import Path
from typing import Any

WAIT_LIMIT_SECONDS = 10


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    meeting = Path(event["meeting"])
    (meeting / context.aws_request_id).touch()
    waited_until = time.monotonic() + WAIT_LIMIT_SECONDS
    while len(list(meeting.iterdir())) < event["peers"]:
        if time.monotonic() > waited_until:
            return {"pid": os.getpid(), "met": False}
        time.sleep(0.01)
    return {"pid": os.getpid(), "met": True}
