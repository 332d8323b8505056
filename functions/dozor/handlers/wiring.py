"""Builds the clients, adapters and services a function needs, once per container.

Nothing here runs at import time: the first invocation validates the settings and builds
everything; later invocations reuse it. Tests call `dependencies.cache_clear()` between setups.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from botocore.config import Config

from dozor.adapters.dynamodb import DynamoDecisionStore
from dozor.adapters.dynamodb_parcels import (
    DecisionFraudScores,
    DynamoAlertStore,
    DynamoCarrierFeeds,
    DynamoParcelStore,
)
from dozor.adapters.secrets import hash_key
from dozor.adapters.sns import SnsAlertTopic
from dozor.adapters.sqs import SqsFeedbackQueue, SqsReviewQueue
from dozor.domain.features import PiiHasher
from dozor.domain.lanes import LaneDeadlines
from dozor.domain.model import PACKAGED_MODEL_DIR, FraudModel
from dozor.domain.parcel_model import PACKAGED_PARCEL_MODEL_DIR, ParcelLossModel
from dozor.domain.parcel_tracking import ParcelTracking
from dozor.domain.scoring import OrderScoring
from dozor.settings import Settings, ShipmentSettings

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


# --- shipments ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShipmentDependencies:
    settings: ShipmentSettings
    tracking: ParcelTracking
    alerts: DynamoAlertStore


@lru_cache(maxsize=1)
def shipment_dependencies() -> ShipmentDependencies:
    """The parcel-tracking service for the shipment functions (the lane deadlines of the parcel model)."""
    settings = ShipmentSettings()  # filled from the environment
    deadlines = LaneDeadlines.load(settings.parcel_model_dir or PACKAGED_PARCEL_MODEL_DIR)
    ddb = boto3.client("dynamodb", config=_AWS_CONFIG)
    parcels = DynamoParcelStore(ddb, settings.shipments_table_name)
    alerts = DynamoAlertStore(ddb, settings.alerts_table_name, settings.shipments_table_name)
    decisions = DynamoDecisionStore(ddb, settings.features_table_name, settings.decisions_table_name)
    tracking = ParcelTracking(
        parcels,
        alerts,
        SnsAlertTopic(boto3.client("sns", config=_AWS_CONFIG), settings.alerts_topic_arn),
        SqsFeedbackQueue(boto3.client("sqs", config=_AWS_CONFIG), settings.feedback_queue_url),
        DecisionFraudScores(decisions),
        DynamoCarrierFeeds(ddb, settings.shipments_table_name),
        deadlines,
        rescore_every=timedelta(hours=settings.rescore_every_hours),
    )
    return ShipmentDependencies(settings, tracking, alerts)


@lru_cache(maxsize=1)
def parcel_loss_model() -> ParcelLossModel:
    """The parcel-loss model, loaded once per container (only the sweeper pays for xgboost)."""
    settings = shipment_dependencies().settings
    model = ParcelLossModel.load(settings.parcel_model_dir or PACKAGED_PARCEL_MODEL_DIR)
    logger.info("parcel model ready", extra={"parcel_model_version": model.version})
    return model
