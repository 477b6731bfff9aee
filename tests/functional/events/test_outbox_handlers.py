"""The functions that publish, as deployed (vmx.wiring): an event the bus will not take is kept in the outbox
queue their settings name, and counted as EventsDeferred. Faults are injected into the handlers' own clients
(tests/aws_faults.py)."""

import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from infra import system
from tests.aws_faults import INTERNAL_ERROR, THROTTLED, AwsFaults
from tests.functional.api import faults_in
from tests.functional.conftest import Tenant

(OUTBOX,) = [queue for queue in system.WORK_QUEUES if queue.name == "event-outbox"]


@pytest.fixture
def faults(tenant: Tenant) -> Iterator[AwsFaults]:
    """Faults on every client the connections function creates from here on."""
    with faults_in(system.CONNECTIONS) as injected:
        yield injected


def kept_in_the_outbox() -> list[dict[str, Any]]:
    """The entries the outbox holds, removed from it."""
    sqs = boto3.client("sqs")
    url = os.environ[OUTBOX.url_env_var]
    entries: list[dict[str, Any]] = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        entries += [json.loads(message["Body"]) for message in messages]
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)]
        )
    return entries


def emitted_metrics(output: str) -> dict[str, float]:
    """The metrics in the Embedded Metric Format lines Powertools printed."""
    metrics: dict[str, float] = {}
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            document = json.loads(line)
            for definition in document["_aws"]["CloudWatchMetrics"]:
                for metric in definition["Metrics"]:
                    # one value, or a list of the values added in one invocation
                    values = document[metric["Name"]]
                    metrics[metric["Name"]] = metrics.get(metric["Name"], 0) + sum(
                        values if isinstance(values, list) else [values]
                    )
    return metrics


@pytest.mark.parametrize("answer", [THROTTLED, INTERNAL_ERROR], ids=["throttled", "500"])
def test_a_connection_created_while_the_bus_fails_has_its_event_kept_in_the_outbox(
    tenant: Tenant, faults: AwsFaults, capsys: pytest.CaptureFixture[str], answer: tuple[int, str, str]
) -> None:
    kept_in_the_outbox()
    faults.fail("eventbridge.PutEvents", answer)

    response = tenant.api.post(
        tenant.connections_path, {"name": "prod", "provider": "openai", "config": {"apiKey": "sk-outbox"}}
    )

    assert response.status == 201
    (entry,) = kept_in_the_outbox()
    assert (entry["Source"], entry["DetailType"]) == (system.EVENT_SOURCE, "ConnectionCreated")
    assert json.loads(entry["Detail"])["connectionId"] == response.body["connectionId"]
    metrics = emitted_metrics(capsys.readouterr().out)
    assert metrics.get("EventsDeferred") == 1
    assert "EventsNotPublished" not in metrics
