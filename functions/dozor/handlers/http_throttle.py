"""Per-caller throttling of the HTTP API, in front of scoring (README § Throttling).

API Gateway's route throttles are shared by every caller, and HTTP APIs have neither usage plans
nor WAF; so the function limits each caller itself (`dozor.domain.throttle.CallerLimiter`): a
local token bucket per caller in each container, reconciled with a shared count per caller in
the CallerThrottle table at most once per ``CALLER_THROTTLE_SYNC_EVERY`` requests or
``CALLER_THROTTLE_SYNC_SECONDS``. A caller over its limit gets 429 with ``Retry-After`` and the
one error body; a counter store that misbehaves lets requests through (fail-open, logged and
counted): the limiter must never cost checkout its decision.

The caller is who API Gateway authorized (``requestContext.authorizer``): an IAM role (an
assumed-role session counts as its role, so every instance of a checkout service shares one
limit), an IAM user, or a JWT's client (``client_id``, else ``azp``, else ``sub``).
"""

from __future__ import annotations

import functools
import math
import re
import time
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, TypeVar

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.metrics import MetricUnit

from dozor.adapters.dynamodb.throttle import DynamoCallerCounts
from dozor.domain.budget import Budget, Deadline
from dozor.domain.throttle import CallerLimit, CallerLimiter
from dozor.handlers.authorizer import authorized
from dozor.handlers.http_errors import error_response
from dozor.handlers.wiring import aws_client, logger, metrics, side_call_config
from dozor.settings import ThrottleSettings

T = TypeVar("T")
_ASSUMED_ROLE = re.compile(
    r"^arn:(?P<partition>[^:]+):sts::(?P<account>\d+):assumed-role/(?P<role>[^/]+)/.+$"
)


class CallerThrottledError(Exception):
    """The caller is over its limit: answer 429, try again in ``retry_after`` seconds."""

    def __init__(self, caller: str, retry_after: float, reason: str) -> None:
        super().__init__(f"{caller}: {reason}")
        self.caller = caller
        self.retry_after = retry_after
        self.reason = reason


def caller_of(event: Mapping[str, Any]) -> str:
    """Who API Gateway authorized for this request, as the throttle counts callers."""
    caller = authorized(event)
    if caller.iam_arn:
        role = _ASSUMED_ROLE.match(caller.iam_arn)
        if role is None:
            return caller.iam_arn
        return f"arn:{role['partition']}:iam::{role['account']}:role/{role['role']}"
    client = caller.first_claim(("client_id", "azp", "sub"))
    if client:
        return f"jwt:{client}"
    # Only an unauthorized route gets here (the docs are not throttled) or a test event.
    return f"ip:{caller.source_ip}"


class LoggedThrottleMonitor:
    """Implements `dozor.domain.throttle.ThrottleMonitor`: a metric for each case, and a log line
    per caller at most every ``log_every`` seconds (a flood of 429s must not become a flood of logs)."""

    def __init__(self, log_every: float = 10.0) -> None:
        self._log_every = log_every
        self._logged: dict[str, float] = {}

    def throttled(self, caller: str, retry_after: float, reason: str) -> None:
        metrics.add_metric(name="CallerThrottled", unit=MetricUnit.Count, value=1)
        now = time.monotonic()
        if now - self._logged.get(caller, -math.inf) >= self._log_every:
            self._logged[caller] = now
            extra = {"caller": caller, "retry_after": retry_after, "reason": reason}
            logger.info("caller throttled", extra=extra)

    def store_failed(self, caller: str, reason: str) -> None:
        logger.warning("caller throttle counts unavailable; local limits only", extra={"reason": reason})
        metrics.add_metric(name="CallerThrottleStoreFailed", unit=MetricUnit.Count, value=1)


@lru_cache(maxsize=1)
def caller_limiter() -> CallerLimiter:
    """The container's limiter, built on first use (tests call ``caller_limiter.cache_clear()``)."""
    settings = ThrottleSettings()  # filled from the environment
    budget = Budget(settings.decision_budget_ms / 1000)
    counts = (
        DynamoCallerCounts(
            aws_client("dynamodb", config=side_call_config(budget)),
            settings.caller_throttle_table_name,
            settings.caller_throttle_window_seconds,
        )
        if settings.caller_throttle_table_name
        else None
    )
    return CallerLimiter(
        CallerLimit(settings.caller_rate_limit, settings.caller_burst_limit),
        counts,
        {name: CallerLimit(o.rate, o.burst) for name, o in settings.caller_limit_overrides.items()},
        window=settings.caller_throttle_window_seconds,
        sync_every=settings.caller_throttle_sync_every,
        sync_seconds=settings.caller_throttle_sync_seconds,
        monitor=LoggedThrottleMonitor(),
    )


def admit_caller(event: Mapping[str, Any], deadline: Deadline | None = None) -> None:
    """Let the request on, or raise `CallerThrottledError`.

    Within checkout's ``deadline`` the shared count is written only while the write's worst case
    still leaves the decision all it needs (`Budget.decision_reserve`).
    """
    fits: Callable[[], bool] = lambda: True  # noqa: E731
    if deadline is not None:
        budget = Budget(deadline.seconds)
        cost = budget.side_call_cost + budget.decision_reserve
        fits = lambda: deadline.allows(cost)  # noqa: E731
    caller = caller_of(event)
    verdict = caller_limiter().admit(caller, fits)
    if not verdict.allowed:
        raise CallerThrottledError(caller, verdict.retry_after, verdict.reason)


def per_caller_limit(
    app: APIGatewayHttpResolver, budget: Callable[[], Budget] | None = None
) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """A route decorator (outside the tracer's, so a 429 is no traced error): the caller's limit
    first, then the route. With ``budget``, checkout's deadline starts here and the route finds
    it in ``app.context["deadline"]``."""

    def decorate(route: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(route)
        def limited(*args: Any, **kwargs: Any) -> T:
            caller_limiter()  # a cold container builds it (and budget() its services) first:
            deadline = budget().start() if budget is not None else None  # the budget waits on I/O
            app.context["deadline"] = deadline
            admit_caller(app.current_event.raw_event, deadline)
            return route(*args, **kwargs)

        return limited

    return decorate


def throttled_response(error: CallerThrottledError) -> Response[str]:
    """429 in the one error body, with the whole seconds to wait in ``Retry-After``."""
    seconds = max(1, math.ceil(error.retry_after))
    return error_response(
        429,
        "throttled",
        f"this caller is {error.reason}; retry after {seconds} s",
        headers={"Retry-After": str(seconds)},
    )
