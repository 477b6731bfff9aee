"""How the completions function reaches providers in customers' AWS accounts: by assuming their roles."""

from aws_cdk import Acknowledgment, Validations
from aws_cdk import aws_iam as iam

# Bedrock connections name a role in the customer's account (iamRoleArn); its trust policy decides who may
# assume it, so our side can only say "roles", not which ones.
CUSTOMER_ROLES = "arn:aws:iam::*:role/*"


def allow_assuming_provider_roles(role: iam.Role) -> None:
    role.add_to_principal_policy(iam.PolicyStatement(actions=["sts:AssumeRole"], resources=[CUSTOMER_ROLES]))
    Validations.of(role).acknowledge(
        Acknowledgment(
            id=f"AwsSolutions-IAM5[Resource::{CUSTOMER_ROLES}]",
            reason="Bedrock connections name roles in customers' own accounts, unknown at deploy time; "
            "each role's trust policy admits this function, and sts:AssumeRole is the only action.",
        )
    )
