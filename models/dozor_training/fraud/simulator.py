"""A deterministic marketplace history: legit traffic, six fraud patterns and delayed labels.

The fraud model is trained and evaluated on this, and the demos replay it, so it has to carry the
signals real fraud carries (bursts on one card, many cards on one device, drops shared by strangers,
an old account suddenly on a new device and address, a small seller with a sudden crowd of new
buyers) and the noise that makes rules alone fall short (legit buyers with Kazakh or Armenian
cards, VPNs, trips abroad, pickup points shared by dozens of neighbours, new accounts every day,
and friendly fraud that looks like any other repeat purchase).

Everything is drawn from one `numpy.random.Generator` seeded from the config, in a fixed order,
so a seed always gives the same history. Legit traffic is generated column-wise with NumPy; the
fraud episodes (a few percent of orders) are generated one by one. The parts draw in this order:
the population (`sim_population`: sellers, buyers and their cards, devices, addresses), the legit
orders (`sim_legit`), the six fraud patterns (`sim_patterns`); `sim_tables` holds the reference
data they draw from and `sim_config` what is asked for. Moving a draw changes every history.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dozor.domain.clock import from_epoch, iso_z
from dozor_training.fraud.sim_config import (
    CAPITAL_REGIONS,
    DEFAULT_PATTERN_MIX,
    FRAUD_PATTERNS,
    LEGIT,
    PATTERNS,
    SimulatedOrder,
    SimulationConfig,
)
from dozor_training.fraud.sim_legit import legit_orders
from dozor_training.fraud.sim_patterns import FraudPatterns
from dozor_training.fraud.sim_population import Population
from dozor_training.fraud.sim_tables import Columns, rfc3339

__all__ = [
    "CAPITAL_REGIONS",
    "DEFAULT_PATTERN_MIX",
    "FRAUD_PATTERNS",
    "LEGIT",
    "PATTERNS",
    "SimulatedOrder",
    "SimulationConfig",
    "simulate",
    "write_history",
]


def simulate(config: SimulationConfig) -> list[SimulatedOrder]:
    """The marketplace history for `config`, sorted by `created_at`; the same config gives the same list."""
    # Millions of small dicts and no reference cycles: the cyclic collector would only rescan them
    # (a third of the run time at a million orders).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _run(config)
    finally:
        if collecting:
            gc.enable()


def write_history(
    orders: Sequence[SimulatedOrder], out_dir: str | Path, fmt: str = "jsonl"
) -> tuple[Path, Path]:
    """Write `orders.jsonl` (one contract payload a line) and `labels.jsonl` (in arrival order).

    A label line is `{"order_id", "label": "fraud"|"legit", "reported_at", "pattern"}`; orders that
    were never labelled have no line. Returns the two paths.
    """
    if fmt != "jsonl":
        raise ValueError(f"unsupported format {fmt!r}: only 'jsonl' is written")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    orders_path, labels_path = out / "orders.jsonl", out / "labels.jsonl"
    with orders_path.open("w", encoding="utf-8") as f:
        for o in orders:
            f.write(json.dumps(o.order, ensure_ascii=False, separators=(",", ":")))
            f.write("\n")
    labelled = sorted(
        (o.label_reported_at, o.order["order_id"], o) for o in orders if o.label_reported_at is not None
    )
    with labels_path.open("w", encoding="utf-8") as f:
        for reported_at, order_id, o in labelled:
            row = {
                "order_id": order_id,
                "label": "fraud" if o.is_fraud else "legit",
                "reported_at": iso_z(reported_at),
                "pattern": o.pattern,
            }
            f.write(json.dumps(row, separators=(",", ":")))
            f.write("\n")
    return orders_path, labels_path


def _run(cfg: SimulationConfig) -> list[SimulatedOrder]:
    pop = Population(cfg)
    legit_per_day = np.round(pop.day_volume * (1 - cfg.fraud_rate)).astype(np.int64)
    n_legit = int(legit_per_day.sum())
    n_fraud = round(n_legit * cfg.fraud_rate / (1 - cfg.fraud_rate))
    budgets = _allocate(n_fraud, cfg.pattern_mix) if n_fraud else dict.fromkeys(FRAUD_PATTERNS, 0)
    cols = legit_orders(pop, legit_per_day)
    cols.extend(FraudPatterns(pop, budgets["reshipping"]).run(budgets))
    return _assemble(pop, cols)


def _allocate(total: int, mix: Mapping[str, float]) -> dict[str, int]:
    """Split `total` over the fraud patterns by `mix` (largest remainder); each positive share gets one."""
    weights = np.array([max(0.0, float(mix.get(p, 0.0))) for p in FRAUD_PATTERNS])
    share = weights / weights.sum() * total
    counts = np.floor(share).astype(int)
    for i in np.argsort(-(share - counts), kind="stable")[: total - int(counts.sum())]:
        counts[i] += 1
    if total >= int((weights > 0).sum()):
        for i in np.flatnonzero((weights > 0) & (counts == 0)):
            counts[i] += 1
            counts[int(np.argmax(counts))] -= 1
    return {p: int(c) for p, c in zip(FRAUD_PATTERNS, counts, strict=True)}


def _assemble(pop: Population, cols: Columns) -> list[SimulatedOrder]:
    n = len(cols)
    ts = np.asarray(cols.ts, dtype=np.int64)
    order = np.argsort(ts, kind="stable")
    order_ids = pop.ids.hex("order", "ord_", n)
    created_at = rfc3339(ts[order])
    account_created = rfc3339(np.asarray(pop.buyer_created, dtype=np.int64))
    region_code = [pop.regions[r].code for r in pop.addr_region]
    buyer_id, buyer_email, seller_id = pop.buyer_id, pop.buyer_email, pop.seller_id
    card_fp, card_bin, card_country = pop.card_fp, pop.card_bin, pop.card_country
    addr_city, addr_postal, addr_line = pop.addr_city, pop.addr_postal, pop.addr_line
    out: list[SimulatedOrder] = []
    for pos, j in enumerate(order.tolist()):
        b = cols.buyer[j]
        buyer: dict[str, Any] = {"id": buyer_id[b], "account_created_at": account_created[b]}
        if (email := buyer_email[b]) is not None:
            buyer["email"] = email
        if (phone := cols.phone[j]) is not None:
            buyer["phone"] = phone
        c = cols.card[j]
        payment: dict[str, Any] = (
            {"method": cols.method[j]}
            if c < 0
            else {
                "method": cols.method[j],
                "card_fingerprint": card_fp[c],
                "card_bin": card_bin[c],
                "card_country": card_country[c],
            }
        )
        payload: dict[str, Any] = {
            "order_id": order_ids[pos],
            "created_at": created_at[pos],
            "buyer": buyer,
            "seller": {"id": seller_id[cols.seller[j]]},
            "amount": cols.amount[j],
            "currency": "CNY" if cols.cny[j] else "RUB",
            "ip": cols.ip[j],
            "ip_country": cols.ip_country[j],
            "channel": cols.channel[j],
            "payment": payment,
            "items": cols.items[j],
        }
        if (device := cols.device[j]) is not None:
            payload["device_id"] = device
        if (a := cols.address[j]) >= 0:
            payload["shipping"] = {
                "country": "RU",
                "region": region_code[a],
                "city": addr_city[a],
                "postal_code": addr_postal[a],
                "address": addr_line[a],
            }
        p, label = cols.pattern[j], cols.label_ts[j]
        reported = from_epoch(label) if label >= 0 else None
        out.append(SimulatedOrder(payload, p != 0, PATTERNS[p], reported))
    return out
