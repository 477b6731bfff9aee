"""Envelope encryption with AWS KMS: a data key per write, AES-256-GCM over each secret field."""

import base64
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr

from vmx.credentials.errors import CredentialsUnavailable, CredentialsUnreadable
from vmx.credentials.sealed import EncryptionContext, SealedSecret

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

CIPHER_NAME = "kms-aes-256-gcm"
_NONCE_BYTES = 12


class KmsCipher:
    def __init__(self, kms: "KMSClient", key_id: str):
        self._kms = kms
        self._key_id = key_id

    def seal(self, secrets: Mapping[str, SecretStr], context: EncryptionContext) -> dict[str, SealedSecret]:
        if not secrets:
            return {}
        try:
            data_key = self._kms.generate_data_key(
                KeyId=self._key_id, KeySpec="AES_256", EncryptionContext=context.as_kms_context()
            )
        except (ClientError, BotoCoreError) as exc:
            raise CredentialsUnavailable(f"KMS could not generate a data key ({_code(exc)})") from exc
        aead = AESGCM(data_key["Plaintext"])
        wrapped_key = _b64(data_key["CiphertextBlob"])
        sealed = {}
        for field, secret in secrets.items():
            nonce = os.urandom(_NONCE_BYTES)
            ciphertext = aead.encrypt(nonce, secret.get_secret_value().encode(), context.associated_data(field))
            sealed[field] = SealedSecret(
                cipher=CIPHER_NAME, nonce=_b64(nonce), ciphertext=_b64(ciphertext), wrapped_key=wrapped_key
            )
        return sealed

    def open(self, sealed: Mapping[str, SealedSecret], context: EncryptionContext) -> dict[str, SecretStr]:
        data_keys: dict[str, AESGCM] = {}
        opened = {}
        for field, secret in sealed.items():
            if secret.cipher != CIPHER_NAME or secret.wrapped_key is None:
                raise CredentialsUnreadable(f"field {field} was not sealed with {CIPHER_NAME}")
            if secret.wrapped_key not in data_keys:
                data_keys[secret.wrapped_key] = AESGCM(self._unwrap(secret.wrapped_key, context))
            try:
                plaintext = data_keys[secret.wrapped_key].decrypt(
                    _unb64(secret.nonce), _unb64(secret.ciphertext), context.associated_data(field)
                )
            except InvalidTag as exc:
                raise CredentialsUnreadable(f"field {field} does not belong to this connection") from exc
            opened[field] = SecretStr(plaintext.decode())
        return opened

    def _unwrap(self, wrapped_key: str, context: EncryptionContext) -> bytes:
        try:
            response = self._kms.decrypt(
                CiphertextBlob=_unb64(wrapped_key),
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


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise CredentialsUnreadable("a sealed secret is not valid base64") from exc


def _code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "unknown"))
    return type(exc).__name__
