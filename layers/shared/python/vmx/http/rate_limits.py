"""OpenAI's x-ratelimit-* headers for a connection's tightest windows: on a completion, and on the refusals and
provider failures that vmx.http.errors classifies."""

import math
from datetime import datetime

from vmx.use_cases.refusals import RateLimits

PRIORITY_CLASS_HEADER = "x-vmx-priority-class"


def rate_limit_headers(rate_limits: RateLimits, now: datetime) -> dict[str, str]:
    """OpenAI's x-ratelimit-* headers for the tightest requests window and the tightest tokens window, and the
    priority class they are seen by: a key whose class the connection lacks can tell it counted in the default."""
    headers = {PRIORITY_CLASS_HEADER: rate_limits.priority_class} if rate_limits.priority_class else {}
    for kind, usage in (("requests", rate_limits.requests), ("tokens", rate_limits.tokens)):
        if usage is None:
            continue
        limit = usage.requests_limit if kind == "requests" else usage.tokens_limit
        used = usage.requests_used if kind == "requests" else usage.tokens_used
        if limit is None:
            continue
        headers[f"x-ratelimit-limit-{kind}"] = str(limit)
        headers[f"x-ratelimit-remaining-{kind}"] = str(max(limit - used, 0))
        if usage.resets_at is not None:
            headers[f"x-ratelimit-reset-{kind}"] = f"{max(math.ceil((usage.resets_at - now).total_seconds()), 0)}s"
    return headers
