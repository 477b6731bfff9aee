"""Removes what deleted connections leave behind (ConnectionDeleted events, from an SQS queue): their capacity
counters, usage statistics and discovered capacity."""

import os

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from vmx import wiring
from vmx.consumers.connection_remains import handle_connection_deleted
from vmx.consumers.ports import ConnectionRemains
from vmx.entry.queue import QueueConsumer
from vmx.settings import ConnectionRemainsSettings

function = QueueConsumer(lambda _: wiring.connection_remains(ConnectionRemainsSettings.from_environ(os.environ)))


def handle_record(record: SQSRecord, remains: ConnectionRemains) -> None:
    deleted, removed = handle_connection_deleted(record.body, remains)
    function.observed.logger.info(
        "deleted connection's remains removed",
        extra={
            "messageId": record.message_id,
            "connectionId": deleted.connection_id,
            "counters": removed.counters,
            "usageBuckets": removed.usage_buckets,
            "discovered": removed.discovered,
        },
    )


lambda_handler = function.handler(handle_record)
