"""Builds the use cases with their AWS adapters from a function's settings (production and local stack)."""

import boto3

from vmx.clock import utc_now
from vmx.connections.service import ConnectionService
from vmx.credentials.kms import KmsCipher
from vmx.credentials.ports import CredentialCipher
from vmx.settings import AuthorizerSettings, ConnectionsSettings, TenancySettings
from vmx.storage.connection_store import DynamoConnectionRepository
from vmx.storage.tenancy_store import DynamoTenancyRepository
from vmx.tenancy.service import TenancyService


def tenancy_repository(settings: AuthorizerSettings | TenancySettings) -> DynamoTenancyRepository:
    return DynamoTenancyRepository(settings.tenancy_table_name, settings.aws_region)


def tenancy_service(settings: TenancySettings) -> TenancyService:
    connections = DynamoConnectionRepository(
        settings.connections_table_name, settings.tenancy_table_name, settings.aws_region
    )
    return TenancyService(tenancy_repository(settings), connections, utc_now)


def connection_service(settings: ConnectionsSettings) -> ConnectionService:
    connections = DynamoConnectionRepository(
        settings.connections_table_name, settings.tenancy_table_name, settings.aws_region
    )
    return ConnectionService(connections, tenancy_repository(settings), credential_cipher(settings), utc_now)


def credential_cipher(settings: ConnectionsSettings) -> CredentialCipher:
    if settings.credentials_cipher == "sodium":
        # imported here: PyNaCl is a local-run dependency and is not in the Lambda layer
        from vmx.credentials.sodium import SodiumCipher

        assert settings.credentials_sodium_key is not None
        return SodiumCipher(settings.credentials_sodium_key)
    assert settings.credentials_kms_key_id is not None
    return KmsCipher(boto3.client("kms", region_name=settings.aws_region), settings.credentials_kms_key_id)
