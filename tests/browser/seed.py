"""What the browser tests (and the README's screenshots) put on a local stack before a reviewer or
an ops person opens the console: orders sent to review, parcels with open alerts.

Everything goes in as production traffic would: orders through the signed scoring API (a card on
the review list sends them to review, as ops would arrange it), carrier scans onto the scan queue.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from dozor_local.auth import sign
from dozor_local.server import LocalServer
from tests.helpers.aws_stack import make_order

REVIEW_CARD = "fp-review-7c1d"


def call(local: LocalServer, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One SigV4-signed request to the local API: (status, JSON answer)."""
    url = local.api_url + path
    data = b"" if body is None else json.dumps(body).encode()
    headers = {"content-type": "application/json"} if data else {}
    signed = sign(method, url, data, headers, region=local.stack.region)
    request = urllib.request.Request(url, data=data or None, headers=signed, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def order(order_id: str, *, card: str, buyer: str, amount: float, minutes_ago: float = 5) -> dict[str, Any]:
    """A realistic order created a few minutes ago (wall clock: checkout calls carry no simulated time)."""
    body = make_order(order_id, buyer_id=buyer, card=card, amount=amount)
    body["created_at"] = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat()
    # Its own ip and flat, so one test's fraud verdict does not colour another test's orders.
    n = zlib.crc32(order_id.encode())
    body["ip"] = f"95.{n % 250}.{n // 250 % 250}.{n // 62_500 % 250}"
    body["shipping"]["address"] = f"ul. Tverskaya 7, kv {n % 100_000}"
    return body


def wait_for(what: str, found: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"{what}: not there after {timeout:.0f} s")


def send_to_review(local: LocalServer, order_ids: list[str]) -> None:
    """Score orders whose card is on the review list; wait until their review cases are open."""
    status, _ = call(
        local,
        "POST",
        "/v1/console/lists/changes",
        {"kind": "card", "value": REVIEW_CARD, "list": "review", "reason": "seed: card under review"},
    )
    assert status == 200
    for n, order_id in enumerate(order_ids):
        status, decision = call(
            local,
            "POST",
            "/v1/orders/score",
            order(order_id, card=REVIEW_CARD, buyer=f"b-seed-{n % 2}", amount=4990.0 + 1000 * n),
        )
        assert status == 200 and decision["decision"] == "REVIEW", decision

    def open_ids() -> bool:
        _, page = call(local, "GET", "/v1/console/reviews")
        return {row["case"]["order_id"] for row in page["cases"]} >= set(order_ids)

    wait_for("review cases", open_ids)


def scan(parcel_id: str, n: int, status: str, at: datetime, carrier: str, region: str) -> dict[str, Any]:
    return {
        "event_id": f"{parcel_id}-{n}",
        "parcel_id": parcel_id,
        "order_id": f"o-{parcel_id}",
        "status": status,
        "occurred_at": at.isoformat(),
        "location": {"country": "CN" if n < 2 else "RU", "facility": f"hub {n}"},
        "carrier": carrier,
        "origin_country": "CN",
        "destination_region": region,
        "declared_value": 3890.0,
        "currency": "RUB",
        "category": "electronics",
        "seller_id": "s-shenzhen-42",
    }


def parcels_with_alerts(local: LocalServer) -> dict[str, str]:
    """Three parcels: one the carrier reports as an EXCEPTION, two silent for weeks (STALLED).

    Returns {parcel id: the alert type it raises}; waits until every one is open.
    """
    now = datetime.now(UTC)
    journeys = {
        "LP-EXC-1": ("CAINIAO", "RU-NVS", [("INFO_RECEIVED", 6), ("IN_TRANSIT", 5), ("EXCEPTION", 1)]),
        "LP-STL-1": ("CAINIAO", "RU-KAM", [("INFO_RECEIVED", 40), ("IN_TRANSIT", 38), ("CUSTOMS", 30)]),
        "LP-STL-2": ("YUNEXPRESS", "RU-MOW", [("INFO_RECEIVED", 35), ("IN_TRANSIT", 33)]),
    }
    expected = {"LP-EXC-1": "CARRIER_EXCEPTION", "LP-STL-1": "STALLED", "LP-STL-2": "STALLED"}
    scans = [
        scan(parcel_id, n, status, now - timedelta(days=days_ago), carrier, region)
        for parcel_id, (carrier, region, stages) in journeys.items()
        for n, (status, days_ago) in enumerate(stages)
    ]
    local.send_batch("ShipmentEventsQueue", scans)

    def all_open() -> bool:
        _, page = call(local, "GET", "/v1/console/alerts")
        open_types = {(a["alert"]["parcel_id"], a["alert"]["type"]) for a in page["alerts"]}
        return set(expected.items()) <= open_types

    wait_for("parcel alerts", all_open)
    return expected
