"""The parcel functions' composition root: ShipmentEvents and ParcelSweeper.

Built on first use, once per container, like `dozor.handlers.fraud.wiring`; tests call
`shipment_dependencies.cache_clear()` between setups.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from dozor.adapters.dynamodb.decisions import DynamoDecisionStore
from dozor.adapters.dynamodb.parcels import (
    DecisionFraudScores,
    DynamoAlertStore,
    DynamoCarrierFeeds,
    DynamoParcelStore,
)
from dozor.adapters.sns import SnsAlertTopic
from dozor.adapters.sqs import SqsFeedbackQueue
from dozor.domain.parcels.lanes import LaneDeadlines
from dozor.domain.parcels.model import PACKAGED_PARCEL_MODEL_DIR, ParcelLossModel
from dozor.domain.parcels.tracking import ParcelTracking
from dozor.handlers.wiring import aws_client, logger
from dozor.settings import ShipmentSettings


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
    ddb = aws_client("dynamodb")
    parcels = DynamoParcelStore(ddb, settings.shipments_table_name)
    alerts = DynamoAlertStore(ddb, settings.alerts_table_name, settings.shipments_table_name)
    decisions = DynamoDecisionStore(ddb, settings.features_table_name, settings.decisions_table_name)
    tracking = ParcelTracking(
        parcels,
        alerts,
        SnsAlertTopic(aws_client("sns"), settings.alerts_topic_arn),
        SqsFeedbackQueue(aws_client("sqs"), settings.feedback_queue_url),
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
