"""Turns an Authorization header into the API key it presents, or None."""

from vmx.access.keys import parse_key, secret_matches
from vmx.tenancy.models import ApiKey
from vmx.tenancy.ports import TenancyRepository

_SCHEME = "bearer "


def authenticate(tenancy: TenancyRepository, authorization: str | None) -> ApiKey | None:
    if not authorization or authorization[: len(_SCHEME)].lower() != _SCHEME:
        return None
    presented = parse_key(authorization[len(_SCHEME) :].strip())
    if presented is None:
        return None
    key = tenancy.get_api_key(presented.key_id)
    if key is None or key.revoked_at is not None or not secret_matches(presented, key.secret_hash):
        return None
    # a key left behind by an interrupted workspace delete must not outlive its workspace
    if tenancy.get_workspace(key.workspace_id) is None:
        return None
    return key
