"""Shared setup for the shipment tests: the deployed stack with the shipment functions' environment,
a small parcel-loss model in the packaged artifact format, and scan builders."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
import xgboost as xgb
from moto import mock_aws

from dozor.domain.parcels.lanes import LaneDeadlines, StageNorm
from dozor.domain.parcels.model import PARCEL_FEATURE_NAMES
from dozor.handlers.parcels.wiring import parcel_loss_model, shipment_dependencies
from dozor_local.invoke import lambda_context
from dozor_local.stack import LocalStack
from dozor_training.fitting import export_booster, parity_rows
from tests.helpers.aws_stack import sqs_event as queue_event

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
EVENTS = ROOT / "events"

# Every stage: the next scan is due within 2 days and the parcel is stalled after 4.
DUE_HOURS, STALLED_HOURS = 48.0, 96.0
THRESHOLD = 0.5


def build_parcel_model(directory: Path) -> Path:
    """A tiny parcel-loss artifact: risk rises with silence over the lane's stalled deadline."""
    rng = np.random.default_rng(7)
    rows = rng.uniform(0, 3, size=(400, len(PARCEL_FEATURE_NAMES))).astype(np.float32)
    silence = PARCEL_FEATURE_NAMES.index("silence_over_lane_stalled")
    labels = (rows[:, silence] > 1.5).astype(np.float32)
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 2, "eta": 0.5, "nthread": 1},
        xgb.DMatrix(rows, label=labels),
        num_boost_round=8,
    )
    export_booster(booster, directory, parity_rows(rows))
    metadata = {
        "version": "parcel-test-1",
        "feature_names": list(PARCEL_FEATURE_NAMES),
        "calibration": {"x": [0.0, 1.0], "y": [0.0, 1.0]},
        "likely_lost_threshold": THRESHOLD,
    }
    (directory / "metadata.json").write_text(json.dumps(metadata))
    stages = (
        "INFO_RECEIVED",
        "IN_TRANSIT",
        "CUSTOMS",
        "OUT_FOR_DELIVERY",
        "DELIVERY_FAILED",
        "AVAILABLE_FOR_PICKUP",
        "EXCEPTION",
    )
    norms = {"*": {s: StageNorm(DUE_HOURS, STALLED_HOURS, 100) for s in stages}}
    (directory / "lanes.json").write_text(LaneDeadlines(norms, {"*": (0.03, 1000)}).to_json())
    return directory


@dataclass
class ParcelStack:
    local: LocalStack
    calls: list[tuple[str, str]]

    def table(self, logical_id: str) -> str:
        return self.local.physical_id(logical_id)

    def context(self, function: str = "ShipmentEventsFunction") -> Any:
        return lambda_context(self.local.function(function), self.local.env_for(function))

    def parcel_item(self, parcel_id: str) -> dict[str, Any]:
        item = boto3.client("dynamodb").get_item(
            TableName=self.table("ShipmentsTable"), Key={"parcel_id": {"S": parcel_id}}, ConsistentRead=True
        )
        return dict(item.get("Item", {}))

    def parcel(self, parcel_id: str) -> dict[str, Any]:
        return dict(json.loads(self.parcel_item(parcel_id)["parcel"]["S"]))

    def alert_items(self) -> list[dict[str, Any]]:
        return list(boto3.client("dynamodb").scan(TableName=self.table("AlertsTable"))["Items"])

    def drain(self, logical_id: str) -> list[dict[str, Any]]:
        """Every message waiting in a queue: body and message attributes (as SQS gives them)."""
        sqs = boto3.client("sqs")
        url = self.local.queue_url(logical_id)
        out = []
        while True:
            messages = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
            ).get("Messages", [])
            if not messages:
                return out
            for m in messages:
                attributes = {k: v["StringValue"] for k, v in m.get("MessageAttributes", {}).items()}
                out.append({"body": json.loads(m["Body"]), "attributes": attributes})
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


@pytest.fixture
def parcel_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_parcel_model(tmp_path_factory.mktemp("parcel_model"))


@pytest.fixture
def parcel_stack(monkeypatch: pytest.MonkeyPatch, parcel_model_dir: Path) -> Iterator[ParcelStack]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        local = LocalStack.deploy(TEMPLATE)
        for name, value in local.env_for("ShipmentEventsFunction").items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("PARCEL_MODEL_DIR", str(parcel_model_dir))
        calls: list[tuple[str, str]] = []
        session = boto3._get_default_session()  # where the handlers' clients come from
        session.events.register(
            "before-call.*.*", lambda model, **_: calls.append((model.service_model.service_name, model.name))
        )
        shipment_dependencies.cache_clear()
        parcel_loss_model.cache_clear()
        yield ParcelStack(local, calls)
        shipment_dependencies.cache_clear()
        parcel_loss_model.cache_clear()
    boto3.DEFAULT_SESSION = None


def scan(
    parcel_id: str,
    status: str,
    at: datetime,
    *,
    event_id: str | None = None,
    order_id: str | None = None,
    region: str = "RU-NVS",
) -> dict[str, Any]:
    """One carrier scan in the Shipment event contract."""
    return {
        "event_id": event_id or f"{parcel_id}-{status}-{at:%Y%m%d%H%M}",
        "parcel_id": parcel_id,
        "order_id": order_id or f"ord-{parcel_id}",
        "carrier": "CAINIAO",
        "status": status,
        "occurred_at": at.isoformat(),
        "location": {"country": "RU", "region": region, "facility": "sorting centre"},
        "declared_value": 2490.0,
        "currency": "RUB",
        "category": "electronics",
        "origin_country": "CN",
        "destination_region": region,
    }


def sqs_event(bodies: list[str]) -> dict[str, Any]:
    """An SQS event with one record per body, in the shape of events/sqs_shipment_events.json."""
    return queue_event(bodies, "sqs_shipment_events.json")


def scheduled_event(at: datetime) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / "schedule_sweeper.json").read_text())
    event["time"] = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    event["id"] = str(uuid.uuid4())
    return event


def hours_ago(hours: float) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(hours=hours)
