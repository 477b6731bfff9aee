"""A handler whose module cannot be imported: the runtime reports an init error."""

from typing import Any

import a_module_that_does_not_exist  # type: ignore[import-not-found]


def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    return a_module_that_does_not_exist
