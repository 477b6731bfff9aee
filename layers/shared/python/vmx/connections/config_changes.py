"""Provider configuration on create and on update: validation, merging and what happens to secrets."""

from dataclasses import dataclass, field
from typing import Any, NoReturn

from pydantic import SecretStr, ValidationError

from vmx.connections.models import MASK, Connection, ConnectionPatch
from vmx.errors import ErrorDetail, InvalidInput
from vmx.providers.addresses import AddressPolicy, AddressRefused
from vmx.providers.catalog import Provider, provider_by_id
from vmx.validation import error_details, summary


@dataclass(frozen=True)
class ConfigChange:
    settings: dict[str, Any]
    # secrets to seal now; fields not named here or in `kept` are gone
    new_secrets: dict[str, SecretStr] = field(default_factory=dict)
    kept: frozenset[str] = frozenset()

    @property
    def touches_credentials(self) -> bool:
        return bool(self.new_secrets)


def new_config(provider: Provider, raw: dict[str, Any]) -> ConfigChange:
    """A complete configuration: on create, or when a connection changes provider."""
    for name in provider.secret_fields:
        if raw.get(name) == MASK:
            _refuse(name, f"'{MASK}' stands for a stored secret and there is none here; send the secret itself")
    return _split(provider, _validated(provider, raw), kept=frozenset())


def merged_config(
    provider: Provider, settings: dict[str, Any], stored_secrets: frozenset[str], patch: dict[str, Any]
) -> ConfigChange:
    """Applies a JSON merge patch to a stored configuration; secrets left out (or sent masked) are kept."""
    current = {**settings, **dict.fromkeys(stored_secrets, MASK)}
    merged = merge_patch(current, patch)
    masked = {name for name in provider.secret_fields if merged.get(name) == MASK}
    for name in masked - stored_secrets:
        _refuse(name, f"'{MASK}' stands for a stored secret and there is none here; send the secret itself")
    for name in provider.credential_bound_fields:
        if merged.get(name) != current.get(name) and masked:
            _refuse(
                name,
                f"changing {name} sends the stored credentials somewhere new; resend "
                + ", ".join(sorted(masked))
                + " with it",
            )
    return _split(provider, _validated(provider, merged), kept=frozenset(masked))


def patched_config(current: Connection, patch: ConnectionPatch) -> ConfigChange | None:
    """The configuration an update leaves: complete when it changes the provider, else merged into the stored one;
    None when it leaves the configuration alone."""
    if patch.provider is not None and provider_by_id(patch.provider).id != current.provider:
        if patch.config is None:
            message = f"changing the provider to '{patch.provider}' requires its complete config"
            raise InvalidInput(f"config: {message}", [ErrorDetail(field="config", message=message)])
        return new_config(provider_by_id(patch.provider), patch.config)
    if patch.config is None:
        return None
    provider = provider_by_id(current.provider)
    return merged_config(provider, current.settings, frozenset(current.secrets), patch.config)


def check_base_url(change: ConfigChange, addresses: AddressPolicy) -> None:
    """Refuses a `baseUrl` the gateway would not send credentials to (vmx.providers.addresses)."""
    base_url = change.settings.get("baseUrl")
    if base_url is None:
        return
    try:
        addresses.check_url(base_url)
    except AddressRefused as refused:
        _refuse("baseUrl", f"the gateway does not send credentials there: {refused}")


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7396: objects merge recursively, null removes a member, anything else replaces."""
    result = dict(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            current = result.get(key)
            result[key] = merge_patch(current if isinstance(current, dict) else {}, value)
        else:
            result[key] = value
    return result


def _validated(provider: Provider, raw: dict[str, Any]) -> dict[str, Any]:
    try:
        config = provider.config_model.model_validate(raw)
    except ValidationError as exc:
        details = error_details(exc.errors(include_input=False, include_url=False), prefix=("config",))
        raise InvalidInput(summary(details), details) from None
    return config.model_dump(mode="python", by_alias=True, exclude_none=True)


def _split(provider: Provider, config: dict[str, Any], kept: frozenset[str]) -> ConfigChange:
    secret_names = provider.secret_fields
    settings = {name: value for name, value in config.items() if name not in secret_names}
    new_secrets = {name: value for name, value in config.items() if name in secret_names and name not in kept}
    return ConfigChange(settings=settings, new_secrets=new_secrets, kept=kept)


def _refuse(name: str, message: str) -> NoReturn:
    detail = ErrorDetail(field=f"config.{name}", message=message)
    raise InvalidInput(f"config.{name}: {message}", [detail])
