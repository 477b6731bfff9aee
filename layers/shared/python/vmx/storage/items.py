"""pynamodb item classes. They never leave the storage package: repositories map them to domain models.

pynamodb reads `Meta.table_name` when a class is defined, so the classes are built per table name.
"""

from dataclasses import dataclass
from functools import cache
from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, LocalSecondaryIndex
from pynamodb.models import Model


@dataclass(frozen=True)
class TenancyItems:
    workspace: Any
    environment: Any
    environment_name: Any
    api_key: Any


@dataclass(frozen=True)
class ConnectionItems:
    connection: Any
    name_claim: Any
    discovered_capacity: Any


@cache
def tenancy_items(table: str, region_name: str) -> TenancyItems:
    class Base(Model):
        class Meta:
            table_name = table
            region = region_name

        pk = UnicodeAttribute(hash_key=True)
        sk = UnicodeAttribute(range_key=True)

    class ByGsi1(GlobalSecondaryIndex[Any]):
        class Meta:
            index_name = "gsi1"
            projection = AllProjection()

        gsi1pk = UnicodeAttribute(hash_key=True)
        gsi1sk = UnicodeAttribute(range_key=True)

    class WorkspaceItem(Base):
        class Meta(Base.Meta):
            pass

        gsi1pk = UnicodeAttribute()
        gsi1sk = UnicodeAttribute()
        by_gsi1 = ByGsi1()
        workspace_id = UnicodeAttribute(attr_name="workspaceId")
        name = UnicodeAttribute()
        description = UnicodeAttribute(null=True)
        connection_count = NumberAttribute(attr_name="connectionCount", default=0)
        created_at = UTCDateTimeAttribute(attr_name="createdAt")
        created_by = UnicodeAttribute(attr_name="createdBy")

    class EnvironmentItem(Base):
        class Meta(Base.Meta):
            pass

        workspace_id = UnicodeAttribute(attr_name="workspaceId")
        environment_id = UnicodeAttribute(attr_name="environmentId")
        name = UnicodeAttribute()
        description = UnicodeAttribute(null=True)
        connection_count = NumberAttribute(attr_name="connectionCount", default=0)
        created_at = UTCDateTimeAttribute(attr_name="createdAt")
        created_by = UnicodeAttribute(attr_name="createdBy")

    class EnvironmentNameItem(Base):
        """Claims an environment name within its workspace, so two creates can't both take it."""

        class Meta(Base.Meta):
            pass

        environment_id = UnicodeAttribute(attr_name="environmentId")

    class ApiKeyItem(Base):
        class Meta(Base.Meta):
            pass

        gsi1pk = UnicodeAttribute()
        gsi1sk = UnicodeAttribute()
        by_gsi1 = ByGsi1()
        key_id = UnicodeAttribute(attr_name="keyId")
        workspace_id = UnicodeAttribute(attr_name="workspaceId")
        name = UnicodeAttribute()
        role = UnicodeAttribute()
        environment_ids = ListAttribute(of=UnicodeAttribute, attr_name="environmentIds", null=True)
        platform_admin = BooleanAttribute(attr_name="platformAdmin")
        secret_hash = UnicodeAttribute(attr_name="secretHash")
        created_at = UTCDateTimeAttribute(attr_name="createdAt")
        created_by = UnicodeAttribute(attr_name="createdBy")
        revoked_at = UTCDateTimeAttribute(attr_name="revokedAt", null=True)
        priority_class = UnicodeAttribute(attr_name="priorityClass", null=True)

    return TenancyItems(WorkspaceItem, EnvironmentItem, EnvironmentNameItem, ApiKeyItem)


@cache
def connection_items(table: str, region_name: str) -> ConnectionItems:
    class Base(Model):
        class Meta:
            table_name = table
            region = region_name

        pk = UnicodeAttribute(hash_key=True)
        sk = UnicodeAttribute(range_key=True)

    class ByCreatedAt(LocalSecondaryIndex[Any]):
        class Meta:
            index_name = "byCreatedAt"
            projection = AllProjection()

        pk = UnicodeAttribute(hash_key=True)
        created_sk = UnicodeAttribute(range_key=True, attr_name="createdSk")

    class ConnectionItem(Base):
        class Meta(Base.Meta):
            pass

        created_sk = UnicodeAttribute(attr_name="createdSk")
        by_created_at = ByCreatedAt()
        connection_id = UnicodeAttribute(attr_name="connectionId")
        workspace_id = UnicodeAttribute(attr_name="workspaceId")
        environment_id = UnicodeAttribute(attr_name="environmentId")
        name = UnicodeAttribute()
        description = UnicodeAttribute(null=True)
        provider = UnicodeAttribute()
        settings = JSONAttribute()
        # field name -> sealed secret (see vmx.credentials.sealed)
        secrets = MapAttribute[str, Any]()
        capacity = JSONAttribute()
        prioritization = JSONAttribute(null=True)
        allowed_models = ListAttribute(of=UnicodeAttribute, attr_name="allowedModels", null=True)
        version = NumberAttribute()
        created_at = UTCDateTimeAttribute(attr_name="createdAt")
        updated_at = UTCDateTimeAttribute(attr_name="updatedAt")
        created_by = UnicodeAttribute(attr_name="createdBy")
        updated_by = UnicodeAttribute(attr_name="updatedBy")
        credentials_updated_at = UTCDateTimeAttribute(attr_name="credentialsUpdatedAt")

    class NameClaimItem(Base):
        """Claims a connection name (case-insensitively) in its environment."""

        class Meta(Base.Meta):
            pass

        connection_id = UnicodeAttribute(attr_name="connectionId")

    class ObservedLimitMap(MapAttribute[str, Any]):
        period = UnicodeAttribute()
        requests = NumberAttribute(null=True)
        tokens = NumberAttribute(null=True)
        input_tokens = NumberAttribute(attr_name="inputTokens", null=True)
        output_tokens = NumberAttribute(attr_name="outputTokens", null=True)

    class DiscoveredCapacityItem(Base):
        """The limits a provider last reported for one model of a connection. Kept apart from the connection
        item so that a connection write can never overwrite an observation made in the meantime."""

        class Meta(Base.Meta):
            pass

        connection_id = UnicodeAttribute(attr_name="connectionId")
        model = UnicodeAttribute()
        capacity = ListAttribute(of=ObservedLimitMap)
        # stored as fixed-width UTC text, which sorts as time does: conditions compare it with `<`
        observed_at = UTCDateTimeAttribute(attr_name="observedAt")
        source = UnicodeAttribute()

    return ConnectionItems(ConnectionItem, NameClaimItem, DiscoveredCapacityItem)
