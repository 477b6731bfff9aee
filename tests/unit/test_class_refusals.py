"""What a client reads when a priority class's share refused its completion."""

from datetime import UTC, datetime, timedelta

import pytest

from vmx.capacity.ledger import CapacityExceeded, ClassShare, LimitKind
from vmx.capacity.limits import CapacityPeriod
from vmx.use_cases.refusals import OverCapacity, RateLimits

NOW = datetime(2026, 12, 8, 12, 0, 15, tzinfo=UTC)


def refusal(share: ClassShare, kind: LimitKind, limit: int, tokens: int = 10) -> OverCapacity:
    exceeded = CapacityExceeded(
        CapacityPeriod.MINUTE, kind, limit, 45, NOW + timedelta(seconds=45), priority_class="batch", share=share
    )
    return OverCapacity("shared", exceeded, RateLimits(), tokens=tokens, refused_at=NOW)


@pytest.mark.parametrize(
    ("share", "kind", "limit", "message"),
    [
        (
            "maximum",
            "requests",
            40,
            "priority class 'batch' of AI connection 'shared' reached its maximum share of the per-minute requests "
            "limit: 40 requests",
        ),
        (
            "shared",
            "tokens",
            4000,
            "priority class 'batch' of AI connection 'shared' has no per-minute tokens left: its guaranteed share is "
            "used, and so is the capacity the classes share (4000 tokens open to it in all)",
        ),
    ],
)
def test_a_class_refusal_names_the_class_and_its_share_and_when_to_retry(
    share: ClassShare, kind: LimitKind, limit: int, message: str
) -> None:
    refused = refusal(share, kind, limit)

    assert (refused.message, refused.retry_after_seconds) == (message, 45)


def test_a_request_larger_than_its_class_could_ever_use_is_told_that_waiting_will_not_help() -> None:
    refused = refusal("maximum", "tokens", 400, tokens=4105)

    assert refused.retry_after_seconds is None
    assert refused.message == (
        "priority class 'batch' of AI connection 'shared' can use at most 400 of its per-minute tokens and this request "
        "reserves 4105 (its prompt plus max_tokens, or 4096 when unset); lower max_tokens or change the class's shares"
    )


@pytest.mark.parametrize(
    ("share", "message"),
    [
        (
            "shared",
            "priority class 'batch' of AI connection 'shared' can use none of its per-minute requests: its shares of "
            "the limit round down to 0; change the class's shares",
        ),
        (None, "AI connection 'shared' has a per-minute limit of 0 requests: it admits none; raise the limit"),
    ],
)
def test_a_class_or_a_connection_that_admits_no_request_says_so_without_retry_after(
    share: ClassShare | None, message: str
) -> None:
    exceeded = CapacityExceeded(
        CapacityPeriod.MINUTE,
        "requests",
        0,
        45,
        NOW + timedelta(seconds=45),
        priority_class="batch" if share else None,
        share=share,
    )

    refused = OverCapacity("shared", exceeded, RateLimits(), tokens=10, refused_at=NOW)

    assert (refused.message, refused.retry_after_seconds) == (message, None)
