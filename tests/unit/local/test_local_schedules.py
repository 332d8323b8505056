"""Schedules of the local stack on a simulated clock: which ticks fire, and the time they carry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dozor_local.invoke import Invocation
from dozor_local.pollers import Scheduler, SimClock, schedule_period
from dozor_local.stack import EventSource

START = datetime(2026, 11, 1, tzinfo=UTC)


def scheduler(expression: str, received: list[dict[str, Any]], **props: Any) -> Scheduler:
    event = EventSource(name="Sweep", type="Schedule", properties={"Schedule": expression, **props})

    def invoke(payload: dict[str, Any]) -> Invocation:
        received.append(payload)
        return Invocation("r", result=None)

    return Scheduler(
        function="ParcelSweeperFunction",
        event=event,
        invoke=invoke,
        start=START,
        region="eu-central-1",
        account_id="123456789012",
    )


@pytest.mark.parametrize(
    ("expression", "period"),
    [
        ("rate(1 minute)", timedelta(minutes=1)),
        ("rate(15 minutes)", timedelta(minutes=15)),
        ("rate(2 days)", timedelta(days=2)),
    ],
)
def test_rate_expressions(expression: str, period: timedelta) -> None:
    assert schedule_period(expression) == period


def test_cron_is_refused_rather_than_silently_never_firing() -> None:
    with pytest.raises(ValueError, match="rate"):
        schedule_period("cron(0 12 * * ? *)")


def test_every_tick_up_to_the_simulated_now_fires_once_with_its_own_time() -> None:
    received: list[dict[str, Any]] = []
    clock = SimClock(START)
    sweep = scheduler("rate(1 hour)", received)
    clock.advance_to(START + timedelta(hours=3, minutes=30))
    assert sweep.run_due(clock.now()) == 3
    assert [e["time"] for e in received] == [
        "2026-11-01T01:00:00Z",
        "2026-11-01T02:00:00Z",
        "2026-11-01T03:00:00Z",
    ]
    assert {e["detail-type"] for e in received} == {"Scheduled Event"}
    assert received[0]["source"] == "aws.events" and received[0]["account"] == "123456789012"
    assert sweep.run_due(clock.now()) == 0  # nothing fires twice
    clock.advance_to(START)  # the simulated clock never goes back
    assert clock.now() == START + timedelta(hours=3, minutes=30)


def test_input_replaces_the_scheduled_event_and_disabled_schedules_stay_quiet() -> None:
    received: list[dict[str, Any]] = []
    scheduler("rate(1 hour)", received, Input='{"mode": "full"}').run_due(START + timedelta(hours=1))
    assert received == [{"mode": "full"}]
    quiet = scheduler("rate(1 hour)", received := [], Enabled=False)
    assert quiet.run_due(START + timedelta(days=1)) == 0 and received == []


def test_a_coarser_period_keeps_the_ticks_on_the_start_grid_and_fires_none_twice() -> None:
    received: list[dict[str, Any]] = []
    sweep = scheduler("rate(1 hour)", received)
    assert sweep.run_due(START + timedelta(hours=2)) == 2
    sweep.every(timedelta(hours=6))
    assert sweep.next_after(START + timedelta(hours=2)) == START + timedelta(hours=6)
    assert sweep.next_after(START + timedelta(hours=13)) == START + timedelta(hours=18)
    assert sweep.run_due(START + timedelta(hours=13)) == 2
    assert [e["time"] for e in received] == [
        "2026-11-01T01:00:00Z",
        "2026-11-01T02:00:00Z",
        "2026-11-01T06:00:00Z",
        "2026-11-01T12:00:00Z",
    ]
    with pytest.raises(ValueError, match="positive"):
        sweep.every(timedelta(0))


def test_a_disabled_schedule_has_no_next_tick() -> None:
    assert scheduler("rate(1 hour)", [], Enabled=False).next_after(START) is None
