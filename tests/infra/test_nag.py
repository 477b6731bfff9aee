"""cdk-nag AwsSolutionsChecks: no finding left unacknowledged, and every acknowledgment says why."""

import re

from aws_cdk import Validations
from cdk_nag import AwsSolutionsChecks

from tests.infra.synthesized import Synthesized

# A new acknowledgment is a decision: it belongs in this list, reviewed, and in the report of the change.
ACKNOWLEDGED_RULES = {
    "AwsSolutions-L1",
    "AwsSolutions-IAM5[Resource::*]",
    # the completions function assumes roles in customers' accounts, named by their Bedrock connections
    "AwsSolutions-IAM5[Resource::arn:aws:iam::*:role/*]",
    "AwsSolutions-APIG2",
    "AwsSolutions-COG4",
    # on the event queues' dead-letter queues, which are where failed messages end
    "AwsSolutions-SQS3",
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
    # the CORS preflights, which browsers send without credentials
    "AwsSolutions-APIG4",
    # the console's log bucket
    "AwsSolutions-S1",
    # the console's distribution: geo restriction, a WAF in us-east-1, TLS 1.2 without a custom domain
    "AwsSolutions-CFR1",
    "AwsSolutions-CFR2",
    "AwsSolutions-CFR4",
    # the role of CDK's BucketDeployment function, which copies the console into its bucket
    "AwsSolutions-IAM5[Action::s3:GetBucket*]",
    "AwsSolutions-IAM5[Action::s3:GetObject*]",
    "AwsSolutions-IAM5[Action::s3:List*]",
    "AwsSolutions-IAM5[Action::s3:Abort*]",
    "AwsSolutions-IAM5[Action::s3:DeleteObject*]",
    "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*]",
    "AwsSolutions-IAM5[Resource::<ConsoleFiles2D43986C.Arn>/*]",
}
MIN_REASON_WORDS = 12


def acknowledgments(synthesized: Synthesized) -> dict[str, list[str]]:
    """Reasons by rule ID, from the metadata that `Validations.acknowledge` leaves on each construct."""
    reasons: dict[str, list[str]] = {}
    for _, acknowledged in synthesized.metadata(Validations.ACKNOWLEDGED_RULES_METADATA_KEY):
        for rule_id, reason in acknowledged.items():
            # Unprefixed IDs are stored as annotation rules; cdk-nag strips the prefix the same way.
            reasons.setdefault(re.sub(r"^annotation::", "", rule_id, flags=re.IGNORECASE), []).append(reason)
    return reasons


def test_aws_solutions_checks_find_nothing_unacknowledged(synthesized: Synthesized) -> None:
    report = AwsSolutionsChecks().validate_scope(synthesized.stack)

    findings = [
        f"{violation.severity} {violation.rule_name}: {[r.construct_path for r in violation.violating_resources]}"
        for violation in report.violations
    ]
    assert findings == []


def test_only_the_reviewed_rules_are_acknowledged(synthesized: Synthesized) -> None:
    assert set(acknowledgments(synthesized)) == ACKNOWLEDGED_RULES


def test_every_acknowledgment_gives_its_reason(synthesized: Synthesized) -> None:
    for rule_id, reasons in acknowledgments(synthesized).items():
        for reason in reasons:
            assert len(reason.split()) >= MIN_REASON_WORDS, f"{rule_id}: {reason!r} does not say why"
