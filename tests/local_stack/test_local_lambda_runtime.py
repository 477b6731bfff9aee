"""Loading handlers by file path and invoking them with a Lambda-like context."""

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from infra.system import Function
from local_stack.lambda_runtime import LambdaRuntime, load_handler

FIRST = Function(name="first", description="", source_dir="one", settings=BaseModel, memory_mb=256, timeout_seconds=5)
SECOND = Function(name="second", description="", source_dir="two", settings=BaseModel)


def write_handler(root: Path, source_dir: str, reply: str) -> None:
    (root / source_dir).mkdir(parents=True)
    (root / source_dir / "handler.py").write_text(
        "def lambda_handler(event, context):\n"
        f"    return {{'reply': {reply!r}, 'name': context.function_name,\n"
        "            'memory': context.memory_limit_in_mb, 'arn': context.invoked_function_arn,\n"
        "            'remaining': context.get_remaining_time_in_millis(), 'id': context.aws_request_id}\n"
    )


def test_two_handler_modules_load_side_by_side_and_get_a_context(tmp_path: Path) -> None:
    write_handler(tmp_path, "one", "from one")
    write_handler(tmp_path, "two", "from two")
    runtime = LambdaRuntime(
        [FIRST, SECOND],
        {FIRST.name: load_handler(FIRST, tmp_path), SECOND.name: load_handler(SECOND, tmp_path)},
    )

    first: dict[str, Any] = runtime.invoke("first", {})
    again: dict[str, Any] = runtime.invoke("first", {})
    second: dict[str, Any] = runtime.invoke("second", {})

    assert first["reply"] == "from one"
    assert second["reply"] == "from two"
    assert first["name"] == "vmx-local-first"
    assert first["memory"] == 256
    assert first["arn"] == "arn:aws:lambda:us-east-1:000000000000:function:vmx-local-first"
    assert 4_000 < first["remaining"] <= 5_000
    assert first["id"] != again["id"]


def test_every_function_needs_a_handler() -> None:
    with pytest.raises(ValueError, match="second"):
        LambdaRuntime([FIRST, SECOND], {FIRST.name: lambda event, context: None})
