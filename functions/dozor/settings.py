"""Function settings, read from the environment SAM sets (validated once, on first use)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True)

    features_table_name: str
    decisions_table_name: str
    review_queue_url: str
    hash_key_secret_arn: str
    # A model directory to load instead of the one packaged with the function (local runs, tests).
    model_dir: Path | None = None
    # Checkout payloads are a few KB; anything far larger is a client bug or an attack.
    max_body_bytes: int = 64 * 1024


class ShipmentSettings(BaseSettings):
    """Settings of the shipment-events and sweeper functions."""

    model_config = SettingsConfigDict(frozen=True)

    shipments_table_name: str
    alerts_table_name: str
    alerts_topic_arn: str
    feedback_queue_url: str
    features_table_name: str
    decisions_table_name: str  # the order's fraud decision is a parcel-loss feature
    # A parcel-model directory to load instead of the packaged one (local runs, tests).
    parcel_model_dir: Path | None = None
    sweep_page_size: int = 100
    # The sweeper stops paging this long before its Lambda timeout and saves a cursor.
    sweep_reserve_seconds: float = 10.0
    # How often the sweeper re-scores a parcel that stays overdue.
    rescore_every_hours: float = 6.0
