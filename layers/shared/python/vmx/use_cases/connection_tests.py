"""Testing a connection: its stored credentials and configuration, with the cheapest call its provider offers.

A test never reserves capacity and never answers a secret: its result says what was called and what came of it,
in words. It runs in the completions function, with the role and the decryption that completions use, so that it
tests what a completion through the connection would meet.
"""

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from pydantic import SecretStr

from vmx.access.policy import Action, Principal, authorize
from vmx.api_model import ApiModel
from vmx.clock import Clock
from vmx.completions.calls import ProviderError
from vmx.completions.probes import Probe, ProbeFailed
from vmx.connections.config_changes import check_base_url, new_config, patched_config
from vmx.connections.models import Connection, ConnectionCreate, ConnectionPatch
from vmx.credentials.errors import CredentialsUnreadable
from vmx.errors import NotFound
from vmx.providers.addresses import AddressPolicy
from vmx.providers.catalog import PROVIDERS, ProviderId, provider_by_id
from vmx.use_cases.connections import ConnectionScope
from vmx.use_cases.credentials_cache import CredentialCache

# (provider, settings, opened secrets, timeout) -> what was called and the models it listed (vmx.completions.probes)
Prober = Callable[[ProviderId, Mapping[str, Any], Mapping[str, SecretStr], float], Probe]


class ConnectionTestOutcome(StrEnum):
    OK = "ok"
    CREDENTIALS_REFUSED = "credentials_refused"
    ACCESS_DENIED = "access_denied"
    ROLE_NOT_ASSUMABLE = "role_not_assumable"
    NOT_AVAILABLE = "not_available"
    RATE_LIMITED = "rate_limited"
    UNREACHABLE = "unreachable"
    TIMED_OUT = "timed_out"
    MISCONFIGURED = "misconfigured"
    PROVIDER_ERROR = "provider_error"


# By the code of the provider call's failure (vmx.completions.failures); any other is PROVIDER_ERROR.
_OUTCOMES = {
    "provider_authentication_failed": ConnectionTestOutcome.CREDENTIALS_REFUSED,
    "provider_access_denied": ConnectionTestOutcome.ACCESS_DENIED,
    "role_not_assumable": ConnectionTestOutcome.ROLE_NOT_ASSUMABLE,
    "provider_rate_limited": ConnectionTestOutcome.RATE_LIMITED,
    "assume_role_throttled": ConnectionTestOutcome.RATE_LIMITED,
    "assume_role_failed": ConnectionTestOutcome.UNREACHABLE,
    "provider_unreachable": ConnectionTestOutcome.UNREACHABLE,
    "provider_timeout": ConnectionTestOutcome.TIMED_OUT,
    "provider_address_refused": ConnectionTestOutcome.MISCONFIGURED,
    "credentials_unusable": ConnectionTestOutcome.MISCONFIGURED,
    "connection_misconfigured": ConnectionTestOutcome.MISCONFIGURED,
}


class ConnectionTest(ApiModel):
    """What a test of a connection called, and what came of it."""

    # None for a connection tested before it is created
    connection_id: str | None
    provider: ProviderId
    outcome: ConnectionTestOutcome
    # outcome is ok
    ok: bool
    # what came of it, in plain words, with what to do when it is not ok
    message: str
    # what was called, without a secret
    checked: str
    # allowed models the provider does not offer these credentials (only where it lists its models)
    unavailable_models: list[str]
    tested_at: datetime
    duration_ms: int


class ConnectionReader(Protocol):
    def get(self, workspace_id: str, environment_id: str, connection_id: str) -> Connection | None: ...


class ConnectionTests:
    def __init__(
        self,
        connections: ConnectionReader,
        credentials: CredentialCache,
        prober: Prober,
        clock: Clock,
        timeout_seconds: float,
        addresses: AddressPolicy,
    ):
        """`timeout_seconds`: the longest a test waits for its provider; `addresses` decides where a changed
        `baseUrl` may point, as for a create or an update."""
        self._timeout_seconds = timeout_seconds
        self._addresses = addresses
        self._connections = connections
        self._credentials = credentials
        self._prober = prober
        self._clock = clock

    def test(
        self, principal: Principal, scope: ConnectionScope, connection_id: str, changes: ConnectionPatch | None = None
    ) -> ConnectionTest:
        """Tests the stored connection, or with `changes` the connection as that update would leave it (nothing is
        stored). Raises NotFound for a connection that is not there, InvalidInput for changes an update would
        refuse, CredentialsUnavailable when KMS cannot open the stored credentials now; every answer of the
        provider, or its silence, is a result."""
        # it spends the connection's credentials at its provider: for those who manage connections
        authorize(principal, Action.MANAGE_CONNECTIONS, scope.workspace_id, scope.environment_id)
        current = self._connections.get(scope.workspace_id, scope.environment_id, connection_id)
        if current is None:
            raise NotFound(f"AI connection {connection_id} not found")
        change = None if changes is None else patched_config(current, changes)
        if change is not None:
            check_base_url(change, self._addresses)
        allowed = current.allowed_models
        if changes is not None and "allowed_models" in changes.model_fields_set:
            allowed = changes.allowed_models

        def secrets() -> Mapping[str, SecretStr]:
            if change is None:
                return self._credentials.secrets_of(current)
            kept = self._credentials.secrets_of(current) if change.kept else {}
            return {**{name: kept[name] for name in change.kept}, **change.new_secrets}

        provider = (
            current.provider if changes is None or changes.provider is None else provider_by_id(changes.provider).id
        )
        settings = current.settings if change is None else change.settings
        return self._run(_Candidate(connection_id, provider, settings, secrets, allowed))

    def test_new(self, principal: Principal, scope: ConnectionScope, draft: ConnectionCreate) -> ConnectionTest:
        """Tests a connection before it is created, from the body that would create it; nothing is stored. Raises
        InvalidInput for a configuration the create would refuse."""
        authorize(principal, Action.MANAGE_CONNECTIONS, scope.workspace_id, scope.environment_id)
        provider = provider_by_id(draft.provider)
        change = new_config(provider, draft.config)
        check_base_url(change, self._addresses)
        candidate = _Candidate(None, provider.id, change.settings, lambda: change.new_secrets, draft.allowed_models)
        return self._run(candidate)

    def _run(self, candidate: "_Candidate") -> ConnectionTest:
        name = PROVIDERS[candidate.provider].name
        started, tested_at = time.monotonic(), self._clock()

        def result(
            outcome: ConnectionTestOutcome, message: str, checked: str, unavailable: list[str] | None = None
        ) -> ConnectionTest:
            return ConnectionTest(
                connection_id=candidate.connection_id,
                provider=candidate.provider,
                outcome=outcome,
                ok=outcome is ConnectionTestOutcome.OK,
                message=message,
                checked=checked,
                unavailable_models=unavailable or [],
                tested_at=tested_at,
                duration_ms=round((time.monotonic() - started) * 1000),
            )

        try:
            secrets = candidate.secrets()
        except CredentialsUnreadable:
            message = "the connection's stored credentials cannot be read; set them again on the connection"
            return result(ConnectionTestOutcome.MISCONFIGURED, message, "nothing was called")
        try:
            probe = self._prober(candidate.provider, candidate.settings, secrets, self._timeout_seconds)
        except ProbeFailed as failed:
            outcome = _OUTCOMES.get(failed.failure.code, ConnectionTestOutcome.PROVIDER_ERROR)
            return result(outcome, failed.failure.message, failed.checked)
        except ProviderError as invalid:
            return result(ConnectionTestOutcome.MISCONFIGURED, invalid.message, "nothing was called")
        unavailable = _unavailable(candidate.allowed_models, probe)
        if unavailable:
            message = (
                f"{name} accepted the credentials but does not offer {', '.join(unavailable)} to them; "
                "change the connection's allowed models"
            )
            return result(ConnectionTestOutcome.NOT_AVAILABLE, message, probe.checked, unavailable)
        offered = "" if probe.model_ids is None else f" and lists {len(probe.model_ids)} models"
        return result(ConnectionTestOutcome.OK, f"{name} accepted the credentials{offered}", probe.checked)


@dataclass(frozen=True)
class _Candidate:
    """A connection as it is tested: stored, changed, or not yet created (no id)."""

    connection_id: str | None
    provider: ProviderId
    settings: Mapping[str, Any]
    # opened only when the test runs, so that credentials that cannot be read are a result
    secrets: Callable[[], Mapping[str, SecretStr]]
    allowed_models: list[str] | None


def _unavailable(allowed_models: list[str] | None, probe: Probe) -> list[str]:
    if probe.model_ids is None or not allowed_models:
        return []
    listed = probe.model_ids
    return [model for model in allowed_models if _listable(model) and not _offered(model, listed)]


def _offered(model: str, listed: frozenset[str]) -> bool:
    # An alias names the latest of its dated snapshots, which may be all a provider lists: Anthropic lists
    # claude-sonnet-4-5-20250929 for claude-sonnet-4-5 (and for claude-3-5-sonnet-latest, its -20241022).
    snapshot = re.compile(re.escape(model.removesuffix("-latest")) + _SNAPSHOT_DATE)
    return model in listed or any(snapshot.fullmatch(name) for name in listed)


# the dated suffix of a model snapshot: -20250929, or OpenAI's -2024-08-06
_SNAPSHOT_DATE = r"-(?:\d{8}|\d{4}-\d{2}-\d{2})"
# Bedrock's inference profiles ("us.anthropic.…", "global.…") and ARNs are not foundation models, which are all it lists
_PROFILE_PREFIXES = ("us.", "us-gov.", "eu.", "apac.", "ca.", "jp.", "au.", "global.", "arn:")


def _listable(model: str) -> bool:
    return not model.startswith(_PROFILE_PREFIXES)
