"""Answers with its process environment."""

import os
from typing import Any


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    return dict(os.environ)
