"""Hard rules and ops lists, evaluated beside the model.

Rules encode what the business already knows for sure (a card shared by several buyers, an
address receiving for many new accounts) and what ops decided by hand (allow/block/review lists,
keyed by hashed card, email, device, ip, address, or by buyer). Each rule names the least severe
decision it forces; the policy in `decisions` combines them with the model's score.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from dozor.domain.contracts import DecisionKind
from dozor.domain.fraud.features import FEATURE_INDEX, OrderView

# A row's features by name (floats), or a batch's feature columns by name (arrays): the rules
# are written with `&` rather than `and` so that they read both.
Facts = Mapping[str, Any]


@dataclass(frozen=True)
class Rule:
    id: str
    action: DecisionKind
    description: str
    matches: Callable[[Facts], Any]  # a bool for a row, a bool array for columns


def _at_least(feature: str, limit: float) -> Callable[[Facts], bool]:
    return lambda f: f[feature] >= limit  # NaN compares False: a missing value never matches


RULES: tuple[Rule, ...] = (
    Rule(
        "CARD_SHARED_BY_BUYERS",
        DecisionKind.DECLINE,
        "card used by 3+ buyers in two months",
        _at_least("card_distinct_buyers_2mo", 3),
    ),
    Rule(
        "CARD_VELOCITY_1H",
        DecisionKind.REVIEW,
        "card used 3+ times in the last hour",
        _at_least("card_orders_1h", 3),
    ),
    Rule(
        "DEVICE_BURST_1H",
        DecisionKind.REVIEW,
        "device placed 5+ orders in the last hour",
        _at_least("device_orders_1h", 5),
    ),
    Rule(
        "DROP_ADDRESS",
        DecisionKind.REVIEW,
        "a buyer new to Dozor (under 7 days) shipping to an address used by 4+ buyers in two months",
        # Alone, a shared address is mostly a pickup point serving a building (a fifth of all
        # orders on a busy month); a drop is where new accounts send their first orders.
        lambda f: (f["address_distinct_buyers_2mo"] >= 4) & (f["buyer_age_days"] < 7),
    ),
    Rule(
        "NEW_ACCOUNT_HIGH_VALUE",
        DecisionKind.REVIEW,
        "account under a day old, order of 50,000 RUB+",
        lambda f: (f["account_age_days"] < 1) & (f["amount_rub"] >= 50_000),
    ),
    Rule(
        "FOREIGN_CARD_HIGH_VALUE",
        DecisionKind.REVIEW,
        "card country differs from shipping, 30,000 RUB+",
        lambda f: (f["card_shipping_country_mismatch"] == 1) & (f["amount_rub"] >= 30_000),
    ),
    Rule(
        "DISPOSABLE_EMAIL",
        DecisionKind.REVIEW,
        "disposable email domain, order of 10,000 RUB+",
        lambda f: (f["email_disposable"] == 1) & (f["amount_rub"] >= 10_000),
    ),
)

_LIST_ACTIONS = {"block": DecisionKind.DECLINE, "review": DecisionKind.REVIEW, "allow": DecisionKind.APPROVE}


@dataclass(frozen=True)
class RuleHit:
    rule_id: str
    action: DecisionKind


class _RowFacts(Mapping[str, float]):
    """A feature row read by name, without building a dict per order."""

    def __init__(self, row: np.ndarray) -> None:
        self._row = row

    def __getitem__(self, name: str) -> float:
        return self._row.item(FEATURE_INDEX[name])  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[str]:
        return iter(FEATURE_INDEX)

    def __len__(self) -> int:
        return len(FEATURE_INDEX)


class _ColumnFacts(Mapping[str, np.ndarray]):
    """A batch's feature columns read by name."""

    def __init__(self, rows: np.ndarray) -> None:
        self._rows = rows

    def __getitem__(self, name: str) -> np.ndarray:
        return self._rows[:, FEATURE_INDEX[name]]

    def __iter__(self) -> Iterator[str]:
        return iter(FEATURE_INDEX)

    def __len__(self) -> int:
        return len(FEATURE_INDEX)


_HITS = tuple(RuleHit(rule.id, rule.action) for rule in RULES)


def evaluate(view: OrderView, row: np.ndarray) -> list[RuleHit]:
    """Every list entry and rule this order matches."""
    listed = list_hits(view)
    return listed + evaluate_row(row) if listed else evaluate_row(row)


def list_hits(view: OrderView) -> list[RuleHit]:
    """The ops list entries this order's entities are on."""
    listed = []
    for kind, a in view.aggregates.items():  # a loop: nearly no order is listed
        status = a.list_status
        if status is not None and status in _LIST_ACTIONS:
            listed.append((kind, status))
    if not listed:
        return []
    return [RuleHit(f"LIST_{s.upper()}_{kind.upper()}", _LIST_ACTIONS[s]) for kind, s in sorted(listed)]


def evaluate_row(row: np.ndarray) -> list[RuleHit]:
    """The rules a feature row matches (everything but the ops lists, which live in the store)."""
    facts = _RowFacts(row)
    return [hit for rule, hit in zip(RULES, _HITS, strict=True) if rule.matches(facts)]


# Up to this many rows (a queue batch holds 10) rules read each row's floats: numpy's cost per
# call on short columns is more than the reading; beyond it each rule tests the columns once.
_ROW_BY_ROW = 24


def evaluate_rows(rows: np.ndarray) -> list[list[RuleHit]]:
    """`evaluate_row` of each row of a batch (each rule tested once on the columns of a big one)."""
    if len(rows) <= _ROW_BY_ROW:
        return [evaluate_row(row) for row in rows]
    facts = _ColumnFacts(rows)
    matched = np.column_stack([np.broadcast_to(rule.matches(facts), len(rows)) for rule in RULES])
    return [[hit for hit, hits in zip(_HITS, flags, strict=True) if hits] for flags in matched.tolist()]


_SEVERITY = {DecisionKind.APPROVE: 0.0, DecisionKind.REVIEW: 1.0, DecisionKind.DECLINE: 2.0}


def rules_only_score(hits: list[RuleHit]) -> float:
    """The rules-only baseline's risk score: how much and how severely the order matched."""
    return sum(_SEVERITY[h.action] for h in hits)
