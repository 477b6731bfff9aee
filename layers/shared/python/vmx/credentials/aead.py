"""The one authenticated cipher both credential ciphers use: libsodium's XChaCha20-Poly1305 (IETF).

Its 192-bit nonces are drawn at random per field, with no birthday bound to keep count of, and libsodium is
one small native module where `cryptography` would add 10 MB to every function that opens credentials.
"""

import base64

from nacl import bindings, utils
from nacl.exceptions import CryptoError

from vmx.credentials.errors import CredentialsUnreadable

KEY_BYTES = bindings.crypto_aead_xchacha20poly1305_ietf_KEYBYTES


def encrypt(key: bytes, plaintext: str, associated_data: bytes) -> tuple[str, str]:
    """Returns the nonce and the ciphertext, both base64."""
    nonce = utils.random(bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES)
    ciphertext = bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext.encode(), associated_data, nonce, key)
    return b64(nonce), b64(ciphertext)


def decrypt(key: bytes, nonce: str, ciphertext: str, associated_data: bytes, field: str) -> str:
    sealed_bytes, nonce_bytes = unb64(ciphertext), unb64(nonce)
    try:
        plaintext = bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(sealed_bytes, associated_data, nonce_bytes, key)
    except (CryptoError, ValueError) as exc:  # PyNaCl raises ValueError for a ciphertext shorter than its tag
        raise CredentialsUnreadable(f"field {field} does not belong to this connection") from exc
    return plaintext.decode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise CredentialsUnreadable("a sealed secret is not valid base64") from exc
