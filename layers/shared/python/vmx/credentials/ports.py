from collections.abc import Mapping
from typing import Protocol

from pydantic import SecretStr

from vmx.credentials.sealed import EncryptionContext, SealedSecret


class CredentialCipher(Protocol):
    def seal(self, secrets: Mapping[str, SecretStr], context: EncryptionContext) -> dict[str, SealedSecret]:
        """Encrypt each secret field; one data key covers the whole call."""
        ...

    def open(self, sealed: Mapping[str, SealedSecret], context: EncryptionContext) -> dict[str, SecretStr]:
        """Decrypt in memory; raises CredentialsUnreadable when the context or ciphertext does not match."""
        ...
