"""The decision policy: model score and rule hits in, APPROVE / REVIEW / DECLINE out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from dozor.domain.contracts import Decision, DecisionKind, Reason, RiskLevel
from dozor.domain.fraud.model import Thresholds
from dozor.domain.fraud.rules import RuleHit

_RANK = {DecisionKind.APPROVE: 0, DecisionKind.REVIEW: 1, DecisionKind.DECLINE: 2}
_RISK_FOR = {
    DecisionKind.APPROVE: RiskLevel.LOW,
    DecisionKind.REVIEW: RiskLevel.MEDIUM,
    DecisionKind.DECLINE: RiskLevel.HIGH,
}

_RISK_RANK = {level: rank for rank, level in enumerate(RiskLevel)}


def model_decision(score: float, thresholds: Thresholds) -> DecisionKind:
    if score >= thresholds.decline:
        return DecisionKind.DECLINE
    if score >= thresholds.review:
        return DecisionKind.REVIEW
    return DecisionKind.APPROVE


def combine(score: float, hits: list[RuleHit], thresholds: Thresholds) -> DecisionKind:
    """Block lists win; then allow lists; otherwise the most severe of model and rules."""
    kind = model_decision(score, thresholds)
    if not hits:  # most orders
        return kind
    if any(h.rule_id.startswith("LIST_BLOCK") for h in hits):
        return DecisionKind.DECLINE
    if any(h.rule_id.startswith("LIST_ALLOW") for h in hits):
        return DecisionKind.APPROVE
    return max([kind, *(h.action for h in hits)], key=_RANK.__getitem__)


def decide(
    *,
    order_id: str,
    score: float,
    hits: list[RuleHit],
    reasons: list[Reason],
    thresholds: Thresholds,
    model_version: str,
    degraded: bool,
    decided_at: datetime,
) -> Decision:
    kind = combine(score, hits, thresholds)
    by_score = _RISK_FOR[model_decision(score, thresholds)]
    by_decision = _RISK_FOR[kind]
    # The risk level says how risky the order is, so rules can raise it but an allow list
    # does not lower it: a reviewer still sees that the model found it risky.
    risk = max(by_score, by_decision, key=_RISK_RANK.__getitem__)
    return _decision(
        {
            "order_id": order_id,
            "decision": kind,
            "score": round(score, 6),
            "risk_level": risk,
            "reasons": reasons,
            "rules": [h.rule_id for h in hits],
            "model_version": model_version,
            "degraded": degraded,
            "decided_at": decided_at,
        }
    )


# The model's own validator, without `BaseModel.__init__`'s Python around it (every order).
_decision: Callable[[dict[str, object]], Decision] = Decision.__pydantic_validator__.validate_python
