"""The event bus, and how its events reach their consumers: system.EVENT_QUEUES and system.SCHEDULES.

An event queue is a rule on the bus that sends the events of some detail types to an SQS queue, whose
consumer function reports partial batch failures; a message that keeps failing moves to a dead-letter
queue after `max_receive_count` receives, and a message there raises an alarm. So nothing is lost when
a consumer fails: it waits in a queue until the consumer is fixed, and someone is told.
"""

from collections.abc import Sequence

from aws_cdk import Acknowledgment, Duration, Stack, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.standard_function import StandardFunction
from infra.system import EVENT_SOURCE, EventQueue, Schedule, WorkQueue

# Tells publishing functions where to send their events (the local stack sets the same variable).
EVENT_BUS_ENV_VAR = "EVENT_BUS_NAME"
# AWS recommends a queue's visibility timeout of at least six times its Lambda consumer's timeout, so a
# message is not received again while throttled retries of the same batch are still running.
VISIBILITY_TIMEOUT_PER_CONSUMER_TIMEOUT = 6
# Time to mend a failing consumer before a message is dropped: a long weekend, in the queue.
QUEUE_RETENTION = Duration.days(4)
# The most SQS keeps a message: time to read, fix and redrive what failed for good.
DEAD_LETTER_RETENTION = Duration.days(14)


def event_pattern(spec: EventQueue) -> events.EventPattern:
    """Our source and the queue's detail types; the local stack builds the same pattern as JSON."""
    return events.EventPattern(source=[EVENT_SOURCE], detail_type=list(spec.detail_types))


class Events(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        # Named after the stack so that rules in other stacks and accounts can address it.
        self.bus = events.EventBus(self, "Bus", event_bus_name=f"{Stack.of(self).stack_name}-events")

    def allow_publishing(self, role: iam.IGrantable) -> None:
        """events:PutEvents on this bus and no other."""
        self.bus.grant_put_events_to(role)


class QueueDelivery(Construct):
    """One system.EventQueue (rule, queue, dead-letter queue, the consumer's event source, and the alarm), or
    one system.WorkQueue (the same without a rule: `senders` send to the queue, and are told its URL)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: EventQueue | WorkQueue,
        bus: events.IEventBus,
        consumer: StandardFunction,
        alarm_action: cloudwatch.IAlarmAction,
        senders: Sequence[StandardFunction] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        if consumer.spec.name != spec.consumer:
            raise ValueError(f"the {spec.name} queue is consumed by {spec.consumer}, not {consumer.spec.name}")
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=DEAD_LETTER_RETENTION,
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            # SQS-managed keys: EventBridge cannot send to a queue encrypted with the AWS-managed KMS key, and
            # a customer key would only add a grant to what both services already protect.
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=QUEUE_RETENTION,
            delivery_delay=Duration.seconds(spec.delivery_delay_seconds),
            visibility_timeout=Duration.seconds(
                VISIBILITY_TIMEOUT_PER_CONSUMER_TIMEOUT * consumer.spec.timeout_seconds
            ),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=spec.max_receive_count
            ),
        )
        if isinstance(spec, EventQueue):
            self.rule = events.Rule(
                self,
                "Rule",
                event_bus=bus,
                description=f"{', '.join(spec.detail_types)} events to the {spec.consumer} function's queue",
                event_pattern=event_pattern(spec),
                # The queue's policy admits events.amazonaws.com for this rule only (aws:SourceArn). Events that
                # EventBridge cannot deliver after its retries land in the dead-letter queue too, with its alarm.
                targets=[targets.SqsQueue(self.queue, dead_letter_queue=self.dead_letter_queue)],
            )
        else:
            if sorted(sender.spec.name for sender in senders) != sorted(spec.senders):
                raise ValueError(f"the {spec.name} queue is sent to by {', '.join(spec.senders)}")
            for sender in senders:
                # SendMessage only (grant_send_messages adds reading the queue's attributes), on this queue only;
                # SQS-managed encryption needs no key grant
                self.queue.grant(sender.role, "sqs:SendMessage")
                sender.function.add_environment(spec.url_env_var, self.queue.queue_url)
        consumer.function.add_event_source(
            event_sources.SqsEventSource(self.queue, batch_size=spec.batch_size, report_batch_item_failures=True)
        )
        self.alarm = cloudwatch.Alarm(
            self,
            "DeadLettersAlarm",
            alarm_description=f"Messages for the {spec.consumer} function failed {spec.max_receive_count} times or "
            "could not be delivered; they wait in its dead-letter queue to be inspected and redriven.",
            metric=self.dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(1), statistic=cloudwatch.Stats.MAXIMUM
            ),
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            threshold=0,
            evaluation_periods=1,
            # SQS stops sending metrics for a queue that has been empty for hours: that is not a failure.
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.alarm.add_alarm_action(alarm_action)
        Validations.of(self.dead_letter_queue).acknowledge(
            Acknowledgment(
                id="AwsSolutions-SQS3",
                reason="This is the dead-letter queue itself: what lands here stays for inspection and redrive, "
                "and its alarm tells an operator; a dead-letter queue of its own would only hide it further.",
            )
        )


class ScheduledInvocation(Construct):
    """One system.Schedule: a rule on the default bus (the only one that runs schedules) invoking a function."""

    def __init__(self, scope: Construct, construct_id: str, *, spec: Schedule, function: StandardFunction) -> None:
        super().__init__(scope, construct_id)
        if function.spec.name != spec.function:
            raise ValueError(f"the {spec.name} schedule invokes {spec.function}, not {function.spec.name}")
        self.rule = events.Rule(
            self,
            "Rule",
            description=f"Runs the {spec.function} function: {spec.expression}",
            schedule=events.Schedule.expression(spec.expression),
            targets=[targets.LambdaFunction(function.function)],
        )
