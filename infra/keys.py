"""The customer-managed KMS key that envelope-encrypts AI-provider credentials."""

from collections.abc import Sequence

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from vmx.credentials.sealed import ENCRYPTION_CONTEXT_KEYS


class CredentialsKey(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            description="Envelope encryption of AI-provider credentials",
            enable_key_rotation=True,
            # The stack name keeps the alias unique when several stacks share an account.
            alias=f"alias/{Stack.of(self).stack_name}/credentials",
            # Deleting the key would make every stored credential unreadable.
            removal_policy=RemovalPolicy.RETAIN,
        )

    def grant(self, grantee: iam.IGrantable, actions: Sequence[str]) -> None:
        """Grant `actions` only for requests whose encryption context names one connection, and nothing else."""
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=list(actions),
            resource_arns=[self.key.key_arn],
            conditions={
                "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": list(ENCRYPTION_CONTEXT_KEYS)},
                "Null": {f"kms:EncryptionContext:{key}": "false" for key in ENCRYPTION_CONTEXT_KEYS},
            },
        )
