"""Lane reliability: how long parcels take, how often they are lost, how risky the orders are.

Read from a history (orders, labels and, if there is one, the shipments file of scan events), one
row per shipped order, grouped three ways:

- ``by_area``: Moscow, St Petersburg, and the rest of Russia by remoteness tier (1..3);
- ``by_carrier_area``: each carrier in each of those areas;
- ``by_lane``: each carrier × destination region (the lane of `dozor.domain.parcels.lanes`);

plus ``weekly`` (the areas per week of the order) for the trend. Every group carries the same
`Figures`:

- delivery time p50 / p90 / p99, in days from the order to the DELIVERED scan;
- the share of finished parcels lost (a ``lost`` label or a LOST scan) and returned;
- the fraud rate (orders labelled fraud) and the chargeback rate by value (their amount over all);
- the share of alerts that were true: a parcel is alerted when the sweeper raised a STALLED or
  LIKELY_LOST alert on it (an alerts file: what `export-history` writes from the Alerts table), and
  the alert is true when the parcel was lost. A history without alerts falls back to a silence
  rule: alerted when the parcel stayed silent after a scan for longer than its lane's STALLED
  deadline (learned from the same history's delivered parcels, as the parcel model learns them).
  The report says which one it used (``alerts_from``). CARRIER_EXCEPTION alerts are the carrier's
  own word, not a warning Dozor worked out, and are not counted;
- the parcels behind each figure; a group with fewer than `SMALL_SAMPLE` is flagged
  ``small_sample`` (shown, not hidden).

A seller's view (`seller_view`) holds that seller's groups only, each beside the marketplace's
figures for the same group. The marketplace's figures are withheld (and said so) where fewer than
`MIN_OTHER_SELLERS` other sellers shipped on it, since they would then describe someone else's
parcels. No view holds an order id, a buyer or an address: only counts and rates.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from dozor.domain.clock import DAY
from dozor.domain.contracts import RUB_PER_UNIT
from dozor.domain.geography import normalise_region, remoteness_tier
from dozor.domain.parcels.alerts import Alert, AlertType
from dozor.domain.parcels.lanes import LaneDeadlines, learn_deadlines
from dozor.domain.parcels.shipments import (
    TERMINAL,
    Parcel,
    ParcelStatus,
    ScanRecord,
    ShipmentEvent,
    build_parcel,
)
from dozor_training.history import open_orders, read_labels, read_losses

SMALL_SAMPLE = 30  # parcels (or orders) below which a figure is flagged small_sample
MIN_OTHER_SELLERS = 3  # a seller sees the marketplace's figures of a group only with this many others
DELIVERED, LOST, RETURNED, OPEN = "delivered", "lost", "returned", "open"
NO_CARRIER = "unknown"  # orders without a shipments file: the lane's carrier is not known
AREAS = ("moscow", "st_petersburg", "tier1", "tier2", "tier3", "unknown")
AREA_NAMES = {
    "moscow": "Moscow",
    "st_petersburg": "St Petersburg",
    "tier1": "rest of Russia, tier 1",
    "tier2": "rest of Russia, tier 2",
    "tier3": "rest of Russia, tier 3",
    "unknown": "unknown region",
}
REPORT_VERSION = 1
# The alerts that say "this parcel may be lost", the ones whose truth the report measures.
LOSS_ALERTS = frozenset({AlertType.STALLED, AlertType.LIKELY_LOST})
SWEEPER, SILENCE_RULE = "sweeper", "silence_rule"
ALERT_RULES = {
    SWEEPER: "the sweeper's STALLED and LIKELY_LOST alerts; an alert is true when the parcel was lost",
    SILENCE_RULE: "no alerts in this history: a parcel counts as alerted when it stayed silent past its "
    "lane's STALLED deadline (learned from the history's delivered parcels); true when it was lost",
}


def area_of(region: str | None) -> str:
    """Moscow, St Petersburg, or the remoteness tier of any other region."""
    code = normalise_region(region)
    if code == "RU-MOW":
        return "moscow"
    if code == "RU-SPE":
        return "st_petersburg"
    tier = remoteness_tier(code)
    return "unknown" if tier is None else f"tier{max(tier, 1)}"


def week_of(t: datetime) -> str:
    """The Monday (UTC) of the week `t` falls in, as YYYY-MM-DD."""
    day = t.astimezone(UTC).date()
    return (day - timedelta(days=day.weekday())).isoformat()


@dataclass(frozen=True, slots=True)
class LaneRow:
    """One shipped order and what became of its parcel; nothing personal."""

    seller_id: str
    carrier: str
    region: str
    area: str
    week: str
    value_rub: float
    labelled: bool  # a fraud or legit verdict exists
    fraud: bool  # labelled fraud (a chargeback or a confirmed fraud)
    outcome: str  # delivered | lost | returned | open
    delivery_days: float | None  # order → DELIVERED scan
    alerted: bool  # a sweeper's loss alert, or (without alerts) silent past the STALLED deadline
    alerts_from: str = SILENCE_RULE  # which of the two


@dataclass(frozen=True)
class Figures:
    parcels: int
    delivered: int
    lost: int
    returned: int
    open: int
    delivery_days_p50: float | None
    delivery_days_p90: float | None
    delivery_days_p99: float | None
    lost_share: float | None  # of finished parcels
    returned_share: float | None
    orders_labelled: int
    fraud_orders: int
    fraud_rate: float | None  # fraud orders among all orders of the group
    value_rub: float
    fraud_value_rub: float
    chargeback_rate_by_value: float | None
    alerts: int
    true_alerts: int
    true_alert_share: float | None
    small_sample: bool
    sellers: int

    @classmethod
    def of(cls, rows: Sequence[LaneRow]) -> Figures:
        outcomes: dict[str, int] = defaultdict(int)
        for r in rows:
            outcomes[r.outcome] += 1
        finished = outcomes[DELIVERED] + outcomes[LOST] + outcomes[RETURNED]
        days = np.array([r.delivery_days for r in rows if r.delivery_days is not None], dtype=np.float64)
        p50, p90, p99 = (
            (round(float(q), 2) for q in np.quantile(days, [0.5, 0.9, 0.99]))
            if len(days)
            else (
                None,
                None,
                None,
            )
        )
        value = sum(r.value_rub for r in rows)
        fraud_value = sum(r.value_rub for r in rows if r.fraud)
        fraud = sum(r.fraud for r in rows)
        alerts = sum(r.alerted for r in rows)
        true_alerts = sum(r.alerted and r.outcome == LOST for r in rows)
        return cls(
            parcels=len(rows),
            delivered=outcomes[DELIVERED],
            lost=outcomes[LOST],
            returned=outcomes[RETURNED],
            open=outcomes[OPEN],
            delivery_days_p50=p50,
            delivery_days_p90=p90,
            delivery_days_p99=p99,
            lost_share=_share(outcomes[LOST], finished),
            returned_share=_share(outcomes[RETURNED], finished),
            orders_labelled=sum(r.labelled for r in rows),
            fraud_orders=fraud,
            fraud_rate=_share(fraud, len(rows)),
            value_rub=round(value, 2),
            fraud_value_rub=round(fraud_value, 2),
            chargeback_rate_by_value=_share(fraud_value, value),
            alerts=alerts,
            true_alerts=true_alerts,
            true_alert_share=_share(true_alerts, alerts),
            small_sample=len(rows) < SMALL_SAMPLE,
            sellers=len({r.seller_id for r in rows}),
        )


def _share(part: float, whole: float) -> float | None:
    return round(part / whole, 6) if whole else None


# --- reading a history --------------------------------------------------------------------------


def read_parcels(path: Path) -> dict[str, Parcel]:
    """The shipments file (JSON Lines of shipment events, any order) as one `Parcel` per order id."""
    scans: dict[str, list[ScanRecord]] = defaultdict(list)
    parcel_ids: dict[str, str] = {}
    with Path(path).open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            event = ShipmentEvent.model_validate_json(line)
            parcel_ids.setdefault(event.order_id, event.parcel_id)
            scans[event.order_id].append(ScanRecord.of(event))
    return {order_id: build_parcel(parcel_ids[order_id], order_id, s) for order_id, s in scans.items()}


def stalled(parcel: Parcel, deadlines: LaneDeadlines, lost_at: datetime | None = None) -> bool:
    """Whether the parcel stayed silent after some scan past its lane's STALLED deadline.

    The silence after a scan runs to the next scan, or for the last one to when the loss became
    known (`lost_at`); a parcel still travelling is judged on its scans so far.
    """
    scans = parcel.scans
    for i, scan in enumerate(scans):
        if scan.status in TERMINAL:
            continue
        ends = [
            t for t in (scans[i + 1].occurred_at if i + 1 < len(scans) else None, lost_at) if t is not None
        ]
        if not ends:
            continue
        silence = min(ends) - scan.occurred_at
        if silence > deadlines.stalled_after(parcel.lane, scan.status):
            return True
    return False


def read_alerts(path: Path) -> set[str]:
    """The order ids of the parcels the sweeper raised a loss alert on, from an alerts file (JSON
    Lines of the Alert contract, as `export-history` writes them)."""
    alerted = set()
    with Path(path).open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                alert = Alert.model_validate_json(line)
            except ValueError as error:
                raise ValueError(
                    f"{path}: line {number}: not an alert ({error.__class__.__name__})"
                ) from error
            if alert.type in LOSS_ALERTS:
                alerted.add(alert.order_id)
    return alerted


def outcome_of(parcel: Parcel | None, lost: bool) -> str:
    if lost or (parcel is not None and parcel.status == ParcelStatus.LOST):
        return LOST
    if parcel is None:
        return OPEN
    if parcel.status == ParcelStatus.DELIVERED:
        return DELIVERED
    if parcel.status == ParcelStatus.RETURNED:
        return RETURNED
    return OPEN


def read_rows(
    orders_path: Path,
    labels_path: Path | None,
    shipments_path: Path | None = None,
    deadlines: LaneDeadlines | None = None,
    alerts_path: Path | None = None,
) -> list[LaneRow]:
    """One row per shipped order (an order with a shipping region) of the history files; with an
    alerts file a row is alerted by the sweeper's alerts, else by the silence rule."""
    verdicts = {label.order_id: label.is_fraud for label in read_labels(labels_path)} if labels_path else {}
    losses = {loss.order_id: loss.reported_at for loss in read_losses(labels_path)} if labels_path else {}
    parcels = read_parcels(shipments_path) if shipments_path else {}
    swept = read_alerts(alerts_path) if alerts_path else None
    if deadlines is None and swept is None:
        deadlines = learn_deadlines(parcels.values())
    rows = []
    for order in open_orders(orders_path).iter_orders():
        region = order.shipping.region if order.shipping else None
        parcel = parcels.get(order.order_id)
        if not region and parcel is None:
            continue  # digital goods: nothing ships
        region = region or (parcel.lane.destination_region if parcel else None) or "?"
        lost_at = losses.get(order.order_id)
        outcome = outcome_of(parcel, lost_at is not None)
        delivered = parcel.scans[-1].occurred_at if parcel and outcome == DELIVERED else None
        rows.append(
            LaneRow(
                seller_id=order.seller.id,
                carrier=parcel.lane.carrier if parcel else NO_CARRIER,
                region=normalise_region(region) or region,
                area=area_of(region),
                week=week_of(order.created_at),
                value_rub=order.amount * RUB_PER_UNIT[order.currency],
                labelled=order.order_id in verdicts,
                fraud=verdicts.get(order.order_id, False),
                outcome=outcome,
                delivery_days=(delivered - order.created_at).total_seconds() / DAY if delivered else None,
                alerted=_alerted(order.order_id, parcel, swept, deadlines, lost_at),
                alerts_from=SILENCE_RULE if swept is None else SWEEPER,
            )
        )
    return rows


def _alerted(
    order_id: str,
    parcel: Parcel | None,
    swept: set[str] | None,
    deadlines: LaneDeadlines | None,
    lost_at: datetime | None,
) -> bool:
    if swept is not None:
        return order_id in swept
    return parcel is not None and deadlines is not None and stalled(parcel, deadlines, lost_at)


# --- grouping -----------------------------------------------------------------------------------

Key = Callable[[LaneRow], tuple[str, ...]]
GROUPINGS: dict[str, tuple[tuple[str, ...], Key]] = {
    "by_area": (("area",), lambda r: (r.area,)),
    "by_carrier_area": (("carrier", "area"), lambda r: (r.carrier, r.area)),
    "by_lane": (("carrier", "region", "area"), lambda r: (r.carrier, r.region, r.area)),
    "weekly": (("week", "area"), lambda r: (r.week, r.area)),
}


def _groups(rows: Iterable[LaneRow], key: Key) -> dict[tuple[str, ...], list[LaneRow]]:
    groups: dict[tuple[str, ...], list[LaneRow]] = defaultdict(list)
    for r in rows:
        groups[key(r)].append(r)
    return dict(sorted(groups.items(), key=lambda kv: tuple(_order(k) for k in kv[0])))


def _order(part: str) -> tuple[int, str]:
    return (AREAS.index(part), part) if part in AREAS else (-1, part)


def _entry(names: Sequence[str], key: tuple[str, ...], figures: Mapping[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = dict(zip(names, key, strict=True))
    if "area" in entry:
        entry["area_name"] = AREA_NAMES[entry["area"]]
    entry.update(figures)
    return entry


@dataclass
class LaneReport:
    """The marketplace's figures (as a JSON-ready dict) and each seller's view of them."""

    marketplace: dict[str, Any]
    sellers: dict[str, dict[str, Any]] = field(default_factory=dict)


def marketplace_report(rows: Sequence[LaneRow], generated_at: datetime | None = None) -> dict[str, Any]:
    report: dict[str, Any] = {
        "version": REPORT_VERSION,
        "view": "marketplace",
        "generated_at": (generated_at or datetime.now(UTC)).isoformat(),
        "small_sample_below": SMALL_SAMPLE,
        **alerts_from(rows),
        "weeks": sorted({r.week for r in rows}),
        "overall": asdict(Figures.of(rows)),
    }
    for name, (names, key) in GROUPINGS.items():
        report[name] = [_entry(names, k, asdict(Figures.of(g))) for k, g in _groups(rows, key).items()]
    return report


def alerts_from(rows: Iterable[LaneRow]) -> dict[str, str]:
    """Which alerts the report's true-alert shares judge, and the rule in words."""
    sources = {r.alerts_from for r in rows}
    source = SWEEPER if sources == {SWEEPER} else SILENCE_RULE
    return {"alerts_from": source, "alerts_rule": ALERT_RULES[source]}


class _Marketplace:
    """Every group's rows and marketplace figures, computed once for all the sellers' views."""

    def __init__(self, rows: Sequence[LaneRow]) -> None:
        self.rows = rows
        self.groups = {name: _groups(rows, key) for name, (_, key) in GROUPINGS.items()}
        self._figures: dict[tuple[str, tuple[str, ...]], dict[str, Any]] = {}
        self._sellers = {
            (name, k): {r.seller_id for r in g}
            for name, groups in self.groups.items()
            for k, g in groups.items()
        }
        self._sellers[("overall", ())] = {r.seller_id for r in rows}

    def pair(self, own: Sequence[LaneRow], name: str, key: tuple[str, ...], seller_id: str) -> dict[str, Any]:
        """The seller's figures of a group beside the marketplace's, withheld with too few others."""
        mine = asdict(Figures.of(own))
        mine.pop("sellers")
        pair: dict[str, Any] = {"seller": mine}
        if len(self._sellers[(name, key)] - {seller_id}) >= MIN_OTHER_SELLERS:
            if (name, key) not in self._figures:
                everyone = self.rows if name == "overall" else self.groups[name][key]
                market = asdict(Figures.of(everyone))
                market.pop("sellers")
                self._figures[(name, key)] = market
            pair["marketplace"] = self._figures[(name, key)]
        else:
            pair["marketplace"] = None
            pair["marketplace_withheld"] = f"fewer than {MIN_OTHER_SELLERS} other sellers on this group"
        return pair


def seller_view(
    rows: Sequence[LaneRow],
    seller_id: str,
    generated_at: datetime | None = None,
    marketplace: _Marketplace | None = None,
    own: Sequence[LaneRow] | None = None,
) -> dict[str, Any]:
    """One seller's groups, each with the seller's figures and the marketplace's (where allowed)."""
    market = marketplace or _Marketplace(rows)
    if own is None:
        own = [r for r in rows if r.seller_id == seller_id]
    view: dict[str, Any] = {
        "version": REPORT_VERSION,
        "view": "seller",
        "seller_id": seller_id,
        "generated_at": (generated_at or datetime.now(UTC)).isoformat(),
        "small_sample_below": SMALL_SAMPLE,
        "min_other_sellers": MIN_OTHER_SELLERS,
        **alerts_from(rows),
        "weeks": sorted({r.week for r in own}),
        "overall": market.pair(own, "overall", (), seller_id),
    }
    for name, (names, key) in GROUPINGS.items():
        view[name] = [
            _entry(names, k, market.pair(g, name, k, seller_id)) for k, g in _groups(own, key).items()
        ]
    return view


def build_report(
    rows: Sequence[LaneRow], sellers: Iterable[str] = (), generated_at: datetime | None = None
) -> LaneReport:
    """The marketplace report and the views of `sellers` (a seller without parcels gets an empty view)."""
    at = generated_at or datetime.now(UTC)
    market = _Marketplace(rows)
    by_seller: dict[str, list[LaneRow]] = defaultdict(list)
    for r in rows:
        by_seller[r.seller_id].append(r)
    views = {s: seller_view(rows, s, at, market, by_seller.get(s, [])) for s in sorted(set(sellers))}
    return LaneReport(marketplace_report(rows, at), views)


def all_sellers(rows: Iterable[LaneRow]) -> list[str]:
    return sorted({r.seller_id for r in rows})


def dumps(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"
