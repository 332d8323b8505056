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

logger = Logger()
tracer = Tracer()
metrics = Metrics()

# Checkout waits on us: fail fast and let the domain degrade rather than hang on a slow call.
AWS_CONFIG = Config(connect_timeout=1, read_timeout=2, retries={"mode": "standard", "max_attempts": 3})


def aws_client(service: str) -> Any:
    """A boto3 client with Dozor's timeouts and retries."""
    return boto3.client(service, config=AWS_CONFIG)
