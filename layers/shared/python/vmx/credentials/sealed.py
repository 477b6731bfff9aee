"""Sealed (encrypted) secrets and the context that binds them to one connection."""

import json
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

# The KMS encryption context of every credentials data key; the key policy in the stack requires these.
ENCRYPTION_CONTEXT_KEYS = ("workspaceId", "environmentId", "connectionId")


@dataclass(frozen=True)
class EncryptionContext:
    """Binds a ciphertext to one connection: it does not decrypt anywhere else."""

    workspace_id: str
    environment_id: str
    connection_id: str

    def as_kms_context(self) -> dict[str, str]:
        return dict(
            zip(ENCRYPTION_CONTEXT_KEYS, (self.workspace_id, self.environment_id, self.connection_id), strict=True)
        )

    def associated_data(self, field: str) -> bytes:
        """Authenticated data for one field: the context plus the field name, so fields can't be swapped."""
        return json.dumps({**self.as_kms_context(), "field": field}, sort_keys=True).encode()


class SealedSecret(BaseModel):
    """One secret field, encrypted. Every value is base64; `wrapped_key` is set for envelope ciphers."""

    model_config = ConfigDict(frozen=True)

    cipher: str
    nonce: str
    ciphertext: str
    wrapped_key: str | None = None
