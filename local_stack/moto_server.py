"""moto's server as the local stack runs it: its WSGI application behind a threaded server of ours.

Three things differ from moto's own ThreadedMotoServer, each because the local stack's traffic is many small
calls from several Lambda-like instances at once:

- **One DynamoDB call at a time.** moto's backends take no lock, so two conditional UpdateItems on one
  counter from two threads could both pass their condition; DynamoDB applies each call atomically, and the
  capacity gate relies on it. Other services (SQS long polls in particular) are not serialised.
- **Kept-alive connections** (HTTP/1.1): moto's server closes every connection, so every AWS call of every
  instance paid for a new one.
- **Costs that grow with the data are removed**: moto deep-copies every table a TransactWriteItems touches,
  whole, to roll it back on failure (the usage consumer's transactions slowed down as the usage buckets
  piled up); here only the items the transaction names are kept and put back. moto's SQS reckons every
  attribute of a queue (counting all its messages) for each message it receives, to read the retention
  period; here it reads just that. And moto's EventBridge builds a JSONPath parser (its grammar tables
  included) for every path of every event it delivers; parsed paths are kept.
"""

import copy
import functools
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import jsonpath_ng.ext
import moto.dynamodb.models as moto_dynamodb_models
from moto.core.utils import unix_time
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models import dynamo_type as dynamo_types
from moto.dynamodb.models.table import Table
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.sqs.models import Message, SQSBackend
from werkzeug.serving import BaseWSGIServer, make_server

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
DYNAMODB_TARGET_PREFIX = "DynamoDB_"


class _KeepAliveRequestHandler(MotoRequestHandler):
    protocol_version = "HTTP/1.1"


class DynamoDbCallsOneAtATime:
    """WSGI middleware: DynamoDB requests (by their X-Amz-Target) run one at a time, each to its end."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith(DYNAMODB_TARGET_PREFIX):
            return self._app(environ, start_response)
        with self._lock:
            return list(self._app(environ, start_response))


class MotoServer:
    """moto on a thread of this process, at an ephemeral port unless one is given."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        install_cheaper_moto()
        app = DynamoDbCallsOneAtATime(DomainDispatcherApplication(create_backend_app))
        self._server: BaseWSGIServer = make_server(
            host, port, app, threaded=True, request_handler=_KeepAliveRequestHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)

    @property
    def endpoint_url(self) -> str:
        return f"http://{self._server.host}:{self._server.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()
        self._server.server_close()


@functools.cache
def install_cheaper_moto() -> None:
    """Replaces the moto costs that grow with the data or the traffic (see the module's docstring); once.

    The test suite installs it too, so that every tier runs on the same moto.
    """
    moto_transact = DynamoDBBackend.transact_write_items

    def transact_write_items(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        kept = [_kept_item(backend, operation) for operation in transact_items]
        try:
            moto_transact(backend, transact_items)
        except BaseException:
            for item in reversed(kept):
                if item is not None:
                    item.put_back()
            raise

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[assignment,method-assign]
    # moto's rollback then puts back the very tables it was given, which transact_write_items above repairs
    # item by item; every other deep copy in moto's backend module stays one.
    moto_dynamodb_models.__dict__["copy"] = _TablesNotCopied()
    SQSBackend.is_message_valid_based_on_retention_period = _within_retention_period  # type: ignore[assignment,method-assign]
    jsonpath_ng.ext.__dict__["parse"] = functools.lru_cache(maxsize=256)(jsonpath_ng.ext.__dict__["parse"])


def _within_retention_period(backend: SQSBackend, queue_name: str, message: Message) -> bool:
    # set from the queue's attributes, so not declared
    retention_seconds: int = backend.get_queue(queue_name).message_retention_period  # type: ignore[attr-defined]
    sent_milliseconds: int = message.sent_timestamp or 0
    return sent_milliseconds / 1000 + retention_seconds > unix_time()


class _TablesNotCopied:
    """Stands in for the `copy` module inside moto's DynamoDB backend: a Table's deep copy is the table."""

    @staticmethod
    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


@dataclass(frozen=True)
class _KeptItem:
    """One item a transaction names, as it was before it: put back if the transaction fails."""

    table: Table
    hash_key: dynamo_types.DynamoType
    range_key: dynamo_types.DynamoType | None
    before: dynamo_types.Item | None

    def put_back(self) -> None:
        if self.before is None:
            self.table.delete_item(self.hash_key, self.range_key)
        else:
            self.table.put_item(self.before.to_json()["Attributes"], overwrite=True)


def _kept_item(backend: DynamoDBBackend, operation: dict[str, Any]) -> _KeptItem | None:
    """The item one operation of a transaction names; None when moto will refuse the operation before any write."""
    body = next(iter(operation.values()), None)
    if not isinstance(body, dict) or body.get("TableName") not in backend.tables:
        return None
    table: Table = backend.tables[body["TableName"]]
    attributes = body.get("Key") or body.get("Item") or {}
    try:
        hash_key = dynamo_types.DynamoType(attributes[table.hash_key_attr])
        range_key = dynamo_types.DynamoType(attributes[table.range_key_attr]) if table.range_key_attr else None
    except (KeyError, TypeError):
        return None
    return _KeptItem(table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key)))
