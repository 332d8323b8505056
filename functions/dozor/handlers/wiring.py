"""Builds the clients, adapters and services a function needs, once per container.

Nothing here runs at import time: the first invocation validates the settings and builds
everything; later invocations reuse it. Tests call `dependencies.cache_clear()` between setups.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from botocore.config import Config

from dozor.adapters.dynamodb import DynamoDecisionStore, DynamoLabelStore
from dozor.adapters.secrets import hash_key
from dozor.adapters.sqs import SqsReviewQueue
from dozor.domain.features import PiiHasher
from dozor.domain.feedback import FeedbackRecorder
from dozor.domain.model import PACKAGED_MODEL_DIR, FraudModel
from dozor.domain.scoring import OrderScoring
from dozor.settings import Settings

logger = Logger()
tracer = Tracer()
metrics = Metrics()

# Checkout waits on us: fail fast and let the domain degrade rather than hang on a slow call.
_AWS_CONFIG = Config(connect_timeout=1, read_timeout=2, retries={"mode": "standard", "max_attempts": 3})


@dataclass(frozen=True)
class Dependencies:
    settings: Settings
    store: DynamoDecisionStore
    scoring: OrderScoring
    model: FraudModel


@lru_cache(maxsize=1)
def dependencies() -> Dependencies:
    settings = Settings()  # filled from the environment
    model = FraudModel.load(settings.model_dir or PACKAGED_MODEL_DIR)
    store = DynamoDecisionStore(
        boto3.client("dynamodb", config=_AWS_CONFIG),
        settings.features_table_name,
        settings.decisions_table_name,
    )
    review_queue = SqsReviewQueue(boto3.client("sqs", config=_AWS_CONFIG), settings.review_queue_url)
    hasher = PiiHasher(hash_key(settings.hash_key_secret_arn))
    logger.info("dependencies ready", extra={"model_version": model.version})
    return Dependencies(settings, store, OrderScoring(store, review_queue, model, hasher), model)


@lru_cache(maxsize=1)
def feedback_recorder() -> FeedbackRecorder:
    """The feedback function's service: no model, no secret, just the three tables."""
    settings = Settings()
    if not settings.labels_table_name:
        raise RuntimeError("LABELS_TABLE_NAME is not set: FeedbackFunction needs the Labels table")
    store = DynamoLabelStore(
        boto3.client("dynamodb", config=_AWS_CONFIG),
        settings.labels_table_name,
        settings.decisions_table_name,
        settings.features_table_name,
    )
    return FeedbackRecorder(store)
