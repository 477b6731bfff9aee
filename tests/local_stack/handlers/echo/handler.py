"""Answers with what the runtime gave it; asked to, it raises, sleeps or ends its process first."""

import os
import time
from typing import Any


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if "raise" in event:
        raise Exception(event["raise"])
    if "exit" in event:
        os._exit(event["exit"])
    time.sleep(event.get("sleep_seconds", 0))
    return {
        "event": event,
        "pid": os.getpid(),
        "function_name": context.function_name,
        "memory_mb": context.memory_limit_in_mb,
        "arn": context.invoked_function_arn,
        "request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "trace_id": os.environ.get("_X_AMZN_TRACE_ID"),
    }
