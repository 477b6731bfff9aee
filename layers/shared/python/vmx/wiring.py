"""Builds the use cases with their AWS adapters from a function's settings (production and local stack)."""

import boto3
import urllib3

from vmx.clock import utc_now
from vmx.completions.providers import Transports, bedrock_client_factory, call_provider
from vmx.connections.service import ConnectionService
from vmx.credentials.kms import KmsCipher
from vmx.credentials.ports import CredentialCipher
from vmx.gateway.capacity_report import CapacityReporter
from vmx.gateway.credentials_cache import CredentialCache
from vmx.gateway.service import CompletionService
from vmx.settings import AuthorizerSettings, CipherSettings, CompletionsSettings, ConnectionsSettings, TenancySettings
from vmx.storage.capacity_store import DynamoCapacityCounters
from vmx.storage.connection_store import DynamoConnectionRepository
from vmx.storage.tenancy_store import DynamoTenancyRepository
from vmx.tenancy.service import TenancyService


def tenancy_repository(settings: AuthorizerSettings | TenancySettings) -> DynamoTenancyRepository:
    return DynamoTenancyRepository(settings.tenancy_table_name, settings.aws_region)


def tenancy_service(settings: TenancySettings) -> TenancyService:
    connections = DynamoConnectionRepository(
        settings.connections_table_name, settings.aws_region, tenancy_table_name=settings.tenancy_table_name
    )
    return TenancyService(tenancy_repository(settings), connections, utc_now)


def connection_service(settings: ConnectionsSettings) -> ConnectionService:
    connections = DynamoConnectionRepository(
        settings.connections_table_name, settings.aws_region, tenancy_table_name=settings.tenancy_table_name
    )
    cipher = credential_cipher(settings, settings.aws_region)
    return ConnectionService(connections, tenancy_repository(settings), cipher, utc_now)


def capacity_reporter(settings: ConnectionsSettings) -> CapacityReporter:
    connections = DynamoConnectionRepository(settings.connections_table_name, settings.aws_region)
    counters = DynamoCapacityCounters(settings.capacity_table_name, settings.aws_region)
    return CapacityReporter(connections, counters, utc_now)


def completion_service(settings: CompletionsSettings) -> CompletionService:
    connections = DynamoConnectionRepository(settings.connections_table_name, settings.aws_region)
    counters = DynamoCapacityCounters(settings.capacity_table_name, settings.aws_region)
    transports = Transports(
        http=urllib3.PoolManager(maxsize=10),
        bedrock_client=bedrock_client_factory(
            boto3.client("sts", region_name=settings.aws_region), endpoint_url=settings.bedrock_endpoint_url
        ),
    )
    return CompletionService(
        connections,
        counters,
        CredentialCache(credential_cipher(settings, settings.aws_region)),
        lambda call: call_provider(call, transports),
        utc_now,
        settings.provider_timeout_seconds,
    )


def credential_cipher(settings: CipherSettings, region: str) -> CredentialCipher:
    if settings.credentials_cipher == "sodium":
        # imported here: PyNaCl is a local-run dependency and is not in the Lambda layer
        from vmx.credentials.sodium import SodiumCipher

        assert settings.credentials_sodium_key is not None
        return SodiumCipher(settings.credentials_sodium_key)
    assert settings.credentials_kms_key_id is not None
    return KmsCipher(boto3.client("kms", region_name=region), settings.credentials_kms_key_id)
