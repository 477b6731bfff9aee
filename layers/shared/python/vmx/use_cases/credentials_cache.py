"""Decrypted credentials, kept in this warm function's memory only, per connection version.

A warm request for an unchanged connection makes no KMS call; any change to the connection (a rotated
secret included) bumps its version, so the next request decrypts afresh.
"""

import threading

from pydantic import SecretStr

from vmx.connections.models import Connection
from vmx.credentials.ports import CredentialCipher


class CredentialCache:
    def __init__(self, cipher: CredentialCipher):
        self._cipher = cipher
        self._opened: dict[str, tuple[int, dict[str, SecretStr]]] = {}
        self._lock = threading.Lock()

    def secrets_of(self, connection: Connection) -> dict[str, SecretStr]:
        with self._lock:
            cached = self._opened.get(connection.connection_id)
        if cached is not None and cached[0] == connection.version:
            return cached[1]
        secrets = self._cipher.open(connection.secrets, connection.encryption_context)
        with self._lock:
            self._opened[connection.connection_id] = (connection.version, secrets)
        return secrets
