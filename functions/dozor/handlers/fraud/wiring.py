"""The fraud functions' composition root: ScoreOrder, OrderEvents, PendingCommits and Feedback.

Nothing here runs at import time: the first invocation validates the settings and builds
everything; later invocations reuse it. Tests call `dependencies.cache_clear()` between setups.
Handlers take the scoring service from `scoring()`, which first swaps in the models the registry
names (cached; see `RegistryModelSource`), and report shadow verdicts with `report_shadow`.
Every client of the scoring functions is sized to the decision budget (`client_config`), and the
service reports degraded decisions and hand-offs to the pending queue through `LoggedMonitor`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from aws_lambda_powertools.metrics import MetricUnit

from dozor.adapters.dynamodb.decisions import DynamoDecisionStore
from dozor.adapters.events import EventBridgeDecisionEvents
from dozor.adapters.registry import RegistryModelSource
from dozor.adapters.s3 import S3ModelArtifacts
from dozor.adapters.secrets import SecretKeyedHasher
from dozor.adapters.sqs import SqsPendingCommits, SqsReviewQueue
from dozor.adapters.ssm import SsmModelPointers
from dozor.domain.budget import Budget, Deadline
from dozor.domain.contracts import Decision
from dozor.domain.fraud.model import PACKAGED_MODEL_DIR, FraudModel
from dozor.domain.fraud.scoring import OrderScoring, ScoredOrder
from dozor.handlers.fraud.shadow import count_shadow
from dozor.handlers.wiring import aws_client, logger, metrics, side_call_config
from dozor.settings import FeedbackSettings, Settings

if TYPE_CHECKING:
    from dozor.domain.fraud.labels import FeedbackRecorder


@dataclass(frozen=True)
class Dependencies:
    settings: Settings
    store: DynamoDecisionStore
    scoring: OrderScoring
    model: FraudModel  # the packaged (or MODEL_DIR) model; the registry's live one is scoring.model
    models: RegistryModelSource | None = None
    hasher: SecretKeyedHasher | None = None  # its key is read on first need (`scoring`)


@lru_cache(maxsize=1)
def dependencies() -> Dependencies:
    settings = Settings()  # filled from the environment
    budget = Budget(settings.decision_budget_ms / 1000)
    model = FraudModel.load(settings.model_dir or PACKAGED_MODEL_DIR)
    store = DynamoDecisionStore(
        aws_client("dynamodb", budget),
        settings.features_table_name,
        settings.decisions_table_name,
    )
    sqs = aws_client("sqs", budget)
    review_queue = SqsReviewQueue(sqs, settings.review_queue_url)
    pending = (
        SqsPendingCommits(sqs, settings.pending_commits_queue_url)
        if settings.pending_commits_queue_url
        else None
    )
    events = (
        EventBridgeDecisionEvents(aws_client("events", budget), settings.decision_bus_name)
        if settings.decision_bus_name
        else None
    )
    hasher = SecretKeyedHasher(settings.hash_key_secret_arn, aws_client("secretsmanager", budget))
    service = OrderScoring(
        store,
        review_queue,
        model,
        hasher,
        budget=budget,
        pending=pending,
        events=events,
        monitor=LoggedMonitor(),
    )
    logger.info(
        "dependencies ready", extra={"model_version": model.version, "budget_ms": settings.decision_budget_ms}
    )
    return Dependencies(settings, store, service, model, _registry(settings, model, budget), hasher)


class LoggedMonitor:
    """Implements `dozor.domain.fraud.scoring.Monitor`: a log line with the reason, and a metric.

    ``DecisionDegraded`` over the decisions made is the degraded share the template alarms on.
    """

    def degraded(self, order_ids: Sequence[str], reason: str) -> None:
        logger.warning("degraded decision", extra={"order_ids": list(order_ids), "reason": reason})
        metrics.add_metric(name="DecisionDegraded", unit=MetricUnit.Count, value=len(order_ids))

    def handed_off(self, order_id: str, reason: str) -> None:
        logger.warning(
            "decision handed to the pending-commits queue", extra={"order_id": order_id, "reason": reason}
        )
        metrics.add_metric(name="DecisionPending", unit=MetricUnit.Count, value=1)

    def not_durable(self, order_id: str, reason: str) -> None:
        logger.error("decision neither stored nor queued", extra={"order_id": order_id, "reason": reason})
        metrics.add_metric(name="DecisionNotDurable", unit=MetricUnit.Count, value=1)


def _registry(settings: Settings, packaged: FraudModel, budget: Budget) -> RegistryModelSource | None:
    if not settings.active_model_parameter:
        return None
    pointers = SsmModelPointers(
        aws_client("ssm", config=side_call_config(budget)),  # a pointer read is a side call
        settings.active_model_parameter,
        settings.shadow_model_parameter,
        max_age=settings.model_refresh_seconds,
    )
    artifacts = (
        S3ModelArtifacts(aws_client("s3", budget), settings.model_bucket_name)
        if settings.model_bucket_name
        else None
    )
    return RegistryModelSource(
        pointers, artifacts, packaged, settings.model_cache_dir, settings.model_refresh_seconds
    )


def scoring(deadline: Deadline | None = None) -> OrderScoring:
    """The scoring service, with the models the registry names swapped in between invocations.

    Within checkout's ``deadline`` the hash key (a cold container's first read) is read only
    while one call still fits, and the registry's pointers only while the call leaves the
    decision its reserve (README § Latency budget).
    """
    deps = dependencies()
    budget = deps.scoring.budget
    if deps.hasher is not None:
        deps.hasher.ready(None if deadline is None else lambda: deadline.allows(budget.attempt_cost))
    if deps.models is not None:
        reserve = budget.side_call_cost + budget.decision_reserve
        current = deps.models.current(None if deadline is None else lambda: deadline.allows(reserve))
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
    count_shadow(decision.model_version, shadow.model_version, differs)  # the console's disagreement rate


@lru_cache(maxsize=1)
def feedback_recorder() -> FeedbackRecorder:
    """The feedback function's service: no model, no secret, just the three tables.

    Its modules (and the Feedback contract's model) are imported here, not with this module:
    the scoring functions import this module and never record feedback."""
    from dozor.adapters.dynamodb.labels import DynamoLabelStore  # noqa: PLC0415
    from dozor.domain.fraud.labels import FeedbackRecorder  # noqa: PLC0415

    settings = FeedbackSettings()  # filled from the environment
    store = DynamoLabelStore(
        aws_client("dynamodb"),
        settings.labels_table_name,
        settings.decisions_table_name,
        settings.features_table_name,
    )
    return FeedbackRecorder(store)
