"""Importing a function's handler module from its folder, for the local stack, the API document and the tests."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from infra.system import Function

FUNCTIONS_ROOT = Path(__file__).resolve().parent.parent / "functions"


def import_handler_module(function: Function, module_name: str, functions_root: Path = FUNCTIONS_ROOT) -> ModuleType:
    """Imports `<functions_root>/<source_dir>/handler.py` afresh as `module_name`: every handler is handler.py, so
    each caller names its own copy, and registers it in `sys.modules`, through which pydantic resolves the
    handler's annotations."""
    path = functions_root / function.source_dir / "handler.py"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def imported_handler_module(function: Function, module_name: str) -> ModuleType:
    """`module_name` as imported already, or imported now."""
    return sys.modules.get(module_name) or import_handler_module(function, module_name)
