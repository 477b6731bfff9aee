"""What the local stack keeps in its state directory: the credentials key and the bootstrap file."""

import base64
import json
import os
from pathlib import Path

import nacl.secret
import nacl.utils

CREDENTIALS_KEY_FILE = "credentials.key"
BOOTSTRAP_FILE = "bootstrap.json"


def credentials_key(state_dir: Path) -> bytes:
    """Returns the libsodium key in `<state_dir>/credentials.key`, making it on first start.

    Unlike the data it survives restarts, as a KMS key outlives deployments in AWS.
    """
    path = state_dir / CREDENTIALS_KEY_FILE
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        key = nacl.utils.random(nacl.secret.Aead.KEY_SIZE)
        write_private_file(path, key)
        return key
    if len(key) != nacl.secret.Aead.KEY_SIZE:
        raise ValueError(f"{path} must hold {nacl.secret.Aead.KEY_SIZE} bytes; delete it to make a new key")
    return key


def cipher_environment(key: bytes) -> dict[str, str]:
    return {"CREDENTIALS_CIPHER": "sodium", "CREDENTIALS_SODIUM_KEY": base64.b64encode(key).decode("ascii")}


def write_bootstrap(state_dir: Path, bootstrap: dict[str, str]) -> Path:
    path = state_dir / BOOTSTRAP_FILE
    write_private_file(path, (json.dumps(bootstrap, indent=2) + "\n").encode())
    return path


def write_private_file(path: Path, content: bytes) -> None:
    """Writes a file only its owner can read, whole or not at all: readers poll for it to appear."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(content)
    partial.replace(path)
