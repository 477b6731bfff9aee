"""The consumer of deferred settlements (vmx.capacity.settlements): each is written to the counters it settles."""

from datetime import datetime

from vmx.capacity.ledger import CapacityCounters
from vmx.capacity.settlements import DeferredSettlement, InvalidSettlement
from vmx.consumers.envelope import PoisonMessage


def apply_deferred_settlement(record_body: str, counters: CapacityCounters, now: datetime) -> DeferredSettlement:
    """Writes the settlement in one SQS message body; one already applied changes nothing. Raises PoisonMessage
    for a body no retry can process, and the store's error when the write fails (SQS delivers it again)."""
    try:
        settlement = DeferredSettlement.from_json(record_body)
    except InvalidSettlement as exc:
        raise PoisonMessage(str(exc)) from None
    if settlement.actual_tokens is None:
        counters.release(settlement.reservation)
    else:
        counters.reconcile(settlement.reservation, settlement.actual_tokens, now)
    return settlement
