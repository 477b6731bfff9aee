"""The state directory: a credentials key that survives restarts, and the bootstrap file."""

import base64
import json
import stat
from pathlib import Path

import pytest

from local_stack.state import cipher_environment, credentials_key, write_bootstrap


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_key_is_made_once_private_and_reused(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"

    first = credentials_key(state_dir)
    second = credentials_key(state_dir)

    assert len(first) == 32
    assert second == first
    assert mode(state_dir / "credentials.key") == 0o600
    assert list(state_dir.iterdir()) == [state_dir / "credentials.key"]


def test_a_key_of_the_wrong_size_is_refused(tmp_path: Path) -> None:
    (tmp_path / "credentials.key").write_bytes(b"short")

    with pytest.raises(ValueError, match="32 bytes"):
        credentials_key(tmp_path)


def test_the_cipher_environment_names_sodium_and_the_base64_key() -> None:
    environment = cipher_environment(bytes(range(32)))

    assert environment["CREDENTIALS_CIPHER"] == "sodium"
    assert base64.b64decode(environment["CREDENTIALS_SODIUM_KEY"]) == bytes(range(32))


def test_the_bootstrap_file_is_private_json(tmp_path: Path) -> None:
    content = {"baseUrl": "http://127.0.0.1:3000", "apiKey": "k", "workspaceId": "w", "environmentId": "e"}

    path = write_bootstrap(tmp_path, content)

    assert json.loads(path.read_text()) == content
    assert mode(path) == 0o600
