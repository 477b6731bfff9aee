"""Bedrock connections' accounts through boto3 (Bedrock and Service Quotas): the adapter of the Bedrock quotas run's
`BedrockAccounts` port (vmx.use_cases.bedrock_quotas)."""

from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from vmx.completions.aws_access import AssumedRoles, credentials_for
from vmx.completions.calls import AwsCredentials, BedrockAccess, ProviderError
from vmx.use_cases.bedrock_quotas import BedrockAccount, FoundationModel, QuotaReadFailed, ServiceQuota

# (service name, region, credentials) -> a boto3 client for that service
ClientMaker = Callable[[str, str, AwsCredentials], Any]
# Quotas and model names are read at most once per account and region in a run, so a slow call may wait a little.
_CLIENT_CONFIG = Config(connect_timeout=2, read_timeout=10, retries={"mode": "standard", "total_max_attempts": 3})


def aws_clients(session: boto3.session.Session) -> ClientMaker:
    """Clients from one session (which loads each service's model once), each with the credentials it is given."""

    def make(service: str, region: str, credentials: AwsCredentials) -> Any:
        return session.client(
            service,  # type: ignore[call-overload]
            region_name=region,
            aws_access_key_id=credentials.access_key_id.get_secret_value(),
            aws_secret_access_key=credentials.secret_access_key.get_secret_value(),
            aws_session_token=credentials.session_token.get_secret_value() if credentials.session_token else None,
            config=_CLIENT_CONFIG,
        )

    return make


class AwsBedrockAccounts:
    """BedrockAccounts through boto3, in the account of each connection's role (assumed through `roles`, which keeps
    its credentials until shortly before they expire) or of its static keys."""

    def __init__(self, roles: AssumedRoles, make_client: ClientMaker):
        self._roles = roles
        self._make_client = make_client

    def open(self, access: BedrockAccess) -> BedrockAccount:
        try:
            credentials = credentials_for(access, self._roles)
        except ProviderError as exc:
            raise QuotaReadFailed(exc.code, exc.message) from exc
        return _AwsBedrockAccount(access.region, credentials, self._make_client)


class _AwsBedrockAccount:
    def __init__(self, region: str, credentials: AwsCredentials, make_client: ClientMaker):
        self._region = region
        self._credentials = credentials
        self._make_client = make_client
        self._clients: dict[str, Any] = {}

    def foundation_model(self, model_id: str) -> FoundationModel:
        what = f"Bedrock could not describe the model {model_id}"
        try:
            details = self._client("bedrock").get_foundation_model(modelIdentifier=model_id).get("modelDetails", {})
        except (ClientError, BotoCoreError) as exc:
            raise _failure(exc, what) from exc
        provider_name, model_name = details.get("providerName"), details.get("modelName")
        if not (isinstance(provider_name, str) and isinstance(model_name, str)):
            raise QuotaReadFailed("invalid_response", f"{what}: its answer names no provider or model")
        return FoundationModel(provider_name, model_name)

    def bedrock_quotas(self) -> list[ServiceQuota]:
        paginator = self._client("service-quotas").get_paginator("list_service_quotas")
        try:
            return [
                ServiceQuota(quota["QuotaName"], float(quota["Value"]))
                for page in paginator.paginate(ServiceCode="bedrock", PaginationConfig={"PageSize": 100})
                for quota in page.get("Quotas", [])
                if "QuotaName" in quota and "Value" in quota
            ]
        except (ClientError, BotoCoreError) as exc:
            raise _failure(exc, "Service Quotas could not list Bedrock's quotas") from exc

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._make_client(service, self._region, self._credentials)
        return self._clients[service]


def _failure(exc: ClientError | BotoCoreError, what: str) -> QuotaReadFailed:
    """Names the AWS error code (AccessDeniedException names a missing permission), never the credentials."""
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", "unknown"))
    else:
        code = type(exc).__name__
    return QuotaReadFailed(code, f"{what} ({code})")
