"""Bedrock clients for connections: through an IAM role assumed with STS (credentials cached), or static keys."""

import functools
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import SecretStr

from vmx.clock import Clock, utc_now
from vmx.completions.calls import AwsCredentials, BedrockAccess, ProviderError

if TYPE_CHECKING:
    import boto3

ROLE_SESSION_NAME = "vmx-ai-connections"
# Assumed credentials last an hour; they are replaced this long before they expire, so that no call starts
# with credentials that run out while it waits for the model.
REFRESH_MARGIN = timedelta(minutes=5)
# Bedrock's endpoints answer a connection in milliseconds; nearly all of the time budget goes to the model.
_CONNECT_TIMEOUT_SECONDS = 2.0
# STS's codes for a caller over its request rate
_THROTTLED = frozenset({"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"})
# One client per (region, credentials, timeout): building one costs tens of milliseconds.
_CLIENTS_KEPT = 32


class AssumedRoles:
    """Assumes connections' IAM roles, keeping each role's credentials until shortly before they expire."""

    def __init__(self, sts: Any, clock: Clock = utc_now):
        self._sts = sts
        self._clock = clock
        # by role and external ID: a connection naming a role with the wrong ID must not reuse another's success
        self._cached: dict[tuple[str, str | None], tuple[AwsCredentials, datetime]] = {}

    def credentials(self, role_arn: str, external_id: str | None = None) -> AwsCredentials:
        cached = self._cached.get((role_arn, external_id))
        if cached is not None and self._clock() < cached[1] - REFRESH_MARGIN:
            return cached[0]
        params = {"RoleArn": role_arn, "RoleSessionName": ROLE_SESSION_NAME}
        if external_id is not None:
            params["ExternalId"] = external_id
        try:
            answer = self._sts.assume_role(**params)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "unknown")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
            # after the STS client's own retries: the role may be fine, STS is busy or failing
            if code in _THROTTLED:
                message = f"AWS STS is throttling the gateway's AssumeRole calls ({code}); try again shortly"
                raise ProviderError(503, "assume_role_throttled", message, retry_after="1", reached=False) from exc
            if status >= 500:
                message = f"AWS STS failed to assume the AI connection's IAM role ({code}); try again shortly"
                raise ProviderError(503, "assume_role_failed", message, retry_after="1", reached=False) from exc
            message = (
                f"the gateway could not assume the AI connection's IAM role {role_arn} ({code}); "
                "check that the role's trust policy admits the gateway"
            )
            raise ProviderError(502, "role_not_assumable", message, reached=False) from exc
        except BotoCoreError as exc:
            message = "AWS STS could not be reached to assume the AI connection's IAM role"
            raise ProviderError(502, "provider_unreachable", message, reached=False) from exc
        issued = answer["Credentials"]
        credentials = AwsCredentials(
            SecretStr(issued["AccessKeyId"]), SecretStr(issued["SecretAccessKey"]), SecretStr(issued["SessionToken"])
        )
        self._cached[(role_arn, external_id)] = (credentials, issued["Expiration"])
        return credentials


class BedrockClients:
    """Bedrock runtime clients per access (kept), and the list of Bedrock's models with an access's credentials."""

    def __init__(self, roles: AssumedRoles, endpoint_url: str | None):
        # boto3 when the first Bedrock client is wanted, not with every function that imports the provider calls
        import boto3

        self._roles = roles
        self._session = boto3.session.Session()
        self._endpoint_url = endpoint_url
        self._client = functools.lru_cache(maxsize=_CLIENTS_KEPT)(self._runtime_client)

    def __call__(self, access: BedrockAccess, timeout_seconds: float) -> Any:
        # A whole answer's timeout is the invocation's time left, different on every call: floored to the minute
        # it picks one of a few kept clients instead of building one per call.
        kept_timeout = timeout_seconds if timeout_seconds < 60 else 60 * (timeout_seconds // 60)
        return self._client(access.region, credentials_for(access, self._roles), kept_timeout)

    def _runtime_client(self, region: str, credentials: AwsCredentials, timeout_seconds: float) -> Any:
        return _new_client("bedrock-runtime", self._session, self._endpoint_url, region, credentials, timeout_seconds)

    def model_ids(self, access: BedrockAccess, provider: str, timeout_seconds: float) -> list[str]:
        """The foundation models Bedrock offers in the access's region (vmx.completions.probes)."""
        # here, not with the module: the Bedrock quotas function reads roles through this module, never a model
        from vmx.completions.bedrock import sdk_failure

        credentials = credentials_for(access, self._roles)
        client = _new_client("bedrock", self._session, self._endpoint_url, access.region, credentials, timeout_seconds)
        try:
            summaries = client.list_foundation_models().get("modelSummaries", [])
        except (ClientError, BotoCoreError) as exc:
            secrets = [secret for secret in (credentials.secret_access_key, credentials.session_token) if secret]
            failure = sdk_failure(exc, provider, timeout_seconds, secrets)
            if failure.code == "provider_unreachable":
                # no Bedrock endpoint answers in a region that does not offer it
                where = f"{failure.message} in {access.region}; check that Bedrock is offered in that region"
                raise ProviderError(failure.status, failure.code, where, reached=failure.reached) from exc
            raise failure from exc
        return [summary["modelId"] for summary in summaries if isinstance(summary.get("modelId"), str)]


def credentials_for(access: BedrockAccess, roles: AssumedRoles) -> AwsCredentials:
    """The AWS credentials a connection's access stands for: its role's, assumed through `roles` (which keeps them
    until shortly before they expire), else its static keys. For calling other AWS services in its account.

    Raises ProviderError when the role cannot be assumed, or the access names neither a role nor keys.
    """
    credentials = access.keys if access.role_arn is None else roles.credentials(access.role_arn, access.external_id)
    if credentials is None:
        message = "the AI connection gives neither an IAM role nor access keys for AWS Bedrock"
        raise ProviderError(502, "connection_misconfigured", message, reached=False)
    return credentials


def bedrock_client_factory(sts: Any, clock: Clock = utc_now, endpoint_url: str | None = None) -> BedrockClients:
    """The production factory, and the catalog of Bedrock's models (vmx.completions.probes): one set of assumed
    roles for both. `sts` is the function's own STS client; `endpoint_url` points Bedrock elsewhere (a local fake),
    for the local stack and end-to-end tests."""
    return BedrockClients(AssumedRoles(sts, clock), endpoint_url)


def _new_client(
    service: str,
    session: "boto3.session.Session",
    endpoint_url: str | None,
    region: str,
    credentials: AwsCredentials,
    timeout_seconds: float,
) -> Any:
    from botocore.config import Config

    connect_timeout = min(_CONNECT_TIMEOUT_SECONDS, timeout_seconds / 4)
    config = Config(
        connect_timeout=connect_timeout,
        read_timeout=timeout_seconds - connect_timeout,
        # Retries stay with the client, as for the HTTP providers: a throttled call answers 429 at once.
        retries={"mode": "standard", "total_max_attempts": 1},
    )
    return session.client(
        service,  # type: ignore[call-overload]
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id=credentials.access_key_id.get_secret_value(),
        aws_secret_access_key=credentials.secret_access_key.get_secret_value(),
        aws_session_token=credentials.session_token.get_secret_value() if credentials.session_token else None,
        config=config,
    )
