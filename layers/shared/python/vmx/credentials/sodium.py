"""Local-run encryption with libsodium: XChaCha20-Poly1305 with the connection's context as associated data."""

import base64
from collections.abc import Mapping

from nacl import bindings, utils
from nacl.exceptions import CryptoError
from pydantic import SecretStr

from vmx.credentials.errors import CredentialsUnreadable
from vmx.credentials.sealed import EncryptionContext, SealedSecret

CIPHER_NAME = "sodium-xchacha20poly1305"


class SodiumCipher:
    def __init__(self, key: SecretStr):
        raw = base64.b64decode(key.get_secret_value())
        if len(raw) != bindings.crypto_aead_xchacha20poly1305_ietf_KEYBYTES:
            raise ValueError("the libsodium key must be 32 bytes, base64-encoded")
        self._key = raw

    def seal(self, secrets: Mapping[str, SecretStr], context: EncryptionContext) -> dict[str, SealedSecret]:
        sealed = {}
        for field, secret in secrets.items():
            nonce = utils.random(bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES)
            ciphertext = bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
                secret.get_secret_value().encode(), context.associated_data(field), nonce, self._key
            )
            sealed[field] = SealedSecret(
                cipher=CIPHER_NAME,
                nonce=base64.b64encode(nonce).decode(),
                ciphertext=base64.b64encode(ciphertext).decode(),
            )
        return sealed

    def open(self, sealed: Mapping[str, SealedSecret], context: EncryptionContext) -> dict[str, SecretStr]:
        opened = {}
        for field, secret in sealed.items():
            if secret.cipher != CIPHER_NAME:
                raise CredentialsUnreadable(f"field {field} was not sealed with {CIPHER_NAME}")
            try:
                plaintext = bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
                    base64.b64decode(secret.ciphertext, validate=True),
                    context.associated_data(field),
                    base64.b64decode(secret.nonce, validate=True),
                    self._key,
                )
            except (CryptoError, ValueError) as exc:
                raise CredentialsUnreadable(f"field {field} does not belong to this connection") from exc
            opened[field] = SecretStr(plaintext.decode())
        return opened
