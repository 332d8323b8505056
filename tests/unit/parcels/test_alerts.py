"""Alert assessment: which alerts should be open for a parcel now, and which are over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dozor.domain.parcels.alerts import (
    AlertType,
    FeedGap,
    Severity,
    alert_id,
    assess,
    detect_feed_gaps,
    effective_silence,
    is_stalled,
    resolutions,
)
from dozor.domain.parcels.lanes import LaneDeadlines
from dozor.domain.parcels.shipments import Parcel, ParcelStatus, ScanRecord, build_parcel

T0 = datetime(2026, 10, 1, tzinfo=UTC)
DEADLINES = LaneDeadlines()  # defaults: due after 4 days, stalled after 8
THRESHOLD = 0.5


def parcel(*steps: tuple[ParcelStatus, float]) -> Parcel:
    scans = [
        ScanRecord(f"e{k}", status, T0 + timedelta(days=days), "cainiao", destination_region="RU-KHA")
        for k, (status, days) in enumerate(steps)
    ]
    return build_parcel("p-1", "o-1", scans, DEADLINES)


IN_CUSTOMS = parcel((ParcelStatus.INFO_RECEIVED, 0), (ParcelStatus.IN_TRANSIT, 1), (ParcelStatus.CUSTOMS, 6))


def types(alerts: list) -> set[AlertType]:  # type: ignore[type-arg]
    return {a.type for a in alerts}


def test_a_parcel_scanned_within_its_deadline_raises_nothing() -> None:
    assert assess(IN_CUSTOMS, T0 + timedelta(days=10), 0.1, DEADLINES, THRESHOLD) == []


def test_a_parcel_silent_past_its_lane_deadline_is_stalled_and_says_why() -> None:
    now = T0 + timedelta(days=6 + 9)
    [alert] = assess(IN_CUSTOMS, now, None, DEADLINES, THRESHOLD)
    assert alert.type == AlertType.STALLED
    assert alert.alert_id == "p-1#STALLED"
    assert alert.expected_by == IN_CUSTOMS.last_scan_at + timedelta(days=8)
    assert alert.lane == "cainiao|CN|RU-KHA" and alert.destination_region == "RU-KHA"
    assert "9.0 days" in alert.message and "CUSTOMS" in alert.message
    assert alert.severity == Severity.MEDIUM
    much_later = assess(IN_CUSTOMS, T0 + timedelta(days=6 + 20), None, DEADLINES, THRESHOLD)
    assert much_later[0].severity == Severity.HIGH


def test_a_risky_parcel_is_likely_lost_only_above_the_threshold() -> None:
    now = T0 + timedelta(days=9)
    assert types(assess(IN_CUSTOMS, now, 0.49, DEADLINES, THRESHOLD)) == set()
    [alert] = assess(IN_CUSTOMS, now, 0.9, DEADLINES, THRESHOLD)
    assert alert.type == AlertType.LIKELY_LOST and alert.risk == 0.9
    assert alert.severity == Severity.HIGH
    assert "90%" in alert.message


def test_carrier_bad_news_raises_a_carrier_exception_and_no_guesses_once_final() -> None:
    held = parcel((ParcelStatus.IN_TRANSIT, 0), (ParcelStatus.EXCEPTION, 2))
    assert types(assess(held, T0 + timedelta(days=3), None, DEADLINES, THRESHOLD)) == {
        AlertType.CARRIER_EXCEPTION
    }
    lost = parcel((ParcelStatus.IN_TRANSIT, 0), (ParcelStatus.LOST, 40))
    [alert] = assess(lost, T0 + timedelta(days=80), 0.99, DEADLINES, THRESHOLD)
    assert alert.type == AlertType.CARRIER_EXCEPTION and alert.severity == Severity.HIGH
    assert "LOST" in alert.message


def test_the_same_situation_assessed_twice_yields_the_same_alert_ids() -> None:
    first = assess(IN_CUSTOMS, T0 + timedelta(days=20), 0.9, DEADLINES, THRESHOLD)
    again = assess(IN_CUSTOMS, T0 + timedelta(days=21), 0.95, DEADLINES, THRESHOLD)
    assert [a.alert_id for a in first] == [a.alert_id for a in again]
    assert {a.alert_id for a in first} == {
        alert_id("p-1", t) for t in (AlertType.STALLED, AlertType.LIKELY_LOST)
    }


def test_delivery_resolves_every_alert() -> None:
    delivered = parcel(
        (ParcelStatus.IN_TRANSIT, 0), (ParcelStatus.EXCEPTION, 2), (ParcelStatus.DELIVERED, 30)
    )
    assert assess(delivered, T0 + timedelta(days=31), 0.99, DEADLINES, THRESHOLD) == []
    assert resolutions(delivered, T0 + timedelta(days=31), DEADLINES) == frozenset(AlertType)


def test_a_parcel_that_moves_again_closes_its_stall_and_exception_but_not_its_risk_by_itself() -> None:
    moved = parcel((ParcelStatus.IN_TRANSIT, 0), (ParcelStatus.EXCEPTION, 2), (ParcelStatus.IN_TRANSIT, 15))
    now = T0 + timedelta(days=15.5)
    assert not is_stalled(moved, now, DEADLINES)
    assert resolutions(moved, now, DEADLINES) == {AlertType.STALLED, AlertType.CARRIER_EXCEPTION}
    # LIKELY_LOST closes on a clearly lower risk, not on one that hovers near the threshold.
    assert AlertType.LIKELY_LOST not in resolutions(moved, now, DEADLINES, 0.4, THRESHOLD)
    assert AlertType.LIKELY_LOST in resolutions(moved, now, DEADLINES, 0.1, THRESHOLD)


def test_a_lost_parcel_closes_the_guesses_and_keeps_the_carrier_exception() -> None:
    lost = parcel((ParcelStatus.IN_TRANSIT, 0), (ParcelStatus.LOST, 40))
    assert resolutions(lost, T0 + timedelta(days=41), DEADLINES) == {AlertType.STALLED, AlertType.LIKELY_LOST}


def test_a_carrier_feed_outage_does_not_count_as_the_parcels_silence() -> None:
    now = T0 + timedelta(days=6 + 9)  # 9 days after the customs scan: stalled (deadline 8 days)
    outage = FeedGap(T0 + timedelta(days=8), T0 + timedelta(days=11))  # 3 days down, 12 h back-fill grace
    assert effective_silence(IN_CUSTOMS.last_scan_at, now, [outage]) == timedelta(days=9 - 3.5)
    assert not is_stalled(IN_CUSTOMS, now, DEADLINES, [outage])
    assert assess(IN_CUSTOMS, now, None, DEADLINES, THRESHOLD, [outage]) == []
    assert AlertType.STALLED in resolutions(IN_CUSTOMS, now, DEADLINES, feed_gaps=[outage])
    later = now + timedelta(days=4)
    assert types(assess(IN_CUSTOMS, later, None, DEADLINES, THRESHOLD, [outage])) == {AlertType.STALLED}


def test_feed_gaps_are_the_long_pauses_between_a_carriers_arrivals() -> None:
    arrivals = [T0 + timedelta(minutes=m) for m in (0, 5, 9, 15)] + [T0 + timedelta(hours=30)]
    [gap] = detect_feed_gaps(arrivals, T0 + timedelta(hours=31))
    assert gap == FeedGap(T0 + timedelta(minutes=15), T0 + timedelta(hours=30))
    ongoing = detect_feed_gaps(arrivals, T0 + timedelta(hours=40))
    assert ongoing[-1] == FeedGap(T0 + timedelta(hours=30), T0 + timedelta(hours=40))
    # Overlapping gaps are not discounted twice.
    doubled = effective_silence(T0, T0 + timedelta(days=10), [gap, gap])
    assert doubled == effective_silence(T0, T0 + timedelta(days=10), [gap])


def test_the_carrier_s_bad_news_is_graded_and_carries_the_risk() -> None:
    exception = parcel((ParcelStatus.IN_TRANSIT, 0), (ParcelStatus.EXCEPTION, 2))
    lost = parcel((ParcelStatus.IN_TRANSIT, 0), (ParcelStatus.LOST, 2))
    [on_exception] = [a for a in assess(exception, T0 + timedelta(days=3), 0.123456, DEADLINES, 0.9)]
    [on_loss] = assess(lost, T0 + timedelta(days=3), None, DEADLINES, THRESHOLD)
    assert (on_exception.type, on_exception.severity) == (AlertType.CARRIER_EXCEPTION, Severity.MEDIUM)
    assert (on_loss.type, on_loss.severity) == (AlertType.CARRIER_EXCEPTION, Severity.HIGH)
    assert on_exception.risk == 0.1235  # rounded to four places, as stored
    assert on_exception.reasons == ["carrier reported EXCEPTION", "loss risk 12%"]
    assert on_loss.risk is None and on_loss.reasons == ["carrier reported LOST"]


def test_stalled_severity_doubles_at_twice_the_deadline_and_the_risk_rides_along() -> None:
    deadline = DEADLINES.stalled_after(IN_CUSTOMS.lane, ParcelStatus.CUSTOMS)
    just_late = IN_CUSTOMS.last_scan_at + deadline + timedelta(hours=1)
    twice = IN_CUSTOMS.last_scan_at + 2 * deadline
    [medium] = assess(IN_CUSTOMS, just_late, 0.2, DEADLINES, THRESHOLD)
    [high] = assess(IN_CUSTOMS, twice, None, DEADLINES, THRESHOLD)
    assert (medium.severity, medium.risk) == (Severity.MEDIUM, 0.2)
    assert high.severity == Severity.HIGH
    assert high.reasons == ["no scan for 16 days in CUSTOMS", "lane deadline 8.0 days"]
    # Ten days and more are told in whole days
    [ten] = assess(IN_CUSTOMS, IN_CUSTOMS.last_scan_at + timedelta(days=10), None, DEADLINES, THRESHOLD)
    assert ten.reasons[0] == "no scan for 10 days in CUSTOMS"
    # Exactly at the deadline is not yet stalled
    assert not is_stalled(IN_CUSTOMS, IN_CUSTOMS.last_scan_at + deadline, DEADLINES)


def test_likely_lost_starts_at_the_threshold_itself_and_expects_the_next_scan() -> None:
    now = T0 + timedelta(days=7)
    alerts = assess(IN_CUSTOMS, now, THRESHOLD, DEADLINES, THRESHOLD)
    [likely] = [a for a in alerts if a.type == AlertType.LIKELY_LOST]
    assert likely.expected_by == IN_CUSTOMS.next_scan_due
    assert likely.reasons == ["loss risk 50% ≥ 50%", "silent 1.0 days"]
    assert "to RU-KHA" in likely.message


def test_a_parcel_to_an_unknown_region_says_so() -> None:
    scans = [ScanRecord("e0", ParcelStatus.EXCEPTION, T0, "cdek")]
    [alert] = assess(build_parcel("p-9", "o-9", scans, DEADLINES), T0, None, DEADLINES, THRESHOLD)
    assert alert.message.startswith("cdek parcel p-9 to an unknown region:")


def test_a_feed_pause_of_exactly_the_quiet_limit_is_no_gap() -> None:
    quiet = timedelta(hours=6)
    arrivals = [T0, T0 + quiet, T0 + quiet + quiet + timedelta(minutes=1)]
    gaps = detect_feed_gaps(arrivals, T0 + 3 * quiet, quiet_after=quiet)
    assert gaps == [FeedGap(T0 + quiet, T0 + 2 * quiet + timedelta(minutes=1))]
    assert detect_feed_gaps([T0], T0 + quiet, quiet_after=quiet) == []
