"""The KMS envelope cipher on moto: one data key per write, bound to the connection it was made for."""

import base64
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from pydantic import SecretStr

from vmx.aws.kms_cipher import KmsCipher
from vmx.credentials.errors import CredentialsUnavailable, CredentialsUnreadable
from vmx.credentials.sealed import EncryptionContext, SealedSecret
from vmx.credentials.sodium import SodiumCipher

CONTEXT = EncryptionContext("ws-1", "env-1", "conn-1")


class CountingKms:
    """The real moto-backed client, counting the calls made through it."""

    def __init__(self, client: Any):
        self._client = client
        self.calls: list[str] = []

    def generate_data_key(self, **kwargs: Any) -> Any:
        self.calls.append("GenerateDataKey")
        return self._client.generate_data_key(**kwargs)

    def decrypt(self, **kwargs: Any) -> Any:
        self.calls.append("Decrypt")
        return self._client.decrypt(**kwargs)


@pytest.fixture
def kms(aws: None) -> Iterator[CountingKms]:
    yield CountingKms(boto3.client("kms"))


@pytest.fixture
def key_id(kms: CountingKms) -> str:
    key: str = boto3.client("kms").create_key()["KeyMetadata"]["KeyId"]
    return key


def test_secrets_round_trip_with_one_data_key_per_write(kms: CountingKms, key_id: str) -> None:
    cipher = KmsCipher(kms, key_id)  # type: ignore[arg-type]
    secrets = {"accessKeyId": SecretStr("AKIA-1"), "secretAccessKey": SecretStr("s3cr3t")}

    sealed = cipher.seal(secrets, CONTEXT)
    opened = cipher.open(sealed, CONTEXT)

    assert kms.calls == ["GenerateDataKey", "Decrypt"]
    assert {name: value.get_secret_value() for name, value in opened.items()} == {
        "accessKeyId": "AKIA-1",
        "secretAccessKey": "s3cr3t",
    }
    assert all("s3cr3t" not in sealed_secret.model_dump_json() for sealed_secret in sealed.values())


def test_a_ciphertext_copied_to_another_connection_does_not_decrypt(kms: CountingKms, key_id: str) -> None:
    cipher = KmsCipher(kms, key_id)  # type: ignore[arg-type]
    sealed = cipher.seal({"apiKey": SecretStr("sk-1")}, CONTEXT)

    with pytest.raises(CredentialsUnreadable):
        cipher.open(sealed, EncryptionContext("ws-1", "env-1", "conn-2"))


def test_fields_cannot_be_swapped(kms: CountingKms, key_id: str) -> None:
    cipher = KmsCipher(kms, key_id)  # type: ignore[arg-type]
    sealed = cipher.seal({"accessKeyId": SecretStr("a"), "secretAccessKey": SecretStr("b")}, CONTEXT)
    swapped = {"accessKeyId": sealed["secretAccessKey"], "secretAccessKey": sealed["accessKeyId"]}

    with pytest.raises(CredentialsUnreadable):
        cipher.open(swapped, CONTEXT)


def test_a_tampered_ciphertext_does_not_decrypt(kms: CountingKms, key_id: str) -> None:
    cipher = KmsCipher(kms, key_id)  # type: ignore[arg-type]
    sealed = cipher.seal({"apiKey": SecretStr("sk-1")}, CONTEXT)["apiKey"]
    tampered = SealedSecret(**{**sealed.model_dump(), "ciphertext": "AAAA" + sealed.ciphertext[4:]})

    with pytest.raises(CredentialsUnreadable):
        cipher.open({"apiKey": tampered}, CONTEXT)


def test_kms_outages_are_reported_as_unavailable_not_as_bad_input() -> None:
    client = boto3.client("kms")
    cipher = KmsCipher(client, "alias/credentials")
    with Stubber(client) as stubber:
        stubber.add_client_error("generate_data_key", service_error_code="KMSInternalException", http_status_code=500)
        with pytest.raises(CredentialsUnavailable) as raised:
            cipher.seal({"apiKey": SecretStr("sk-secret")}, CONTEXT)

    assert "sk-secret" not in str(raised.value)
    assert isinstance(raised.value.__cause__, ClientError)


def test_each_write_wraps_one_256_bit_data_key_bound_to_the_connection(kms: CountingKms, key_id: str) -> None:
    sealed = KmsCipher(kms, key_id).seal({"a": SecretStr("1"), "b": SecretStr("2")}, CONTEXT)  # type: ignore[arg-type]
    wrapped_keys = {secret.wrapped_key for secret in sealed.values()}
    assert len(wrapped_keys) == 1

    (wrapped_key,) = wrapped_keys
    assert wrapped_key is not None
    unwrapped = boto3.client("kms").decrypt(
        CiphertextBlob=base64.b64decode(wrapped_key), EncryptionContext=CONTEXT.as_kms_context()
    )
    assert len(unwrapped["Plaintext"]) == 32


def test_a_local_run_ciphertext_is_not_taken_for_a_kms_one(kms: CountingKms, key_id: str) -> None:
    local = SodiumCipher(SecretStr(base64.b64encode(os.urandom(32)).decode()))
    sealed = local.seal({"apiKey": SecretStr("sk-1")}, CONTEXT)

    with pytest.raises(CredentialsUnreadable, match="was not sealed with kms-xchacha20poly1305"):
        KmsCipher(kms, key_id).open(sealed, CONTEXT)  # type: ignore[arg-type]
    assert kms.calls == []


@pytest.mark.parametrize("part", ["nonce", "ciphertext", "wrapped_key"])
def test_a_sealed_secret_that_is_not_base64_is_unreadable(kms: CountingKms, key_id: str, part: str) -> None:
    cipher = KmsCipher(kms, key_id)  # type: ignore[arg-type]
    sealed = cipher.seal({"apiKey": SecretStr("sk-1")}, CONTEXT)["apiKey"]
    broken = SealedSecret(**{**sealed.model_dump(), part: "not base64!"})

    with pytest.raises(CredentialsUnreadable, match="not valid base64"):
        cipher.open({"apiKey": broken}, CONTEXT)
