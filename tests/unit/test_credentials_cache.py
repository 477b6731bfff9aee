"""Decrypted credentials are opened once per connection version in a warm function."""

from collections.abc import Mapping
from datetime import UTC, datetime

from pydantic import SecretStr

from tests.fakes import FakeCipher
from tests.unit.builders import connection_record
from vmx.connections.models import Connection
from vmx.credentials.sealed import EncryptionContext, SealedSecret
from vmx.use_cases.credentials_cache import CredentialCache

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class CountingCipher(FakeCipher):
    def __init__(self) -> None:
        self.opened = 0

    def open(self, sealed: Mapping[str, SealedSecret], context: EncryptionContext) -> dict[str, SecretStr]:
        self.opened += 1
        return super().open(sealed, context)


def connection(cipher: FakeCipher, secret: str, version: int) -> Connection:
    context = EncryptionContext("ws", "env", "conn")
    return connection_record(
        at=NOW,
        connection_id="conn",
        name="c",
        secrets=cipher.seal({"apiKey": SecretStr(secret)}, context),
        version=version,
    )


def test_a_warm_request_for_an_unchanged_connection_does_not_decrypt() -> None:
    cipher = CountingCipher()
    cache = CredentialCache(cipher)
    stored = connection(cipher, "sk-one", version=1)

    first = cache.secrets_of(stored)
    second = cache.secrets_of(stored)

    assert cipher.opened == 1
    assert first["apiKey"].get_secret_value() == second["apiKey"].get_secret_value() == "sk-one"


def test_a_new_version_is_decrypted_afresh() -> None:
    cipher = CountingCipher()
    cache = CredentialCache(cipher)
    cache.secrets_of(connection(cipher, "sk-one", version=1))

    rotated = cache.secrets_of(connection(cipher, "sk-two", version=2))

    assert cipher.opened == 2
    assert rotated["apiKey"].get_secret_value() == "sk-two"
