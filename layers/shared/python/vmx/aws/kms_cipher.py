"""Envelope encryption with AWS KMS: a 256-bit data key per write, XChaCha20-Poly1305 over each secret field."""

from collections.abc import Mapping
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import SecretStr

from vmx.credentials import aead
from vmx.credentials.errors import CredentialsUnavailable, CredentialsUnreadable
from vmx.credentials.sealed import EncryptionContext, SealedSecret

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

CIPHER_NAME = "kms-xchacha20poly1305"


class KmsCipher:
    def __init__(self, kms: "KMSClient", key_id: str):
        self._kms = kms
        self._key_id = key_id

    def seal(self, secrets: Mapping[str, SecretStr], context: EncryptionContext) -> dict[str, SealedSecret]:
        if not secrets:
            return {}
        try:
            data_key = self._kms.generate_data_key(
                KeyId=self._key_id, NumberOfBytes=aead.KEY_BYTES, EncryptionContext=context.as_kms_context()
            )
        except (ClientError, BotoCoreError) as exc:
            raise CredentialsUnavailable(f"KMS could not generate a data key ({_code(exc)})") from exc
        wrapped_key = aead.b64(data_key["CiphertextBlob"])
        sealed = {}
        for field, secret in secrets.items():
            nonce, ciphertext = aead.encrypt(
                data_key["Plaintext"], secret.get_secret_value(), context.associated_data(field)
            )
            sealed[field] = SealedSecret(
                cipher=CIPHER_NAME, nonce=nonce, ciphertext=ciphertext, wrapped_key=wrapped_key
            )
        return sealed

    def open(self, sealed: Mapping[str, SealedSecret], context: EncryptionContext) -> dict[str, SecretStr]:
        data_keys: dict[str, bytes] = {}
        opened = {}
        for field, secret in sealed.items():
            if secret.cipher != CIPHER_NAME or secret.wrapped_key is None:
                raise CredentialsUnreadable(f"field {field} was not sealed with {CIPHER_NAME}")
            if secret.wrapped_key not in data_keys:
                data_keys[secret.wrapped_key] = self._unwrap(secret.wrapped_key, context)
            plaintext = aead.decrypt(
                data_keys[secret.wrapped_key], secret.nonce, secret.ciphertext, context.associated_data(field), field
            )
            opened[field] = SecretStr(plaintext)
        return opened

    def _unwrap(self, wrapped_key: str, context: EncryptionContext) -> bytes:
        try:
            response = self._kms.decrypt(
                CiphertextBlob=aead.unb64(wrapped_key),
                EncryptionContext=context.as_kms_context(),
                KeyId=self._key_id,
            )
        except ClientError as exc:
            if _code(exc) in ("InvalidCiphertextException", "IncorrectKeyException"):
                raise CredentialsUnreadable("KMS refused to unwrap the data key for this connection") from exc
            raise CredentialsUnavailable(f"KMS could not unwrap the data key ({_code(exc)})") from exc
        except BotoCoreError as exc:
            raise CredentialsUnavailable(f"KMS could not be reached ({_code(exc)})") from exc
        return response["Plaintext"]


def _code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "unknown"))
    return type(exc).__name__
