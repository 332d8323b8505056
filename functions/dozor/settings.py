"""Function settings, read from the environment SAM sets (validated once, on first use)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from pydantic import Field
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
    # The model registry (template: ModelBucket, ActiveModelParameter, ShadowModelParameter). Without
    # ACTIVE_MODEL_PARAMETER the function serves the packaged model (or MODEL_DIR) and nothing else.
    model_bucket_name: str | None = None
    active_model_parameter: str | None = None
    shadow_model_parameter: str | None = None
    # How long a read of the registry's pointers is trusted: a published version is served within it.
    model_refresh_seconds: int = 120
    # Where downloaded model versions are kept for the life of the container (Lambda's /tmp).
    model_cache_dir: Path = Field(default_factory=lambda: Path(tempfile.gettempdir()) / "dozor-models")
    # Checkout payloads are a few KB; anything far larger is a client bug or an attack.
    max_body_bytes: int = 64 * 1024
