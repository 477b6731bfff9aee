"""API key tokens: `vmx_<keyId>_<secret>`, of which only a hash of the secret is kept."""

import base64
import dataclasses
import hashlib
import re
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from vmx.access.keys import NewKey, PresentedKey, issue_key, parse_key, secret_matches

TOKEN_FORMAT = re.compile(r"vmx_(?P<key_id>[0-9a-f-]{36})_(?P<secret>[A-Za-z0-9_-]{43})")
URLSAFE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def secret_of(new_key: NewKey) -> str:
    match = TOKEN_FORMAT.fullmatch(new_key.token.get_secret_value())
    assert match is not None
    return match["secret"]


def test_an_issued_token_is_vmx_key_id_secret() -> None:
    new_key = issue_key()

    match = TOKEN_FORMAT.fullmatch(new_key.token.get_secret_value())

    assert match is not None
    assert match["key_id"] == new_key.key_id
    assert uuid.UUID(new_key.key_id).version == 4


def test_the_secret_carries_32_random_bytes() -> None:
    secrets = [secret_of(issue_key()) for _ in range(20)]

    assert all(len(base64.urlsafe_b64decode(secret + "=")) == 32 for secret in secrets)
    assert len(set(secrets)) == len(secrets)


def test_only_a_hash_of_the_secret_is_kept_besides_the_token() -> None:
    new_key = issue_key()
    secret = secret_of(new_key)

    assert {field.name for field in dataclasses.fields(NewKey)} == {"key_id", "token", "secret_hash"}
    assert new_key.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in new_key.secret_hash
    assert secret not in new_key.key_id
    assert secret not in repr(new_key)


def test_a_parsed_token_matches_its_hash() -> None:
    new_key = issue_key()

    presented = parse_key(new_key.token.get_secret_value())

    assert presented is not None
    assert presented.key_id == new_key.key_id
    assert secret_matches(presented, new_key.secret_hash)


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet=URLSAFE_ALPHABET, min_size=43, max_size=43))
def test_any_other_secret_does_not_match(other_secret: str) -> None:
    new_key = issue_key()
    tampered = f"vmx_{new_key.key_id}_{other_secret}"

    presented = parse_key(tampered)

    assert presented is not None
    assert secret_matches(presented, new_key.secret_hash) is (other_secret == secret_of(new_key))


def test_a_secret_with_one_character_changed_does_not_match() -> None:
    new_key = issue_key()
    secret = secret_of(new_key)
    changed = secret[:10] + ("A" if secret[10] != "A" else "B") + secret[11:]

    presented = PresentedKey(key_id=new_key.key_id, secret=SecretStr(changed))

    assert not secret_matches(presented, new_key.secret_hash)


KEY_ID = "0b7c9f5e-3d1a-4c2b-9e8f-1a2b3c4d5e6f"
SECRET = "A" * 43


@pytest.mark.parametrize(
    "token",
    [
        "",
        "vmx_",
        f"{KEY_ID}_{SECRET}",
        f"sk_{KEY_ID}_{SECRET}",
        f"VMX_{KEY_ID}_{SECRET}",
        f"vmx_{KEY_ID.upper()}_{SECRET}",
        f"vmx_{KEY_ID}_{SECRET[:-1]}",
        f"vmx_{KEY_ID}_{SECRET}A",
        f"vmx_{KEY_ID}_{'A' * 42}=",
        f"vmx_{KEY_ID}_{'A' * 42}+",
        f"vmx_{KEY_ID}{SECRET}",
        f"vmx_0b7c9f5e-3d1a-1c2b-9e8f-1a2b3c4d5e6f_{SECRET}",
        f"vmx_{KEY_ID}_{SECRET} x",
        f"Bearer vmx_{KEY_ID}_{SECRET}",
        f" vmx_{KEY_ID}_{SECRET}",
    ],
)
def test_anything_but_the_token_format_is_not_parsed(token: str) -> None:
    assert parse_key(token) is None


def test_the_well_formed_token_behind_that_table_parses() -> None:
    assert parse_key(f"vmx_{KEY_ID}_{SECRET}") == PresentedKey(key_id=KEY_ID, secret=SecretStr(SECRET))
