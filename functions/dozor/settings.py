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
    # Only FeedbackFunction stores labels; the scoring functions never see this table.
    labels_table_name: str | None = None
    # Checkout payloads are a few KB; anything far larger is a client bug or an attack.
    max_body_bytes: int = 64 * 1024
