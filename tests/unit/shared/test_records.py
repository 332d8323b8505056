"""Queue record bodies into contract models: the payload itself, or an EventBridge event that
carries it in ``detail`` (a bus rule delivering to the queue); anything else names what is wrong."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dozor.domain.contracts import Order
from dozor.domain.errors import InvalidRecordError
from dozor.handlers.records import parse_record

ORDER: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[3] / "events" / "order.json").read_text()
)
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def eventbridge(detail: Any) -> dict[str, Any]:
    """An event as an EventBridge rule puts it on a queue (the bus's envelope around the detail)."""
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "Order Placed",
        "source": "marketplace.checkout",
        "account": "123456789012",
        "time": "2026-11-25T10:15:30Z",
        "region": "eu-central-1",
        "resources": [],
        "detail": detail,
    }


def test_a_body_that_is_the_order_is_read_as_it_is() -> None:
    assert parse_record(json.dumps(ORDER), Order, NOW).order_id == ORDER["order_id"]


def test_an_eventbridge_event_is_read_by_its_detail() -> None:
    assert parse_record(json.dumps(eventbridge(ORDER)), Order, NOW) == parse_record(
        json.dumps(ORDER), Order, NOW
    )


@pytest.mark.parametrize(
    "body",
    [
        {"detail-type": "Order Placed", "source": "marketplace.checkout"},  # an envelope without its detail
        {"detail": ORDER},  # a detail without the envelope it belongs to is no order
        eventbridge({"order_id": "o-1"}),  # an envelope around something that is not an order
    ],
    ids=["envelope-without-detail", "detail-without-envelope", "envelope-around-no-order"],
)
def test_anything_else_is_an_invalid_record_naming_what_is_wrong(body: dict[str, Any]) -> None:
    with pytest.raises(InvalidRecordError, match="invalid order: ") as raised:
        parse_record(json.dumps(body), Order, NOW)
    assert "created_at" in str(raised.value) or "order_id" in str(raised.value)


def test_a_body_that_is_not_json_says_where_it_breaks() -> None:
    with pytest.raises(InvalidRecordError, match=r"body is not JSON: .* at 1"):
        parse_record('{"order_id"', Order, NOW)


def test_instants_are_judged_against_the_delivery_clock_not_the_machines() -> None:
    # An order five days ahead of the clock the record was delivered by (here: NOW, a week
    # before this order) is refused, whatever the machine's own clock says.
    early = datetime(2026, 11, 20, tzinfo=UTC)
    with pytest.raises(InvalidRecordError, match=r"^invalid order: created_at \(.+\)"):
        parse_record(json.dumps(ORDER), Order, early)


def test_an_invalid_record_names_each_field_by_its_path() -> None:
    bad = ORDER | {"amount": -5, "buyer": ORDER["buyer"] | {"id": ""}}
    with pytest.raises(InvalidRecordError) as raised:
        parse_record(json.dumps(bad), Order, NOW)
    assert re.fullmatch(r"invalid order: buyer\.id \([^)]+\), amount \([^)]+\)", str(raised.value)), (
        raised.value
    )


def test_a_body_too_deep_to_read_says_so_by_its_kind() -> None:
    with pytest.raises(InvalidRecordError, match=r"^body not readable as order: RecursionError$"):
        parse_record("[" * 100_000 + "]" * 100_000, Order, NOW)
