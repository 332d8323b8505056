"""What the marketplace simulator is asked for, and what it gives back for each order.

`SimulationConfig` is the whole input (a seed and the knobs); `SimulatedOrder` is one order's
contract payload with its ground truth (fraud or not, which pattern, when its label arrives).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

LEGIT = "legit"
FRAUD_PATTERNS = (
    "stolen_card_burst",
    "card_testing",
    "account_takeover",
    "reshipping",
    "colluding_seller",
    "friendly_fraud",
)
PATTERNS = (LEGIT, *FRAUD_PATTERNS)

# Share of fraudulent orders per pattern (normalised, so only the ratios matter).
DEFAULT_PATTERN_MIX: Mapping[str, float] = MappingProxyType(
    {
        "stolen_card_burst": 0.25,
        "card_testing": 0.15,
        "account_takeover": 0.15,
        "reshipping": 0.17,
        "colluding_seller": 0.10,
        "friendly_fraud": 0.18,
    }
)

CAPITAL_REGIONS = ("RU-MOW", "RU-SPE", "RU-MOS", "RU-LEN")


@dataclass(frozen=True)
class SimulatedOrder:
    order: dict[str, Any]  # the contract payload: `Order.model_validate(order)` accepts it
    is_fraud: bool
    pattern: str  # one of PATTERNS
    label_reported_at: datetime | None  # when the chargeback / confirmation arrives; None: never labelled


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate. `orders_per_day` is an ordinary day's volume; weekdays and 11.11 move around it."""

    days: int = 30
    seed: int = 7
    start: datetime = datetime(2026, 10, 1, tzinfo=UTC)
    orders_per_day: int = 3000
    fraud_rate: float = 0.02  # share of fraudulent orders overall
    pattern_mix: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_PATTERN_MIX), hash=False)
    capital_share: float = 0.55  # legit buyers living in Moscow / St Petersburg and their oblasts
    legit_label_rate: float = 0.3  # legit orders that get a delivered-and-reviewed confirmation
    peak_multiplier: float = 3.0  # 11.11 volume over an ordinary day

    def __post_init__(self) -> None:
        if self.days < 1 or self.orders_per_day < 1:
            raise ValueError("days and orders_per_day must be at least 1")
        if self.start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if not 0.0 <= self.fraud_rate < 1.0:
            raise ValueError("fraud_rate must be in [0, 1)")
        if not 0.0 <= self.capital_share <= 1.0 or not 0.0 <= self.legit_label_rate <= 1.0:
            raise ValueError("capital_share and legit_label_rate must be in [0, 1]")
        unknown = sorted(set(self.pattern_mix) - set(FRAUD_PATTERNS))
        if unknown:
            raise ValueError(f"unknown fraud patterns in pattern_mix: {unknown}")
        if any(w < 0 for w in self.pattern_mix.values()) or sum(self.pattern_mix.values()) <= 0:
            raise ValueError("pattern_mix weights must be non-negative with a positive sum")
