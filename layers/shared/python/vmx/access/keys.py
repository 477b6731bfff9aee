"""API key material: `vmx_<keyId>_<secret>`, where the secret is 32 random bytes and only its hash is kept.

The key id inside the token lets the authorizer fetch one item by primary key; a fast hash is enough
because the secret has 256 bits of entropy (nothing to brute-force, unlike a password).
"""

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass

from pydantic import SecretStr

PREFIX = "vmx_"
_SECRET_BYTES = 32
_TOKEN = re.compile(r"^vmx_([0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})_([A-Za-z0-9_-]{43})")


@dataclass(frozen=True)
class NewKey:
    key_id: str
    token: SecretStr
    secret_hash: str


@dataclass(frozen=True)
class PresentedKey:
    key_id: str
    secret: SecretStr


def issue_key() -> NewKey:
    key_id = str(uuid.uuid4())
    secret = secrets.token_urlsafe(_SECRET_BYTES)
    return NewKey(key_id=key_id, token=SecretStr(f"{PREFIX}{key_id}_{secret}"), secret_hash=hash_secret(secret))


def parse_key(token: str) -> PresentedKey | None:
    match = _TOKEN.fullmatch(token)
    if match is None:
        return None
    return PresentedKey(key_id=match.group(1), secret=SecretStr(match.group(2)))


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(presented: PresentedKey, secret_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(presented.secret.get_secret_value()), secret_hash)
