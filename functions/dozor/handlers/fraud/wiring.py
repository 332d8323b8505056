"""The fraud functions' composition root: ScoreOrder, OrderEvents and Feedback.

Nothing here runs at import time: the first invocation validates the settings and builds
everything; later invocations reuse it. Tests call `dependencies.cache_clear()` between setups.
Handlers take the scoring service from `scoring()`, which first swaps in the models the registry
names (cached; see `RegistryModelSource`), and report shadow verdicts with `report_shadow`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from aws_lambda_powertools.metrics import MetricUnit

from dozor.adapters.dynamodb.decisions import DynamoDecisionStore
from dozor.adapters.dynamodb.labels import DynamoLabelStore
from dozor.adapters.registry import RegistryModelSource
from dozor.adapters.s3 import S3ModelArtifacts
from dozor.adapters.secrets import hash_key
from dozor.adapters.sqs import SqsReviewQueue
from dozor.adapters.ssm import SsmModelPointers
from dozor.domain.contracts import Decision
from dozor.domain.fraud.labels import FeedbackRecorder
from dozor.domain.fraud.model import PACKAGED_MODEL_DIR, FraudModel
from dozor.domain.fraud.scoring import OrderScoring, ScoredOrder
from dozor.domain.privacy import PiiHasher
from dozor.handlers.wiring import aws_client, logger, metrics
from dozor.settings import FeedbackSettings, Settings


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
        aws_client("dynamodb"),
        settings.features_table_name,
        settings.decisions_table_name,
    )
    review_queue = SqsReviewQueue(aws_client("sqs"), settings.review_queue_url)
    hasher = PiiHasher(hash_key(settings.hash_key_secret_arn))
    logger.info("dependencies ready", extra={"model_version": model.version})
    return Dependencies(
        settings, store, OrderScoring(store, review_queue, model, hasher), model, _registry(settings, model)
    )


def _registry(settings: Settings, packaged: FraudModel) -> RegistryModelSource | None:
    if not settings.active_model_parameter:
        return None
    pointers = SsmModelPointers(
        aws_client("ssm"),
        settings.active_model_parameter,
        settings.shadow_model_parameter,
        max_age=settings.model_refresh_seconds,
    )
    artifacts = (
        S3ModelArtifacts(aws_client("s3"), settings.model_bucket_name) if settings.model_bucket_name else None
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
        aws_client("dynamodb"),
        settings.labels_table_name,
        settings.decisions_table_name,
        settings.features_table_name,
    )
    return FeedbackRecorder(store)
