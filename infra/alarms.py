"""Where the stack's alarms go: one SNS topic that operators subscribe to (the `AlarmTopicArn` output); and the
alarms on what the functions count (each queue's dead-letter alarm is in infra.events)."""

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.standard_function import METRICS_NAMESPACE, SERVICE_NAME
from vmx.aws.event_bus import EVENTS_NOT_PUBLISHED_METRIC

CLOUDWATCH = iam.ServicePrincipal("cloudwatch.amazonaws.com")


class Alarms(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        # Its own key: CloudWatch cannot use the AWS-managed SNS key, and the credentials key stays
        # single-purpose. Nothing outlives a notification under it, so it goes with the stack.
        self.key = kms.Key(
            self,
            "Key",
            description="Encrypts the alarms topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
        )
        # Alarm actions publish as CloudWatch, which must encrypt the message with the topic's key.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[CLOUDWATCH],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )
        self.topic = sns.Topic(
            self, "Topic", display_name="VM-X AI Connections alarms", master_key=self.key, enforce_ssl=True
        )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[CLOUDWATCH],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                # This account's alarms only, against the confused deputy.
                conditions={
                    "ArnLike": {
                        "aws:SourceArn": stack.format_arn(
                            service="cloudwatch",
                            resource="alarm",
                            resource_name="*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    },
                    "StringEquals": {"aws:SourceAccount": stack.account},
                },
            )
        )
        self.action = cloudwatch_actions.SnsAction(self.topic)

        # An event lost for good: refused by EventBridge for good, or neither published nor kept in the outbox.
        self.events_not_published = cloudwatch.Alarm(
            self,
            "EventsNotPublishedAlarm",
            alarm_description="Events were lost: EventBridge refused them for good, or neither the bus nor the "
            "event outbox took them. Their ids and types are in the publishing functions' logs "
            "('event not published').",
            metric=cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=EVENTS_NOT_PUBLISHED_METRIC,
                # Powertools Metrics adds the service dimension to every metric it writes
                dimensions_map={"service": SERVICE_NAME},
                statistic=cloudwatch.Stats.SUM,
                period=Duration.minutes(5),
            ),
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            threshold=0,
            evaluation_periods=1,
            # no datapoint: nothing was lost
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.events_not_published.add_alarm_action(self.action)
