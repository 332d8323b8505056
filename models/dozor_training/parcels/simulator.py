"""Parcels for simulated orders: carrier scans with lane-dependent delays, losses and bad data.

Every order with a shipping address becomes one parcel from China. Its journey is origin sorting,
export, line haul, customs and one to four domestic hops (more the further from Moscow), then a
courier or a pickup point. On the way the simulator adds what makes parcel tracking hard:

- losses, more likely far from the capitals, with some carriers, for valuable goods, for a few
  bad sellers and for reshipping fraud; a lost parcel simply stops being scanned (sometimes after
  an EXCEPTION), the carrier may declare it LOST weeks later and the buyer may claim first;
- delays that end well: customs holds (with an EXCEPTION scan), line-haul delays, failed delivery
  attempts, parcels nobody collects that are RETURNED;
- reporting noise: scans reported hours or days late, some twice, so they arrive out of order,
  and carrier outages during which nothing arrives and everything is back-filled afterwards.

The truth (delivered / lost / returned, when a loss became certain) stays with each
`SimulatedParcel`; the events are what a carrier would send. Draws come from one
`random.Random` seeded by the caller in a fixed order, so a seed gives the same parcels.
"""

from __future__ import annotations

import bisect
import contextlib
import gc
import heapq
import json
import math
import random
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dozor.domain.clock import DAY, HOUR, from_epoch, iso_z
from dozor.domain.contracts import RUB_PER_UNIT
from dozor.domain.feedback import Loss
from dozor.domain.geography import REGIONS, remoteness_tier
from dozor.domain.parcels.lanes import LaneDeadlines
from dozor.domain.parcels.shipments import Parcel, ParcelStatus, ScanRecord, build_parcel
from dozor_training.fraud.simulator import SimulatedOrder

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

DELIVERED, LOST, RETURNED = "delivered", "lost", "returned"

# name, share of parcels, loss multiplier, transit time multiplier
CARRIERS: tuple[tuple[str, float, float, float], ...] = (
    ("cainiao", 0.45, 1.0, 1.0),
    ("russian_post", 0.25, 1.8, 1.35),
    ("cdek", 0.18, 0.6, 0.85),
    ("boxberry", 0.12, 0.9, 1.0),
)
BASE_LOSS = 0.011
TIER_LOSS = (1.0, 1.4, 2.3, 3.6)
TIER_HOPS = (1, 2, 3, 4)  # domestic sorting hops after customs
TIER_HOP_HOURS = (16.0, 22.0, 34.0, 58.0)  # median hours per domestic hop
VALUABLE = frozenset({"phones", "computers", "electronics", "jewelry"})
BAD_SELLER_SHARE = 0.03  # sellers who "ship" parcels that never arrive
BAD_SELLER_LOSS = 6.0
FRAUD_LOSS = {"reshipping": 4.0}  # reshippers' drops make parcels vanish; other fraud ships normally
OTHER_FRAUD_LOSS = 1.5


@dataclass(frozen=True, slots=True)
class SimulatedScan:
    event_id: str
    status: ParcelStatus
    occurred_at: float  # epoch seconds
    received_at: tuple[float, ...]  # when each copy reached Dozor (two copies: a duplicate)
    region: str | None
    facility: str


@dataclass
class SimulatedParcel:
    """One parcel's scans and its truth."""

    parcel_id: str
    order_id: str
    seller_id: str
    carrier: str
    destination_region: str | None
    category: str | None
    declared_value: float  # USD
    is_fraud_order: bool
    outcome: str  # delivered | lost | returned
    scans: tuple[SimulatedScan, ...]
    loss_certain_at: float | None  # lost parcels: the carrier's LOST scan arrives or the buyer claims
    claim_at: float | None  # the buyer's "item not received" claim, if any
    _records: tuple[ScanRecord, ...] | None = field(default=None, repr=False)
    _arrivals: list[tuple[float, int]] | None = field(default=None, repr=False)

    @property
    def shipped_at(self) -> float:
        return self.scans[0].occurred_at

    @property
    def finished_at(self) -> float:
        """When the outcome became known to Dozor: final scan received, or the loss certain."""
        if self.outcome == LOST:
            assert self.loss_certain_at is not None
            return self.loss_certain_at
        return min(self.scans[-1].received_at)

    def records(self) -> tuple[ScanRecord, ...]:
        """The scans as `ScanRecord`s (one per event, manifest fields included), in journey order."""
        if self._records is None:
            self._records = tuple(
                ScanRecord(
                    event_id=s.event_id,
                    status=s.status,
                    occurred_at=EPOCH + timedelta(seconds=s.occurred_at),
                    carrier=self.carrier,
                    country="CN" if s.region is None else "RU",
                    region=s.region,
                    facility=s.facility,
                    declared_value=self.declared_value,
                    currency="USD",
                    category=self.category,
                    origin_country="CN",
                    destination_region=self.destination_region,
                    seller_id=self.seller_id,
                )
                for s in self.scans
            )
        return self._records

    def arrivals(self) -> list[tuple[float, int]]:
        """(received_at, scan index) for every copy that reached Dozor, in arrival order."""
        if self._arrivals is None:
            self._arrivals = sorted((r, i) for i, s in enumerate(self.scans) for r in s.received_at)
        return self._arrivals

    def known_at(self, t: float) -> list[ScanRecord]:
        """The scans Dozor had received by epoch `t` (duplicates collapse in the parcel)."""
        arrivals = self.arrivals()
        n = bisect.bisect_right(arrivals, (t, math.inf))
        records = self.records()
        return [records[i] for _, i in arrivals[:n]]

    def parcel_at(self, t: float, deadlines: LaneDeadlines | None = None) -> Parcel | None:
        """The parcel as Dozor saw it at epoch `t`, or None before its first scan arrived."""
        known = self.known_at(t)
        if not known:
            return None
        return build_parcel(self.parcel_id, self.order_id, known, deadlines)

    def final_parcel(self) -> Parcel:
        return build_parcel(self.parcel_id, self.order_id, self.records())

    def events(self) -> Iterator[tuple[float, dict[str, Any]]]:
        """(received_at, shipment event payload) for every copy, in arrival order."""
        for received, i in self.arrivals():
            s = self.scans[i]
            yield (
                received,
                {
                    "event_id": s.event_id,
                    "parcel_id": self.parcel_id,
                    "order_id": self.order_id,
                    "carrier": self.carrier,
                    "status": s.status.value,
                    "occurred_at": iso_z(from_epoch(s.occurred_at)),
                    "location": {
                        "country": "CN" if s.region is None else "RU",
                        "region": s.region,
                        "facility": s.facility,
                    },
                    "declared_value": self.declared_value,
                    "currency": "USD",
                    "category": self.category,
                    "origin_country": "CN",
                    "destination_region": self.destination_region,
                    "seller_id": self.seller_id,
                },
            )


@dataclass(frozen=True)
class Outage:
    carrier: str
    start: float
    end: float


Step = tuple[ParcelStatus, float, str | None, str]  # status, occurred at, region, facility


class _Journeys:
    """Draws parcels; every random choice goes through `self.rng`, in a fixed order."""

    def __init__(self, orders: Sequence[SimulatedOrder], seed: int) -> None:
        self.rng = random.Random(seed)
        self.orders = orders
        self.carrier_names = [c[0] for c in CARRIERS]
        self.carrier_weights = [c[1] for c in CARRIERS]
        self.carrier_loss = {c[0]: c[2] for c in CARRIERS}
        self.carrier_speed = {c[0]: c[3] for c in CARRIERS}
        self.outages = self._outages()
        self.bad_sellers: set[str] = set()
        for seller in sorted({o.order["seller"]["id"] for o in orders}):
            if self.rng.random() < BAD_SELLER_SHARE:
                self.bad_sellers.add(seller)

    def _outages(self) -> dict[str, list[Outage]]:
        """About one reporting outage per carrier per three weeks, lasting one to four days."""
        if not self.orders:
            return {}
        first = self.orders[0].order["created_at"]
        start = _epoch(first)
        end = _epoch(self.orders[-1].order["created_at"]) + 90 * DAY
        outages: dict[str, list[Outage]] = {}
        for carrier in self.carrier_names:
            t, found = start, []
            while True:
                t += self.rng.expovariate(1 / (21 * DAY))
                if t > end:
                    break
                found.append(Outage(carrier, t, t + self.rng.uniform(1, 4) * DAY))
            outages[carrier] = found
        return outages

    def _received(self, carrier: str, occurred: float) -> tuple[float, ...]:
        rng = self.rng
        u = rng.random()
        if u < 0.8:
            lag = rng.uniform(300, 2 * HOUR)
        elif u < 0.97:
            lag = rng.uniform(2 * HOUR, DAY)
        else:
            lag = rng.uniform(DAY, 4 * DAY)
        copies = [occurred + lag]
        if rng.random() < 0.04:
            copies.append(copies[0] + rng.uniform(600, 36 * HOUR))
        # While a carrier's feed is down nothing gets through; afterwards it back-fills in a burst.
        return tuple(self._after_outages(carrier, t) for t in copies)

    def _after_outages(self, carrier: str, received: float) -> float:
        for outage in self.outages[carrier]:
            if outage.start <= received < outage.end:
                return outage.end + self.rng.uniform(0, 6 * HOUR)
        return received

    def parcel(self, sim: SimulatedOrder) -> SimulatedParcel | None:
        """The parcel of one order (None for digital goods); the steps draw in this order."""
        order = sim.order
        shipping = order.get("shipping") or {}
        if not shipping.get("region"):
            return None  # digital goods: nothing ships
        region = shipping["region"]
        tier = remoteness_tier(region)
        tier = 1 if tier is None else tier
        carrier = self.rng.choices(self.carrier_names, self.carrier_weights)[0]
        speed = self.carrier_speed[carrier]
        items = order.get("items") or []
        category = items[0].get("category") if items else None
        seller = order["seller"]["id"]
        lost = self._is_lost(sim, tier, carrier, category, seller)
        city = REGIONS[region].city if region in REGIONS else region
        created = _epoch(order["created_at"])
        steps, t = self._to_the_region(created, tier, speed, category, region, city)
        outcome = self._last_mile(steps, t, region, city)
        claim_at = None
        if lost:
            outcome = LOST
            steps, claim_at = self._vanish(steps, promised=created + (14 + 6 * tier) * DAY * speed)
        pid = "pcl_" + order["order_id"].removeprefix("ord_")
        scans = tuple(
            SimulatedScan(
                f"{pid}-{k:02d}", status, occurred, self._received(carrier, occurred), reg, facility
            )
            for k, (status, occurred, reg, facility) in enumerate(steps)
        )
        return SimulatedParcel(
            parcel_id=pid,
            order_id=order["order_id"],
            seller_id=seller,
            carrier=carrier,
            destination_region=region,
            category=category,
            declared_value=round(order["amount"] * RUB_PER_UNIT[order["currency"]] / RUB_PER_UNIT["USD"], 2),
            is_fraud_order=sim.is_fraud,
            outcome=outcome,
            scans=scans,
            loss_certain_at=_loss_certain_at(scans, claim_at) if lost else None,
            claim_at=claim_at,
        )

    def _is_lost(
        self, sim: SimulatedOrder, tier: int, carrier: str, category: str | None, seller: str
    ) -> bool:
        p_loss = BASE_LOSS * TIER_LOSS[tier] * self.carrier_loss[carrier]
        if category in VALUABLE:
            p_loss *= 1.6
        if seller in self.bad_sellers:
            p_loss *= BAD_SELLER_LOSS
        if sim.is_fraud:
            p_loss *= FRAUD_LOSS.get(sim.pattern, OTHER_FRAUD_LOSS)
        return self.rng.random() < min(p_loss, 0.9)

    def _to_the_region(
        self, created: float, tier: int, speed: float, category: str | None, region: str, city: str
    ) -> tuple[list[Step], float]:
        """Origin sorting, export, line haul, customs (sometimes a hold) and the domestic hubs."""
        rng = self.rng
        steps: list[Step] = []
        t = created + rng.lognormvariate(math.log(0.8 * DAY), 0.6)
        steps.append((ParcelStatus.INFO_RECEIVED, t, None, "seller"))
        t += rng.lognormvariate(math.log(30 * HOUR), 0.5)
        steps.append((ParcelStatus.IN_TRANSIT, t, None, "Guangzhou sorting centre"))
        t += rng.lognormvariate(math.log(36 * HOUR), 0.4) * speed
        steps.append((ParcelStatus.IN_TRANSIT, t, None, "export, departed China"))
        line_haul = rng.lognormvariate(math.log(4.5 * DAY), 0.3) * speed
        if rng.random() < 0.04:  # a missed flight or a stuck train: long silence, then it arrives
            line_haul += rng.uniform(4, 14) * DAY
        t += line_haul
        entry = "Vladivostok" if tier == 3 and rng.random() < 0.5 else "Moscow"
        steps.append((ParcelStatus.IN_TRANSIT, t, "RU-PRI" if entry == "Vladivostok" else "RU-MOW", entry))
        t += rng.lognormvariate(math.log(14 * HOUR), 0.5)
        steps.append((ParcelStatus.CUSTOMS, t, steps[-1][2], f"{entry} customs"))
        hold = 0.06 * (2.0 if category in VALUABLE else 1.0)
        if rng.random() < hold:
            t += rng.uniform(0.5, 2) * DAY
            steps.append((ParcelStatus.EXCEPTION, t, steps[-1][2], f"{entry} customs: held for inspection"))
            t += rng.uniform(3, 12) * DAY
        else:
            t += rng.lognormvariate(math.log(30 * HOUR), 0.6)
        steps.append((ParcelStatus.IN_TRANSIT, t, steps[-1][2], f"{entry} customs released"))
        for hop in range(TIER_HOPS[tier]):
            t += rng.lognormvariate(math.log(TIER_HOP_HOURS[tier] * HOUR), 0.5) * speed
            last_hop = hop == TIER_HOPS[tier] - 1
            steps.append((ParcelStatus.IN_TRANSIT, t, region, city if last_hop else f"hub {hop + 1}"))
        return steps, t

    def _last_mile(self, steps: list[Step], t: float, region: str, city: str) -> str:
        """A courier (with failed attempts) or a pickup point; appends the scans, returns the outcome."""
        rng = self.rng
        outcome = DELIVERED
        if rng.random() < 0.5:  # courier
            t += rng.uniform(4, 20) * HOUR
            steps.append((ParcelStatus.OUT_FOR_DELIVERY, t, region, city))
            while rng.random() < 0.08:
                t += rng.uniform(2, 9) * HOUR
                steps.append((ParcelStatus.DELIVERY_FAILED, t, region, city))
                t += rng.uniform(14, 40) * HOUR
                steps.append((ParcelStatus.OUT_FOR_DELIVERY, t, region, city))
            t += rng.uniform(1, 8) * HOUR
        else:  # pickup point
            t += rng.uniform(6, 30) * HOUR
            steps.append((ParcelStatus.AVAILABLE_FOR_PICKUP, t, region, f"{city} pickup point"))
            if rng.random() < 0.025:
                outcome = RETURNED
                t += rng.uniform(15, 30) * DAY
            else:
                t += rng.expovariate(1 / (1.8 * DAY))
        if outcome == RETURNED or rng.random() < 0.006:
            outcome = RETURNED
            steps.append((ParcelStatus.RETURNED, t, region, city))
        else:
            steps.append((ParcelStatus.DELIVERED, t, region, city))
        return outcome

    def _vanish(self, steps: list[Step], promised: float) -> tuple[list[Step], float | None]:
        """A lost parcel's scans and the buyer's claim, if any."""
        rng = self.rng
        claim_at = None
        # Vanishes after a scan somewhere between origin sorting and the last mile.
        keep = rng.randint(2, len(steps) - 1)
        steps = steps[:keep]
        last = steps[-1][1]
        if rng.random() < 0.2:
            steps.append((ParcelStatus.EXCEPTION, last + rng.uniform(2, 48) * HOUR, steps[-1][2], "damaged"))
            last = steps[-1][1]
        lost_scan_at = last + rng.uniform(20, 50) * DAY if rng.random() < 0.55 else None
        if rng.random() < 0.8:
            claim_at = max(promised + rng.uniform(1, 12) * DAY, last + rng.uniform(3, 10) * DAY)
        if lost_scan_at is not None:
            steps.append((ParcelStatus.LOST, lost_scan_at, steps[-1][2], "declared lost"))
        return steps, claim_at


def _loss_certain_at(scans: Sequence[SimulatedScan], claim_at: float | None) -> float:
    """When a loss became certain: the claim, or the LOST scan's arrival, whichever came first."""
    candidates = [c for c in (claim_at,) if c is not None]
    if scans[-1].status == ParcelStatus.LOST:
        candidates.append(min(scans[-1].received_at))
    # Neither the carrier nor the buyer said anything: ops write it off after 60 silent days.
    return min(candidates) if candidates else scans[-1].occurred_at + 60 * DAY


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def iter_shipments(orders: Sequence[SimulatedOrder], seed: int) -> Iterator[SimulatedParcel]:
    """The parcels of `simulate_shipments` one at a time, so a caller need not hold them all."""
    journeys = _Journeys(orders, seed)
    for order in orders:
        parcel = journeys.parcel(order)
        if parcel is not None:
            yield parcel


def simulate_shipments(orders: Sequence[SimulatedOrder], seed: int) -> list[SimulatedParcel]:
    """One parcel per shipped order, in order; the same orders and seed give the same parcels."""
    # Many small objects and no reference cycles: the cyclic collector would only rescan them.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return list(iter_shipments(orders, seed))
    finally:
        if collecting:
            gc.enable()


# Scan copies sorted in memory at a time before they go to a run file: about 150 MB of lines.
RUN_EVENTS = 250_000


def write_shipments(
    parcels: Iterable[SimulatedParcel], path: str | Path, run_events: int = RUN_EVENTS
) -> Path:
    """Write every scan copy as a shipment event (JSONL), in the order they reached Dozor.

    Parcels come in order of purchase but their scans reach Dozor weeks apart, so the file is an
    external merge sort: at most `run_events` lines are held and sorted at a time, written to a
    run file beside `path`, and the runs are merged at the end. Memory stays bounded whatever the
    number of parcels (the order is the same as sorting everything at once: by arrival time, then
    event id, ties in parcel order).
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".shipments-", dir=out.parent) as tmp:
        runs: list[Path] = []
        buffer: list[tuple[float, str, str]] = []
        for parcel in parcels:
            for received, payload in parcel.events():
                line = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
                buffer.append((received, payload["event_id"], line))
            if len(buffer) >= run_events:
                runs.append(_write_run(buffer, Path(tmp) / f"run-{len(runs):05d}"))
                buffer = []
        buffer.sort(key=_arrival)
        with out.open("w", encoding="utf-8") as f:
            if not runs:  # it all fitted: no run files
                f.writelines(line + "\n" for _, _, line in buffer)
                return out
            runs.append(_write_run(buffer, Path(tmp) / f"run-{len(runs):05d}"))
            with contextlib.ExitStack() as files:
                readers = [_read_run(files.enter_context(run.open(encoding="utf-8"))) for run in runs]
                f.writelines(line for _, _, line in heapq.merge(*readers, key=_arrival))
    return out


def _arrival(entry: tuple[float, str, str]) -> tuple[float, str]:
    return entry[0], entry[1]


def _write_run(buffer: list[tuple[float, str, str]], path: Path) -> Path:
    buffer.sort(key=_arrival)  # stable: ties keep parcel order, and earlier runs merge first
    with path.open("w", encoding="utf-8") as f:
        # repr() of a float reads back as the same float: the merge compares exact arrival times.
        f.writelines(f"{received!r}\t{event_id}\t{line}\n" for received, event_id, line in buffer)
    return path


def _read_run(lines: Iterable[str]) -> Iterator[tuple[float, str, str]]:
    for text in lines:
        received, event_id, line = text.split("\t", 2)
        yield float(received), event_id, line


def write_simulated_shipments(
    orders: Sequence[SimulatedOrder], seed: int, path: str | Path
) -> tuple[Path, list[Loss]]:
    """Simulate and write the shipments of `orders` without holding their parcels; their losses."""
    losses: list[Loss] = []

    def parcels() -> Iterator[SimulatedParcel]:
        for parcel in iter_shipments(orders, seed):
            losses.extend(simulated_losses([parcel]))
            yield parcel

    written = write_shipments(parcels(), path)
    return written, sorted(losses, key=lambda loss: (loss.reported_at, loss.order_id))


def simulated_losses(parcels: Sequence[SimulatedParcel]) -> list[Loss]:
    """When each lost parcel's loss became known (the carrier's LOST scan or the buyer's claim)."""
    return sorted(
        (
            Loss(p.order_id, from_epoch(p.loss_certain_at))
            for p in parcels
            if p.outcome == "lost" and p.loss_certain_at is not None
        ),
        key=lambda loss: (loss.reported_at, loss.order_id),
    )
