"""libsodium sealing for local runs: a ciphertext opens only for the connection and field it was sealed for."""

import base64
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from vmx.credentials.errors import CredentialsUnreadable
from vmx.credentials.sealed import EncryptionContext, SealedSecret
from vmx.credentials.sodium import SodiumCipher

CONTEXT = EncryptionContext("ws-acme", "env-production", "conn-1")
SECRETS = {"accessKeyId": SecretStr("AKIAEXAMPLE"), "secretAccessKey": SecretStr("wJalrXUtnFEMI/K7MDENG")}


def new_key() -> SecretStr:
    return SecretStr(base64.b64encode(os.urandom(32)).decode())


@pytest.fixture
def cipher() -> SodiumCipher:
    return SodiumCipher(new_key())


def revealed(secrets: dict[str, SecretStr]) -> dict[str, str]:
    return {name: secret.get_secret_value() for name, secret in secrets.items()}


def flip_a_bit(text: str, position: int) -> str:
    data = bytearray(base64.b64decode(text))
    data[position % len(data)] ^= 0x01
    return base64.b64encode(bytes(data)).decode()


def test_sealed_secrets_open_for_their_connection(cipher: SodiumCipher) -> None:
    sealed = cipher.seal(SECRETS, CONTEXT)

    assert set(sealed) == set(SECRETS)
    assert revealed(cipher.open(sealed, CONTEXT)) == revealed(SECRETS)


@settings(max_examples=30, deadline=None)
@given(st.dictionaries(st.sampled_from(["apiKey", "accessKeyId", "sessionToken"]), st.text(max_size=300)))
def test_any_text_round_trips(secrets: dict[str, str]) -> None:
    cipher = SodiumCipher(new_key())

    sealed = cipher.seal({name: SecretStr(value) for name, value in secrets.items()}, CONTEXT)

    assert revealed(cipher.open(sealed, CONTEXT)) == secrets


@pytest.mark.parametrize(
    "other",
    [
        EncryptionContext("ws-globex", "env-production", "conn-1"),
        EncryptionContext("ws-acme", "env-staging", "conn-1"),
        EncryptionContext("ws-acme", "env-production", "conn-2"),
    ],
)
def test_a_ciphertext_does_not_open_for_another_connection(cipher: SodiumCipher, other: EncryptionContext) -> None:
    sealed = cipher.seal(SECRETS, CONTEXT)

    with pytest.raises(CredentialsUnreadable):
        cipher.open(sealed, other)


def test_two_fields_ciphertexts_cannot_be_swapped(cipher: SodiumCipher) -> None:
    sealed = cipher.seal(SECRETS, CONTEXT)
    swapped = {"accessKeyId": sealed["secretAccessKey"], "secretAccessKey": sealed["accessKeyId"]}

    with pytest.raises(CredentialsUnreadable):
        cipher.open(swapped, CONTEXT)


@pytest.mark.parametrize("part", ["ciphertext", "nonce"])
@pytest.mark.parametrize("position", [0, 7, -1])
def test_a_tampered_ciphertext_does_not_open(cipher: SodiumCipher, part: str, position: int) -> None:
    sealed = cipher.seal({"apiKey": SecretStr("sk-1")}, CONTEXT)["apiKey"]
    tampered = sealed.model_copy(update={part: flip_a_bit(getattr(sealed, part), position)})

    with pytest.raises(CredentialsUnreadable):
        cipher.open({"apiKey": tampered}, CONTEXT)


@pytest.mark.parametrize(
    "ciphertext",
    [
        pytest.param("", id="empty"),
        pytest.param(
            base64.b64encode(b"too short").decode(),
            id="shorter-than-the-tag",
        ),
        pytest.param("not base64!", id="not-base64"),
        pytest.param(base64.b64encode(b"x" * 40).decode(), id="forged"),
    ],
)
def test_a_malformed_ciphertext_is_unreadable(cipher: SodiumCipher, ciphertext: str) -> None:
    sealed = cipher.seal({"apiKey": SecretStr("sk-1")}, CONTEXT)["apiKey"]

    with pytest.raises(CredentialsUnreadable):
        cipher.open({"apiKey": sealed.model_copy(update={"ciphertext": ciphertext})}, CONTEXT)


def test_a_ciphertext_does_not_open_under_another_key(cipher: SodiumCipher) -> None:
    sealed = cipher.seal(SECRETS, CONTEXT)

    with pytest.raises(CredentialsUnreadable):
        SodiumCipher(new_key()).open(sealed, CONTEXT)


def test_a_secret_sealed_by_another_cipher_is_unreadable(cipher: SodiumCipher) -> None:
    sealed = cipher.seal({"apiKey": SecretStr("sk-1")}, CONTEXT)["apiKey"]
    foreign = SealedSecret(
        cipher="kms-xchacha20poly1305", nonce=sealed.nonce, ciphertext=sealed.ciphertext, wrapped_key="k"
    )

    with pytest.raises(CredentialsUnreadable):
        cipher.open({"apiKey": foreign}, CONTEXT)


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_a_key_of_the_wrong_length_is_refused(size: int) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        SodiumCipher(SecretStr(base64.b64encode(os.urandom(size)).decode()))


def test_the_secret_never_appears_in_the_sealed_output(cipher: SodiumCipher) -> None:
    secret = "sk-CANARY-a3f9e1c7d5b2"

    sealed = cipher.seal({"apiKey": SecretStr(secret)}, CONTEXT)["apiKey"]

    dumped = sealed.model_dump_json()
    assert secret not in dumped
    assert base64.b64encode(secret.encode()).decode() not in dumped
    assert sealed.wrapped_key is None


def test_each_sealing_uses_a_fresh_nonce(cipher: SodiumCipher) -> None:
    first = cipher.seal({"apiKey": SecretStr("sk-1")}, CONTEXT)["apiKey"]
    second = cipher.seal({"apiKey": SecretStr("sk-1")}, CONTEXT)["apiKey"]

    assert first.nonce != second.nonce
    assert first.ciphertext != second.ciphertext


def test_nothing_to_seal_seals_nothing(cipher: SodiumCipher) -> None:
    assert cipher.seal({}, CONTEXT) == {}
    assert cipher.open({}, CONTEXT) == {}
