"""The words a report uses for its task, and how it writes numbers.

`Task` names what is predicted ("fraud orders", "lost parcels") and who entity precision@k ranks,
so one report and one set of plots serve the fraud and the parcel-loss model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dozor_training.evaluation import LOGISTIC, MODEL, RULES_ONLY

SCORER_NAMES = {MODEL: "Model", RULES_ONLY: "Rules only", LOGISTIC: "Logistic regression"}


@dataclass(frozen=True)
class Task:
    """What is being predicted, in the words the report uses."""

    title: str  # "Dozor fraud model"
    positive: str  # the positive class as an adjective: "fraud", "lost"
    unit: str  # what a row is, plural: "orders", "parcels"
    entity: str | None = (
        None  # who entity precision@k ranks, plural: "buyers", "sellers"; None: no such metric
    )
    amount_word: str = "order amount"  # what the cost model's shares are shares of

    @property
    def positive_rows(self) -> str:
        return f"{self.positive} {self.unit}"

    @property
    def one_unit(self) -> str:
        return self.unit.removesuffix("s")


FRAUD_TASK = Task("Dozor fraud model", "fraud", "orders", "buyers")
PARCEL_LOSS_TASK = Task("Dozor parcel-loss model", "lost", "parcels", "sellers", "declared value")


def pct(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{100 * value:.{digits}f}%"


def num(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def rub(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} RUB"


def lookup(metrics: Mapping[str, Any], *path: str) -> Any:
    node: Any = metrics
    for key in path:
        if not isinstance(node, Mapping) or node.get(key) is None:
            return None
        node = node[key]
    return node


def scorer_name(scorer: str) -> str:
    return SCORER_NAMES.get(scorer, scorer)
