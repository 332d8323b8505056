"""Builds the clients, adapters and services a function needs, once per container.

Nothing here runs at import time: the first invocation validates the settings and builds
everything; later invocations reuse it. Tests call `dependencies.cache_clear()` between setups.
Handlers take the scoring service from `scoring()`, which first swaps in the models the registry
names (cached; see `RegistryModelSource`), and report shadow verdicts with `report_shadow`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from botocore.config import Config

from dozor.adapters.dynamodb import DynamoDecisionStore, DynamoLabelStore
from dozor.adapters.dynamodb_parcels import (
    DecisionFraudScores,
    DynamoAlertStore,
    DynamoCarrierFeeds,
    DynamoParcelStore,
)
from dozor.adapters.registry import RegistryModelSource
from dozor.adapters.s3 import S3ModelArtifacts
from dozor.adapters.secrets import hash_key
from dozor.adapters.sns import SnsAlertTopic
from dozor.adapters.sqs import SqsFeedbackQueue, SqsReviewQueue
from dozor.adapters.ssm import SsmModelPointers
from dozor.domain.contracts import Decision
from dozor.domain.features import PiiHasher
from dozor.domain.feedback import FeedbackRecorder
from dozor.domain.lanes import LaneDeadlines
from dozor.domain.model import PACKAGED_MODEL_DIR, FraudModel
from dozor.domain.parcel_model import PACKAGED_PARCEL_MODEL_DIR, ParcelLossModel
from dozor.domain.parcel_tracking import ParcelTracking
from dozor.domain.scoring import OrderScoring, ScoredOrder
from dozor.settings import FeedbackSettings, Settings, ShipmentSettings

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
    model: FraudModel  # the packaged (or MODEL_DIR) model; the registry's live one is scoring.model
    models: RegistryModelSource | None = None


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
    return Dependencies(
        settings, store, OrderScoring(store, review_queue, model, hasher), model, _registry(settings, model)
    )


def _registry(settings: Settings, packaged: FraudModel) -> RegistryModelSource | None:
    if not settings.active_model_parameter:
        return None
    pointers = SsmModelPointers(
        boto3.client("ssm", config=_AWS_CONFIG),
        settings.active_model_parameter,
        settings.shadow_model_parameter,
        max_age=settings.model_refresh_seconds,
    )
    artifacts = (
        S3ModelArtifacts(boto3.client("s3", config=_AWS_CONFIG), settings.model_bucket_name)
        if settings.model_bucket_name
        else None
    )
    return RegistryModelSource(
        pointers, artifacts, packaged, settings.model_cache_dir, settings.model_refresh_seconds
    )


def scoring() -> OrderScoring:
    """The scoring service, with the models the registry names swapped in between invocations."""
    deps = dependencies()
    if deps.models is not None:
        current = deps.models.current()
        deps.scoring.use_models(current.active, current.shadow)
    return deps.scoring


def report_shadow(scored: ScoredOrder, decision: Decision) -> None:
    """Log and measure what the shadow model would have decided; it never changes the decision."""
    shadow = scored.shadow
    if shadow is None or scored.replay:
        return
    differs = shadow.decision is not decision.decision
    logger.info(
        "shadow score",
        extra={
            "order_id": decision.order_id,
            "model_version": decision.model_version,
            "score": decision.score,
            "decision": decision.decision.value,
            "shadow_version": shadow.model_version,
            "shadow_score": shadow.score,
            "shadow_decision": shadow.decision.value,
        },
    )
    metrics.add_metric(name="ShadowScore", unit=MetricUnit.NoUnit, value=shadow.score)
    metrics.add_metric(name="ShadowScoreDelta", unit=MetricUnit.NoUnit, value=shadow.score - decision.score)
    metrics.add_metric(name="ShadowDecisionDiffers", unit=MetricUnit.Count, value=int(differs))


@lru_cache(maxsize=1)
def feedback_recorder() -> FeedbackRecorder:
    """The feedback function's service: no model, no secret, just the three tables."""
    settings = FeedbackSettings()  # filled from the environment
    store = DynamoLabelStore(
        boto3.client("dynamodb", config=_AWS_CONFIG),
        settings.labels_table_name,
        settings.decisions_table_name,
        settings.features_table_name,
    )
    return FeedbackRecorder(store)


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
