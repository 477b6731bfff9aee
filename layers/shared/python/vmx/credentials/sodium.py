"""Local-run encryption with libsodium: one key from the environment, the connection's context as associated data."""

import base64
from collections.abc import Mapping

from pydantic import SecretStr

from vmx.credentials import aead
from vmx.credentials.errors import CredentialsUnreadable
from vmx.credentials.sealed import EncryptionContext, SealedSecret

CIPHER_NAME = "sodium-xchacha20poly1305"


class SodiumCipher:
    def __init__(self, key: SecretStr):
        raw = base64.b64decode(key.get_secret_value())
        if len(raw) != aead.KEY_BYTES:
            raise ValueError("the libsodium key must be 32 bytes, base64-encoded")
        self._key = raw

    def seal(self, secrets: Mapping[str, SecretStr], context: EncryptionContext) -> dict[str, SealedSecret]:
        sealed = {}
        for field, secret in secrets.items():
            nonce, ciphertext = aead.encrypt(self._key, secret.get_secret_value(), context.associated_data(field))
            sealed[field] = SealedSecret(cipher=CIPHER_NAME, nonce=nonce, ciphertext=ciphertext)
        return sealed

    def open(self, sealed: Mapping[str, SealedSecret], context: EncryptionContext) -> dict[str, SecretStr]:
        opened = {}
        for field, secret in sealed.items():
            if secret.cipher != CIPHER_NAME:
                raise CredentialsUnreadable(f"field {field} was not sealed with {CIPHER_NAME}")
            plaintext = aead.decrypt(self._key, secret.nonce, secret.ciphertext, context.associated_data(field), field)
            opened[field] = SecretStr(plaintext)
        return opened
