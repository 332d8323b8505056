"""What every function shares: powertools' logger, tracer and metrics, and the AWS client config.

Nothing here runs at import time beyond building the powertools objects (which read only their
environment); each feature's composition root (`fraud.wiring`, `parcels.wiring`) builds its
clients, adapters and services on first use, once per container.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.shared.functions import resolve_truthy_env_var_choice
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment
from botocore.config import Config

from dozor.domain.budget import Budget


class _NoSegment(BaseSegment):
    def close(self, end_time: int | None = None) -> None:
        pass

    def add_subsegment(self, subsegment: Any) -> None:
        pass

    def remove_subsegment(self, subsegment: Any) -> None:
        pass

    def put_annotation(self, key: str, value: str | numbers.Number | bool) -> None:
        pass

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        pass

    def add_exception(self, exception: BaseException, stack: list[Any], remote: bool = False) -> None:
        pass


class _Untraced(BaseProvider):
    """The tracer's provider when tracing is off: powertools would load X-Ray's SDK all the same."""

    @contextmanager
    def in_subsegment(self, name: str | None = None, **kwargs: Any) -> Iterator[BaseSegment]:
        yield _NoSegment()

    @asynccontextmanager
    async def in_subsegment_async(self, name: str | None = None, **kwargs: Any) -> AsyncIterator[BaseSegment]:
        yield _NoSegment()

    def put_annotation(self, key: str, value: str | numbers.Number | bool) -> None:
        pass

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        pass

    def patch(self, modules: Sequence[str]) -> None:
        pass

    def patch_all(self) -> None:
        pass


def _tracing_off() -> bool:
    """When powertools turns tracing off: asked to, outside Lambda, or under SAM local or Chalice."""
    if resolve_truthy_env_var_choice(env=os.getenv("POWERTOOLS_TRACE_DISABLED", "false")):
        return True
    in_lambda = bool(os.getenv("LAMBDA_TASK_ROOT"))
    return not in_lambda or bool(os.getenv("AWS_SAM_LOCAL") or os.getenv("AWS_CHALICE_CLI_MODE"))


logger = Logger()
# botocore is the only client the functions call out with. Patching every library X-Ray knows
# imports each one that is installed (requests, httplib, sqlite3, ...) at every cold start.
tracer = Tracer(provider=_Untraced()) if _tracing_off() else Tracer(patch_modules=("botocore",))
metrics = Metrics()

# Queue functions: nobody waits on them, so botocore may retry a throttled call a few times.
AWS_CONFIG = Config(connect_timeout=1, read_timeout=2, retries={"mode": "standard", "total_max_attempts": 3})


def client_config(budget: Budget | None = None) -> Config:
    """Timeouts and retries for a client; sized to ``budget`` when checkout waits on it.

    Within a budget botocore makes one attempt and gives up after the budget's connect and read
    timeouts: the domain retries (`dozor.domain.budget.within`) only while a retry still fits.
    """
    if budget is None:
        return AWS_CONFIG
    return Config(
        connect_timeout=budget.connect_timeout,
        read_timeout=budget.read_timeout,
        # botocore's "max_attempts" counts retries after the first try; "total_max_attempts" all of them.
        retries={"mode": "standard", "total_max_attempts": 1},
    )


def side_call_config(budget: Budget) -> Config:
    """For the calls checkout's decision can do without (the caller throttle's counts, the model
    registry's pointers): one attempt, bounded by `Budget.side_call_cost` in all."""
    half = max(round(budget.side_call_cost / 2, 3), 0.001)
    return Config(
        connect_timeout=half, read_timeout=half, retries={"mode": "standard", "total_max_attempts": 1}
    )


def aws_client(service: str, budget: Budget | None = None, config: Config | None = None) -> Any:
    """A boto3 client with Dozor's timeouts and retries (the checkout budget's, if given)."""
    return boto3.client(service, config=config or client_config(budget))
