"""Function settings, read from the environment SAM sets (validated once, on first use).

Every function imports this module. The classes the ScoreOrder function reads (`Settings`,
`ThrottleSettings`, `ShadowTallySettings`) are built at import, as its first request, checkout's,
needs them; the others are ``defer_build``: each is built when its own function first reads it,
so the scoring function's cold start does not build the schemas of six classes it never reads.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True)

    features_table_name: str
    decisions_table_name: str
    review_queue_url: str
    hash_key_secret_arn: str
    # A model directory to load instead of the one packaged with the function (local runs, tests).
    model_dir: Path | None = None
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
    # How long checkout waits for a decision (README § Latency budget). The AWS clients' timeouts
    # are sized from it, and no retry starts that cannot finish inside it; a store that cannot be
    # read in time gives a degraded decision, one that cannot be written in time the pending queue.
    decision_budget_ms: int = Field(default=800, ge=50, le=10_000)
    # Where decisions the store could not take in time wait (PendingCommitsQueue); without it a
    # write that fails in time is a 503 (local runs without the queue).
    pending_commits_queue_url: str | None = None
    # The EventBridge bus decision events go to (DecisionBus); without it no events are published.
    decision_bus_name: str | None = None


class FeedbackSettings(BaseSettings):
    """Settings of the feedback function: the labels it stores and the counters it moves."""

    model_config = SettingsConfigDict(frozen=True, defer_build=True)

    labels_table_name: str
    decisions_table_name: str  # where a scored order's entities are kept
    features_table_name: str


class ShipmentSettings(BaseSettings):
    """Settings of the shipment-events and sweeper functions."""

    model_config = SettingsConfigDict(frozen=True, defer_build=True)

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


class QuarantineSettings(BaseSettings):
    """Where the queue functions put masked copies of permanently invalid records."""

    model_config = SettingsConfigDict(frozen=True, defer_build=True)

    quarantine_queue_url: str | None = None


class CallerLimitSetting(BaseModel):
    """One caller's limit in ``CALLER_LIMIT_OVERRIDES``: steady requests per second, and burst."""

    model_config = ConfigDict(frozen=True)

    rate: float = Field(gt=0)
    burst: int = Field(ge=1)


class ThrottleSettings(BaseSettings):
    """The scoring API's per-caller limits (README § Throttling; `dozor.domain.throttle`)."""

    model_config = SettingsConfigDict(frozen=True)

    # The shared counts (CallerThrottleTable); without it each container enforces the limits alone.
    caller_throttle_table_name: str | None = None
    # Every caller's limit unless overridden: half the route's default 100 requests/s, so no one
    # caller can take the whole route from the others.
    caller_rate_limit: float = Field(default=50, gt=0)
    caller_burst_limit: int = Field(default=100, ge=1)
    # JSON: {"<caller>": {"rate": 80, "burst": 160}, ...}; a caller is an IAM role ARN
    # (arn:aws:iam::<account>:role/<name>), an IAM user ARN, or "jwt:<client id>".
    caller_limit_overrides: dict[str, CallerLimitSetting] = Field(default_factory=dict)
    caller_throttle_window_seconds: float = Field(default=10, gt=0)
    # A container adds its admitted requests to the shared count once it holds this many, or
    # once this long has passed since its last addition, whichever comes first.
    caller_throttle_sync_every: int = Field(default=10, ge=1)
    caller_throttle_sync_seconds: float = Field(default=1.0, gt=0)
    decision_budget_ms: int = Field(default=800, ge=50, le=10_000)  # sizes the counter's client


class ShadowTallySettings(BaseSettings):
    """Where the scoring functions count the shadow model's disagreements (ShadowTallyTable)."""

    model_config = SettingsConfigDict(frozen=True)

    shadow_tally_table_name: str | None = None  # without it nothing is counted (local runs, tests)
    # Checkout's budget (Settings.decision_budget_ms): the tally's flush is a side call within it.
    decision_budget_ms: int = Field(default=800, ge=50, le=10_000)


class ReviewIntakeSettings(BaseSettings):
    """The review-intake function: review-queue messages into review cases."""

    model_config = SettingsConfigDict(frozen=True, defer_build=True)

    review_cases_table_name: str


class ConsoleSettings(BaseSettings):
    """The console function: what reviewers and ops read and change (README § The console)."""

    model_config = SettingsConfigDict(frozen=True, defer_build=True)

    features_table_name: str
    decisions_table_name: str
    labels_table_name: str
    review_cases_table_name: str
    list_entries_table_name: str
    shadow_tally_table_name: str
    shipments_table_name: str
    alerts_table_name: str
    alerts_topic_arn: str
    feedback_queue_url: str
    hash_key_secret_arn: str
    model_bucket_name: str | None = None
    active_model_parameter: str | None = None
    shadow_model_parameter: str | None = None
    model_refresh_seconds: int = 120
    parcel_model_dir: Path | None = None
    # Who may use the /v1/console routes in JWT mode (template: ConsoleScope, JwtSellerClaim): a
    # token must carry the scope, and a merchant's token (it carries the seller claim) never may.
    console_scope: str = Field(default="dozor/console", min_length=1, max_length=128)
    seller_claim: str = Field(default="seller_id", min_length=1, max_length=64)


class LaneReportSettings(BaseSettings):
    """The lane report function: where the published report is, and whose a JWT caller is."""

    model_config = SettingsConfigDict(frozen=True, defer_build=True)

    model_bucket_name: str
    # The JWT claim naming the merchant a token belongs to (template: JwtSellerClaim): a token
    # carrying it reads only that seller's view; one without it reads the marketplace's.
    seller_claim: str = Field(default="seller_id", min_length=1, max_length=64)
