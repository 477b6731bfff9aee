"""The consumer of ConnectionDeleted events: what a deleted connection leaves behind is removed.

Its queue delivers each event CONNECTION_REMAINS_DELAY_SECONDS (infra/system.py) after the delete, once no
completion can still reserve capacity on the connection (the completions function keeps a connection it has
read for at most a minute); what a completion in flight writes later only adds to counters that exist, so it
cannot bring them back, and the usage and discovery consumers refuse to write for a deleted connection.
"""

from vmx.consumers.envelope import event_detail
from vmx.consumers.inputs import DeletedConnection
from vmx.consumers.ports import ConnectionRemains, RemovedRemains

CONNECTION_DELETED = "ConnectionDeleted"


def handle_connection_deleted(record_body: str, remains: ConnectionRemains) -> tuple[DeletedConnection, RemovedRemains]:
    """Removes the remains of the connection in one SQS message body (an EventBridge event); a redelivered event
    removes nothing more. Raises PoisonMessage for a body no retry can process."""
    deleted = event_detail(record_body, CONNECTION_DELETED, DeletedConnection)
    return deleted, remains.remove(deleted.workspace_id, deleted.environment_id, deleted.connection_id)
