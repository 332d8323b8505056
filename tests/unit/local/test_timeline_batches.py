"""The demo's carrier scans go out as each carrier's integration would send them: batches of ten."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from dozor_local.timeline import Outbox, QueueMessage
from dozor_training.demo import START, ScanFeed, parcels_end
from dozor_training.fraud.simulator import SimulationConfig, simulate
from dozor_training.parcels.simulator import simulate_shipments

HOLD = timedelta(hours=1)


def batched(feed: ScanFeed) -> tuple[list[tuple[datetime, QueueMessage]], list[tuple[str, list[Any]]]]:
    """The feed's messages, and the batches an outbox makes of them in the order they go out."""
    outbox, events, sent = Outbox(HOLD), [], []
    for moment, action in feed.events():
        assert isinstance(action, QueueMessage)
        events.append((moment, action))
        sent += outbox.due(moment)
        full = outbox.add(action, moment)
        if full is not None:
            sent.append(full)
    return events, sent + outbox.drain()


def test_every_scan_goes_out_once_in_its_carriers_batch_and_each_parcel_keeps_its_order() -> None:
    orders = simulate(SimulationConfig(days=1, seed=5, orders_per_day=300, start=START))
    shipped = simulate_shipments(orders, 5)
    events, sent = batched(ScanFeed(shipped, parcels_end(shipped, START + timedelta(days=1))))
    moments = {id(action.body): moment for moment, action in events}

    assert sorted(id(b) for _, bodies in sent for b in bodies) == sorted(moments)
    assert {queue for queue, _ in sent} == {"ShipmentEventsQueue"}
    for _, bodies in sent:
        assert 1 <= len(bodies) <= 10
        assert len({b["carrier"] for b in bodies}) == 1  # one carrier's integration per batch
        # a smaller batch rather than a message held an hour: a batch spans less than the hold
        assert moments[id(bodies[-1])] - moments[id(bodies[0])] < HOLD
    assert len(sent) < len(events) / 2 and any(len(bodies) == 10 for _, bodies in sent)  # batched

    fed: dict[str, list[int]] = defaultdict(list)
    for _, action in events:
        fed[action.body["parcel_id"]].append(id(action.body))
    went: dict[str, list[int]] = defaultdict(list)
    for _, bodies in sent:
        for body in bodies:
            went[body["parcel_id"]].append(id(body))
    assert went == fed  # every parcel's scans (duplicates, malformed copies too) in arrival order
