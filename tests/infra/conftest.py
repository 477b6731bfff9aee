"""One synth per test session (per xdist worker), shared by every infra test: no Docker, no AWS, no network."""

import json
import shutil
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from app import STACK_NAME
from infra.stack import (
    CONSOLE_DIR_CONTEXT,
    DEPENDENCIES_LAYER_DIR_CONTEXT,
    FUNCTIONS_DIR_CONTEXT,
    PROJECT_ROOT,
    VmxAiConnectionsStack,
)
from infra.system import CONSOLE_DIR, FUNCTIONS
from tests.infra.synthesized import Synthesized


def cdk_json_context() -> dict[str, Any]:
    """The feature flags `cdk synth` runs with, so the tests see the template that gets deployed."""
    context: dict[str, Any] = json.loads((PROJECT_ROOT / "cdk.json").read_text())["context"]
    return context


@pytest.fixture(scope="session")
def dependencies_layer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stands in for `make layer`, which needs the network."""
    folder = tmp_path_factory.mktemp("dependencies-layer")
    (folder / "python").mkdir()
    (folder / "python" / "placeholder.txt").write_text("what `make layer` builds goes here\n")
    return folder


@pytest.fixture(scope="session")
def functions_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """functions/, or a copy of it with a placeholder handler for each function still being written: the
    template does not depend on a handler's code, only on its folder being there."""
    functions = PROJECT_ROOT / "functions"
    missing = [spec.source_dir for spec in FUNCTIONS if not (functions / spec.source_dir).is_dir()]
    if not missing:
        return functions
    copy = tmp_path_factory.mktemp("functions") / "functions"
    shutil.copytree(functions, copy, ignore=shutil.ignore_patterns("__pycache__"))
    for source_dir in missing:
        (copy / source_dir).mkdir()
        (copy / source_dir / "handler.py").write_text("def lambda_handler(event, context):\n    return {}\n")
    return copy


@pytest.fixture(scope="session")
def console_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """console/, or a stand-in while it is being written: the template depends only on the folder being there."""
    console = PROJECT_ROOT / CONSOLE_DIR
    if (console / "index.html").is_file():
        return console
    stand_in = tmp_path_factory.mktemp("console")
    (stand_in / "index.html").write_text("<!doctype html><title>VM-X AI Connections</title>\n")
    return stand_in


@pytest.fixture(scope="session")
def synthesized(
    dependencies_layer_dir: Path, functions_dir: Path, console_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Synthesized:
    assembly_dir = tmp_path_factory.mktemp("cdk.out")
    app = cdk.App(
        context={
            **cdk_json_context(),
            DEPENDENCIES_LAYER_DIR_CONTEXT: str(dependencies_layer_dir),
            FUNCTIONS_DIR_CONTEXT: str(functions_dir),
            CONSOLE_DIR_CONTEXT: str(console_dir),
        },
        outdir=str(assembly_dir),
    )
    stack = VmxAiConnectionsStack(app, STACK_NAME)
    return Synthesized(stack=stack, template=Template.from_stack(stack), assembly_dir=assembly_dir)
