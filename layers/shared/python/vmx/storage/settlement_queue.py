"""The SQS queue where a settlement that failed after its answer waits for the capacity-settlements consumer."""

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from vmx.capacity.settlements import DeferredSettlement
from vmx.storage.errors import StorageUnavailable

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient


class SqsSettlementQueue:
    def __init__(self, client: "SQSClient", queue_url: str):
        self._client = client
        self._queue_url = queue_url

    def defer(self, settlement: DeferredSettlement) -> None:
        try:
            self._client.send_message(QueueUrl=self._queue_url, MessageBody=settlement.to_json())
        except (BotoCoreError, ClientError) as exc:
            code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else None
            raise StorageUnavailable(f"SQS SendMessage failed ({code or type(exc).__name__})") from exc
