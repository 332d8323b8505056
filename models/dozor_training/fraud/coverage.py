"""Which features a history can feed: feature families, and the columns that came out constant.

A history with only ids, amounts and times still gets every column serving computes (the model's
feature list is serving's), but most of them hold one value: NaN where the field was never sent,
or a count of 0 (a buyer with no card has 0 distinct cards). A tree cannot split on a column with
one value, so such a column changes nothing in the model; dropping it would only make the
artifact's feature list differ from what serving computes. It is *reported* instead, family by
family, so nobody reads "100 features" in the card of a model that learned from twelve.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dozor.domain.fraud.features import ENTITY_KINDS, FEATURE_NAMES

# Order features by what the history must hold for them to say anything.
_ORDER_FAMILIES = {
    "amount and time": ("amount_rub", "local_hour", "day_of_week"),
    "items": (
        "item_quantity",
        "item_lines",
        "item_categories",
        "max_unit_price_rub",
        "high_risk_category_share",
    ),
    "buyer account": ("account_age_days",),
    "payment, shipping and ip geography": (
        "payment_method",
        "foreign_card",
        "card_shipping_country_mismatch",
        "ip_shipping_country_mismatch",
        "card_ip_country_mismatch",
        "shipping_remoteness",
    ),
    "channel": ("channel",),
    "email address": ("email_disposable", "email_digit_share"),
}
_HISTORY_EXTRAS = {
    "buyer": ("amount_vs_buyer_avg_30d",),
    "seller": ("amount_vs_seller_avg_30d", "seller_spike_24h"),
}
_LOSS_FEATURES = ("seller_loss_rate_30d", "address_losses_30d", "buyer_losses_30d")


def _families(names: Sequence[str]) -> dict[str, list[str]]:
    """Family -> its features, in feature order; every feature in exactly one family."""
    family_of: dict[str, str] = {}
    for family, members in _ORDER_FAMILIES.items():
        family_of.update(dict.fromkeys(members, family))
    for kind, extras in _HISTORY_EXTRAS.items():
        family_of.update(dict.fromkeys(extras, f"{kind} history"))
    family_of.update(dict.fromkeys(_LOSS_FEATURES, "parcel losses"))
    for name in names:
        if name in family_of:
            continue
        if "_fraud_" in name:
            family_of[name] = "fraud labels"
        else:
            kinds = [k for k in ENTITY_KINDS if name.startswith(f"{k}_")]
            family_of[name] = f"{kinds[0]} history" if kinds else "other"
    grouped: dict[str, list[str]] = {}
    for name in names:
        grouped.setdefault(family_of[name], []).append(name)
    return grouped


FAMILIES = _families(FEATURE_NAMES)


def constant_columns(x: np.ndarray) -> np.ndarray:
    """Per column, whether it holds one value on these rows (NaN counts as a value: missing vs
    present is a split a tree can make, so a column of 0 and NaN is not constant)."""
    constant = np.ones(x.shape[1], dtype=bool)
    for j in range(x.shape[1]):
        column = x[:, j]
        missing = np.isnan(column)
        present = column[~missing]
        if len(present) == 0:
            continue  # never sent: constant NaN
        constant[j] = not missing.any() and bool(present.min() == present.max())
    return constant


@dataclass(frozen=True)
class Coverage:
    """The families a fitted matrix carried, and its constant columns."""

    families: dict[str, dict[str, Any]]  # family -> {"features", "informative", "constant": [names]}
    constant: list[str]

    @classmethod
    def of(cls, x: np.ndarray, names: Sequence[str] = FEATURE_NAMES) -> Coverage:
        flat = constant_columns(x)
        is_constant = dict(zip(names, flat.tolist(), strict=True))
        families = {
            family: {
                "features": len(members),
                "informative": sum(not is_constant[n] for n in members),
                "constant": [n for n in members if is_constant[n]],
            }
            for family, members in _families(names).items()
        }
        return cls(families, [n for n in names if is_constant[n]])

    @property
    def available(self) -> list[str]:
        return [f for f, v in self.families.items() if v["informative"]]

    @property
    def unavailable(self) -> list[str]:
        return [f for f, v in self.families.items() if not v["informative"]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "available_families": self.available,
            "unavailable_families": self.unavailable,
            "constant_features": self.constant,
            "families": {f: {k: v[k] for k in ("features", "informative")} for f, v in self.families.items()},
        }

    def report_lines(self) -> list[str]:
        """The report's table: each family, how many of its features carried information."""
        total = sum(v["features"] for v in self.families.values())
        varied = (
            f"{total - len(self.constant)} of {total} features varied on the training rows; the other "
            f"{len(self.constant)} held one value (never sent, or always the same), so the model "
            "could not use them. They stay in the artifact because serving computes them."
            if self.constant
            else f"All {total} features varied on the training rows."
        )
        lines = [
            varied,
            "",
            "| feature family | features | informative | constant |",
            "|---|---:|---:|---|",
        ]
        for family, v in self.families.items():
            constant = ", ".join(f"`{n}`" for n in v["constant"]) if v["informative"] else "all"
            lines.append(f"| {family} | {v['features']} | {v['informative']} | {constant or '—'} |")
        if self.unavailable:
            lines += ["", "Not in this history: " + ", ".join(self.unavailable) + "."]
        return lines
