"""The real local stack (`python -m local_stack`) as a subprocess, for the end-to-end and browser tests."""

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_SECONDS = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@contextmanager
def running_local_stack(run_dir: Path, *options: str) -> Iterator[dict[str, str]]:
    """Starts the local stack on a free port with `options` and yields its bootstrap.json:
    baseUrl, apiKey, workspaceId, environmentId."""
    state_dir = run_dir / "state"
    bootstrap_file = state_dir / "bootstrap.json"
    port = free_port()
    # Files, not pipes: nobody reads a pipe while the tests run, and a full one would block the stack.
    with (run_dir / "stdout.log").open("wb") as stdout, (run_dir / "stderr.log").open("wb") as stderr:
        process = subprocess.Popen(  # noqa: S603 - our own module, with arguments we chose
            [sys.executable, "-m", "local_stack", "--port", str(port), "--state-dir", str(state_dir), *options],
            cwd=REPO_ROOT,
            stdout=stdout,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not (bootstrap_file.exists() and answers(port)):
            if process.poll() is not None or time.monotonic() > deadline:
                state = f"exited with {process.returncode}" if process.returncode is not None else "timed out"
                log = (run_dir / "stderr.log").read_text(errors="replace")
                pytest.fail(f"the local stack did not start ({state}); its stderr:\n{log}", pytrace=False)
            time.sleep(0.1)
        bootstrap: dict[str, str] = json.loads(bootstrap_file.read_text())
        yield bootstrap
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with running_local_stack(tmp_path_factory.mktemp("local_stack")) as bootstrap:
        yield bootstrap
