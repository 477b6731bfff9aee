"""The DynamoDB tables of system.TABLES, and the only way functions get access to them."""

from collections.abc import Sequence
from typing import cast

from aws_cdk import CfnResource, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.system import Table

# The one action an index is granted, and only to a function that may query its table.
QUERY_ACTION = "dynamodb:Query"


def _string_key(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


class Data(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, tables: Sequence[Table]) -> None:
        super().__init__(scope, construct_id)
        self.specs = {spec.logical_id: spec for spec in tables}
        self.tables = {spec.logical_id: self._table(spec) for spec in tables}

    def _table(self, spec: Table) -> dynamodb.Table:
        table = dynamodb.Table(
            self,
            spec.logical_id,
            partition_key=_string_key(spec.partition_key),
            sort_key=_string_key(spec.sort_key),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            # The AWS-managed key, not the credentials CMK: secrets are already envelope-encrypted with the
            # CMK before they are stored, and keeping that key single-purpose keeps its grants auditable.
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            time_to_live_attribute=spec.ttl_attribute,
            removal_policy=RemovalPolicy.RETAIN,
            deletion_protection=True,
        )
        for index in spec.indexes:
            if index.local:
                if index.partition_key != spec.partition_key:
                    raise ValueError(
                        f"{spec.logical_id}.{index.name}: a local index shares the table's partition key "
                        f"{spec.partition_key!r}, not {index.partition_key!r}"
                    )
                table.add_local_secondary_index(
                    index_name=index.name,
                    sort_key=_string_key(index.sort_key),
                    projection_type=dynamodb.ProjectionType.ALL,
                )
            else:
                table.add_global_secondary_index(
                    index_name=index.name,
                    partition_key=_string_key(index.partition_key),
                    sort_key=_string_key(index.sort_key),
                    projection_type=dynamodb.ProjectionType.ALL,
                )
        # The spec's logical ID, so a refactor of the construct tree can never replace a retained table.
        cast(CfnResource, table.node.default_child).override_logical_id(spec.logical_id)
        return table

    def grant(self, grantee: iam.IGrantable, table_id: str, actions: Sequence[str]) -> None:
        """Grant exactly `actions` on the table, and Query on its indexes, by name, if Query is among them.

        Transactions are authorised per item: TransactWriteItems needs the item actions and none of its own.
        """
        if not actions or not all(action.startswith("dynamodb:") for action in actions):
            raise ValueError(f"{table_id}: grant one or more DynamoDB actions, not {tuple(actions)}")
        table = self.tables[table_id]
        # has_index=False: table.grant would add every action on `index/*`; indexes get Query alone, by name.
        dynamodb.TableGrants.from_table(table, has_index=False).actions(grantee, *actions)
        index_arns = [f"{table.table_arn}/index/{index.name}" for index in self.specs[table_id].indexes]
        if QUERY_ACTION in actions and index_arns:
            iam.Grant.add_to_principal(grantee=grantee, actions=[QUERY_ACTION], resource_arns=index_arns)
