"""What every function shares: powertools' logger, tracer and metrics, and the AWS client config.

Nothing here runs at import time beyond building the powertools objects (which read only their
environment); each feature's composition root (`fraud.wiring`, `parcels.wiring`) builds its
clients, adapters and services on first use, once per container.
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from botocore.config import Config

from dozor.domain.budget import Budget

logger = Logger()
# botocore is the only client the functions call out with. Patching every library X-Ray knows
# imports each one that is installed (requests, httplib, sqlite3, ...) at every cold start.
tracer = Tracer(patch_modules=("botocore",))
metrics = Metrics()

# Queue functions: nobody waits on them, so botocore may retry a throttled call a few times.
AWS_CONFIG = Config(connect_timeout=1, read_timeout=2, retries={"mode": "standard", "max_attempts": 3})


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
        retries={"mode": "standard", "max_attempts": 1},
    )


def side_call_config(budget: Budget) -> Config:
    """For the calls checkout's decision can do without (the caller throttle's counts, the model
    registry's pointers): one attempt, bounded by `Budget.side_call_cost` in all."""
    half = max(round(budget.side_call_cost / 2, 3), 0.001)
    return Config(connect_timeout=half, read_timeout=half, retries={"mode": "standard", "max_attempts": 1})


def aws_client(service: str, budget: Budget | None = None, config: Config | None = None) -> Any:
    """A boto3 client with Dozor's timeouts and retries (the checkout budget's, if given)."""
    return boto3.client(service, config=config or client_config(budget))
