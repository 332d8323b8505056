"""`make demo`'s default run is big enough for its figures to mean something (issue 14)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from dozor_training import demo
from dozor_training.fraud.simulator import SimulationConfig, simulate
from dozor_training.parcels.simulator import simulate_shipments


def test_the_default_demo_has_enough_orders_frauds_and_lost_parcels() -> None:
    seed = 7  # the Makefile's SEED
    history = simulate(
        SimulationConfig(days=demo.DAYS, seed=seed, orders_per_day=demo.ORDERS_PER_DAY, start=demo.START)
    )
    parcels = simulate_shipments(history, seed)
    clock_end = demo.parcels_end(parcels, demo.START + timedelta(days=demo.DAYS))
    # what the summary judges: parcels whose outcome was known when the clock stopped
    outcomes = Counter(p.outcome for p in parcels if p.finished_at <= clock_end.timestamp())

    assert len(history) >= 2_000
    assert sum(s.is_fraud for s in history) >= 30
    assert outcomes["lost"] >= 20
