"""ParcelSweeperFunction on moto: overdue parcels found through the sharded due-time index (never a
table scan), paging within a time budget, resuming from its cursor, alerts raised once."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3

from dozor.adapters.dynamodb.parcels import DUE_SHARDS, DynamoCarrierFeeds, due_shard
from dozor.domain.parcels.alerts import AlertType
from dozor.handlers.parcels import parcel_sweeper, shipment_events
from dozor.handlers.parcels.wiring import parcel_loss_model, shipment_dependencies
from dozor_local.invoke import invoke_handler
from tests.helpers.shipments import (
    EVENTS,
    ParcelStack,
    hours_ago,
    parcel_model_dir,
    parcel_stack,
    scan,
    scheduled_event,
    sqs_event,
)

__all__ = ["parcel_model_dir", "parcel_stack"]  # fixtures


def _seed(stack: ParcelStack, parcels: dict[str, float]) -> None:
    """One IN_TRANSIT scan per parcel, `hours` ago, through the scan handler."""
    bodies = [json.dumps(scan(pid, "IN_TRANSIT", hours_ago(hours))) for pid, hours in parcels.items()]
    for start in range(0, len(bodies), 10):
        result = shipment_events.lambda_handler(sqs_event(bodies[start : start + 10]), stack.context())
        assert result["batchItemFailures"] == []


def _feed_live(stack: ParcelStack, since: datetime, until: datetime) -> None:
    """The carrier's other parcels' scans keep arriving (every 4 hours) from `since` to `until`."""
    feeds = DynamoCarrierFeeds(boto3.client("dynamodb"), stack.table("ShipmentsTable"))
    at = since
    while at < until:
        feeds.heard_from({"CAINIAO"}, at)
        at = min(at + timedelta(hours=4), until)
    feeds.heard_from({"CAINIAO"}, until)


def _sweep(stack: ParcelStack, at: datetime) -> dict[str, object]:
    """A scheduled sweep at `at`, the carrier's feed live since the last one."""
    _feed_live(stack, datetime.now(UTC), at)
    event = scheduled_event(at)
    result: dict[str, object] = parcel_sweeper.lambda_handler(event, stack.context("ParcelSweeperFunction"))
    return result


def test_sweeper_pages_within_its_budget_and_resumes_where_it_stopped(parcel_stack: ParcelStack) -> None:
    # Given 20 parcels silent for five days (past the 4-day deadline) and 5 scanned yesterday
    _seed(parcel_stack, {f"LP-OLD-{i:02d}": 120 for i in range(20)} | {f"LP-NEW-{i}": 20 for i in range(5)})
    tracking, model = shipment_dependencies().tracking, parcel_loss_model()
    now = datetime.now(UTC)
    parcel_stack.calls.clear()

    # When a run may only query 5 pages of 2 before its time runs out
    budget = iter([timedelta(minutes=1)] * 5 + [timedelta(0)] * 100)
    first = tracking.sweep(now, model, lambda: next(budget), page_size=2)
    # and the next run has all the time it needs
    second = tracking.sweep(now + timedelta(minutes=5), model, lambda: timedelta(minutes=1), page_size=2)

    # Then the first run stopped with a cursor and the second finished the sweep from there
    assert (first.finished, first.pages) == (False, 5)
    assert second.finished
    assert first.looked_at + second.looked_at == 20  # every overdue parcel once, no fresh one
    raised = [a for a in parcel_stack.drain("AlertsQueue") if a["attributes"]["event"] == "RAISED"]
    stalled = Counter(a["body"]["parcel_id"] for a in raised if a["body"]["type"] == "STALLED")
    assert set(stalled) == {f"LP-OLD-{i:02d}" for i in range(20)} and set(stalled.values()) == {1}
    # found through the index, never by scanning the table
    assert ("dynamodb", "Scan") not in parcel_stack.calls
    assert ("dynamodb", "Query") in parcel_stack.calls
    assert parcel_stack.parcel_item("#sweeper-cursor") == {}  # the finished sweep cleared its cursor


def test_a_second_sweep_raises_nothing_new_and_an_arriving_scan_resolves_the_stall(
    parcel_stack: ParcelStack,
) -> None:
    # Given two stalled parcels, one of them silent for far longer than its lane allows
    _seed(parcel_stack, {"LP-A": 120, "LP-B": 400})
    now = datetime.now(UTC)

    # When the scheduled sweeps run twice, six hours apart
    first = _sweep(parcel_stack, now)
    alerts = parcel_stack.drain("AlertsQueue")
    second = _sweep(parcel_stack, now + timedelta(hours=6, minutes=1))

    # Then both were stalled (the scan handler saw it as the late scans arrived), the first sweep
    # added the model's verdict, and the second re-scored them and raised nothing again
    assert first["looked_at"] == 2 and first["finished"] is True
    assert {(a["body"]["parcel_id"], a["body"]["type"]) for a in alerts} >= {
        ("LP-A", "STALLED"),
        ("LP-B", "STALLED"),
    }
    assert ("LP-B", "LIKELY_LOST") in {(a["body"]["parcel_id"], a["body"]["type"]) for a in alerts}
    likely = next(a for a in alerts if a["body"]["type"] == "LIKELY_LOST")
    assert likely["body"]["risk"] >= 0.5 and likely["attributes"]["region"] == "RU-NVS"
    assert second["looked_at"] == 2 and second["raised"] == {}
    assert parcel_stack.drain("AlertsQueue") == []
    # and a third sweep right after finds nothing due: each look moved the parcel's next look on
    assert _sweep(parcel_stack, now + timedelta(hours=6, minutes=2))["looked_at"] == 0

    # When LP-A is scanned again
    body = json.dumps(scan("LP-A", "CUSTOMS", hours_ago(1)))
    shipment_events.lambda_handler(sqs_event([body]), parcel_stack.context())

    # Then its STALLED alert resolves itself and says so
    resolved = parcel_stack.drain("AlertsQueue")
    assert [(a["attributes"]["event"], a["body"]["parcel_id"], a["body"]["type"]) for a in resolved] == [
        ("RESOLVED", "LP-A", "STALLED")
    ]
    open_stalled = shipment_dependencies().alerts.open_alerts(AlertType.STALLED)
    assert [a.parcel_id for a in open_stalled] == ["LP-B"]


def test_a_parcel_due_but_not_yet_stalled_is_looked_at_again_when_it_stalls(
    parcel_stack: ParcelStack,
) -> None:
    # Given a parcel scanned 60 hours ago: its next scan was due after 48, it stalls after 96
    _seed(parcel_stack, {"LP-S": 60})
    now = datetime.now(UTC)

    # When the sample schedule event runs the sweeper now, 5 hours later, and just after it stalls
    now_result = _sweep(parcel_stack, now)
    early = _sweep(parcel_stack, now + timedelta(hours=5))
    late = _sweep(parcel_stack, now + timedelta(hours=36, minutes=5))

    # Then it is looked at now (due) and raises nothing, is left alone until its re-score is due
    # (every 6 hours) or it stalls, and is then raised as STALLED once
    assert (now_result["looked_at"], now_result["raised"]) == (1, {})
    assert early["looked_at"] == 0
    assert (late["looked_at"], late["raised"]) == (1, {"STALLED": 1})
    (alert,) = parcel_stack.drain("AlertsQueue")
    assert alert["attributes"]["type"] == "STALLED" and "no scan for" in alert["body"]["message"]


def test_invoked_as_dozor_invoke_does_it_runs_a_sweep_on_the_sample_schedule_event(
    parcel_stack: ParcelStack, parcel_model_dir: Path
) -> None:
    event = json.loads((EVENTS / "schedule_sweeper.json").read_text())

    invocation = invoke_handler(
        parcel_stack.local,
        "ParcelSweeperFunction",
        event,
        env_overrides={"PARCEL_MODEL_DIR": str(parcel_model_dir)},
    )

    assert invocation.ok, invocation.error
    report = invocation.result
    assert report["as_of"] == "2026-11-25T12:00:00+00:00"
    assert (report["finished"], report["pages"], report["looked_at"]) == (True, 16, 0)


def test_parcels_spread_evenly_over_the_due_index_shards() -> None:
    shards = Counter(due_shard(f"LP{n:09d}RU") for n in range(4000))

    assert set(shards) == {f"due#{n}" for n in range(DUE_SHARDS)}
    assert max(shards.values()) < 1.25 * 4000 / DUE_SHARDS  # no shard runs hot


def test_the_sweeper_does_not_count_an_ongoing_carrier_outage_as_parcel_silence(
    parcel_stack: ParcelStack,
) -> None:
    # Given a parcel last scanned 100 hours ago, whose carrier's feed has been down for 30 hours
    _seed(parcel_stack, {"LP-O": 100})
    parcel_stack.drain("AlertsQueue")  # the scan arrived with the feed live: STALLED on arrival
    ddb = boto3.client("dynamodb")
    ddb.delete_item(
        TableName=parcel_stack.table("AlertsTable"),
        Key={"parcel_id": {"S": "LP-O"}, "alert_type": {"S": "STALLED"}},
    )
    ddb.update_item(
        TableName=parcel_stack.table("ShipmentsTable"),
        Key={"parcel_id": {"S": "LP-O"}},
        UpdateExpression="REMOVE open_alerts",
    )
    feeds = DynamoCarrierFeeds(ddb, parcel_stack.table("ShipmentsTable"))
    feeds.heard_from({"CAINIAO"}, datetime.now(UTC) - timedelta(hours=30))

    # When the sweeper looks at it now
    event = scheduled_event(datetime.now(UTC))
    result = parcel_sweeper.lambda_handler(event, parcel_stack.context("ParcelSweeperFunction"))

    # Then 70 hours of real silence is under the 96-hour deadline: no STALLED alert
    assert result["looked_at"] == 1 and "STALLED" not in result["raised"]  # type: ignore[operator]
