"""The console in chromium against the local stack: what a reviewer, an ops person and a list
keeper do, checked where it lands (the Labels table, the alerts topic, the next decision).

With DOZOR_CONSOLE_SCREENSHOTS=docs/console each page is saved as a PNG for the README.
"""

from __future__ import annotations

import io
import itertools
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from dozor.domain.fraud.model import PACKAGED_MODEL_DIR
from dozor_local.server import LocalServer
from dozor_training.cli import main
from dozor_training.fraud.simulator import SimulationConfig, simulate
from dozor_training.history_commands import write_simulated_history
from tests.browser import seed

pytestmark = pytest.mark.browser


def shoot(page: Any, where: Path | None, name: str) -> None:
    """The page as a small PNG (a 256-colour palette: screenshots of text compress well)."""
    if where is None:
        return
    from PIL import Image  # noqa: PLC0415 - only when screenshots are wanted

    image = Image.open(io.BytesIO(page.screenshot(full_page=True))).convert("RGB")
    image.quantize(colors=256).save(where / f"{name}.png", optimize=True)


UNLABELLED = """() => [...document.querySelectorAll("input, select, textarea, button")]
    .filter((e) => (e.labels ? e.labels.length === 0 : true) && !(e.textContent || "").trim())
    .map((e) => e.outerHTML)"""


def assert_keyboard_usable(page: Any) -> None:
    """Every control has a label or text (what a screen reader and the Tab key land on), and the
    focused element is visibly outlined."""
    assert page.evaluate(UNLABELLED) == []
    page.keyboard.press("Tab")
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none"), outline


def labels_of(local: LocalServer, order_id: str) -> list[str]:
    items = local.client("dynamodb").query(
        TableName=local.stack.physical_id("LabelsTable"),
        KeyConditionExpression="subject = :s",
        ExpressionAttributeValues={":s": {"S": f"order#{order_id}"}},
        ConsistentRead=True,
    )["Items"]
    return [i["kind"]["S"] for i in items if "kind" in i]


def test_a_reviewer_marks_an_order_fraud_and_the_label_lands_in_the_labels_table(
    console: Any, local: LocalServer, screenshots: Path | None
) -> None:
    # Given two orders the review list sent to review
    seed.send_to_review(local, ["o-review-1", "o-review-2"])
    console.reload()
    queue = console.get_by_role("table")
    queue.get_by_role("link", name="o-review-1").wait_for()
    assert "LIST_REVIEW_CARD" in queue.inner_text()
    assert re.search(r"\d+ orders 30 d", queue.inner_text())  # the buyer's and seller's history
    shoot(console, screenshots, "reviews")
    assert_keyboard_usable(console)

    # When the reviewer opens one and marks it fraud, with a note
    queue.get_by_role("link", name="o-review-1").click()
    console.get_by_role("heading", name="Why: the reasons that moved the score").wait_for()
    shoot(console, screenshots, "order")
    assert_keyboard_usable(console)
    console.get_by_label("Note (optional)").fill("card reported stolen by its bank")
    console.get_by_role("button", name="Mark fraud").click()

    # Then the case is settled by the signed-in principal, and the label lands in the Labels table
    console.get_by_role("heading", name="Settled: fraud").wait_for()
    assert "arn:aws:iam::" in console.get_by_role("status").inner_text()
    assert seed.wait_for("fraud label", lambda: labels_of(local, "o-review-1")) == ["fraud_confirmed"]
    # And a search signs any order id the way the gateway checks it (spaces, non-ASCII: 404, not 403)
    console.get_by_label("Find a decision by order id").fill("o-ü 7+1")
    console.get_by_role("button", name="Find").click()
    console.get_by_text("404: no decision for order o-ü 7+1").wait_for()
    # And the case has left the queue; the other is still there
    console.get_by_role("link", name="Reviews").click()
    console.get_by_role("link", name="o-review-2").wait_for()
    assert console.get_by_role("link", name="o-review-1").count() == 0
    assert labels_of(local, "o-review-2") == []


def test_an_ops_user_filters_alerts_and_opens_a_parcels_timeline(
    console: Any, local: LocalServer, screenshots: Path | None
) -> None:
    # Given three parcels with open alerts: two CAINIAO (one stalled, one exception), one YUNEXPRESS
    seed.parcels_with_alerts(local)
    console.get_by_role("link", name="Parcel alerts").click()
    console.get_by_role("link", name="LP-STL-2").wait_for()

    # When they keep STALLED alerts of CAINIAO only
    console.get_by_label("Type").select_option("STALLED")
    console.get_by_label("Carrier").select_option("CAINIAO")
    console.get_by_role("button", name="Filter").click()
    console.get_by_text("1 open alerts, newest first").wait_for()
    alerts = console.get_by_role("table").inner_text()
    assert "LP-STL-1" in alerts and "LP-STL-2" not in alerts and "LP-EXC-1" not in alerts
    shoot(console, screenshots, "ops")
    assert_keyboard_usable(console)

    # And open the parcel
    console.get_by_role("link", name="LP-STL-1").click()
    timeline = console.locator("svg.timeline")
    timeline.wait_for()
    # Then its scans are drawn against the lane's deadline, the stage it is stuck in marked late
    assert "lane deadline" in (timeline.get_attribute("aria-label") or "")
    assert timeline.locator("line.deadline").count() == 1
    assert timeline.locator("rect.late").count() >= 1
    assert timeline.locator("circle.scan").count() == 3
    shoot(console, screenshots, "parcel")
    assert_keyboard_usable(console)

    # When they acknowledge it, then resolve it
    console.get_by_label("Note on STALLED").fill("asked CAINIAO for a trace")
    console.get_by_role("button", name="Acknowledge").click()
    console.get_by_text("open, acknowledged by arn:aws:iam::").wait_for()
    console.get_by_role("button", name="Resolve").click()
    console.get_by_text(re.compile(r"resolved .* by arn:aws:iam::")).first.wait_for()
    # Then the alerts topic tells ops the alert is resolved, and it has left the open list
    told: list[dict[str, Any]] = []

    def resolved_on_topic() -> bool:
        for note in local.read_ops_alerts(wait_seconds=1):
            event = (note.get("MessageAttributes") or {}).get("event", {}).get("Value")
            alert = json.loads(note["Message"]) if "Message" in note else note
            told.append({"event": event, **alert})
        return any(t["event"] == "RESOLVED" and t["parcel_id"] == "LP-STL-1" for t in told)

    seed.wait_for("the resolved alert on the topic", resolved_on_topic)
    _, page = seed.call(local, "GET", "/v1/console/alerts?type=STALLED&carrier=CAINIAO")
    assert [a["alert"]["parcel_id"] for a in page["alerts"]] == []


def test_a_list_entry_changes_the_next_decision_for_that_entity(
    console: Any, local: LocalServer, screenshots: Path | None
) -> None:
    # Given a card whose first order is not declined
    status, first = seed.call(
        local,
        "POST",
        "/v1/orders/score",
        seed.order("o-list-1", card="fp-stolen-1", buyer="b-list-1", amount=2990.0),
    )
    assert status == 200 and first["decision"] != "DECLINE"

    # When a list keeper puts the card on the block list in the console, saying why
    console.get_by_role("link", name="Lists").click()
    console.get_by_label("List", exact=True).select_option("block")
    console.get_by_label("Kind").select_option("card")
    console.get_by_label("Value").fill("fp-stolen-1")
    console.get_by_label("Reason", exact=True).fill("chargeback wave from this card")
    console.get_by_role("button", name="Save").click()
    console.get_by_role("cell", name="chargeback wave from this card").wait_for()
    row = console.get_by_role("row").filter(has_text="chargeback wave from this card")
    assert "arn:aws:iam::" in row.inner_text() and "yes" in row.inner_text()  # who, and applied
    assert "fp-stolen-1" not in console.content()  # only the card's keyed hash is shown
    shoot(console, screenshots, "lists")
    assert_keyboard_usable(console)
    # Its history is one signed query away (the key's "#" encoded in the query string)
    row.get_by_role("button", name="History").click()
    history = console.get_by_role("table").filter(has_text="Changes of card#")
    history.get_by_role("cell", name="chargeback wave from this card").wait_for()

    # Then the card's next order is declined by the list, with the rule saying so
    status, second = seed.call(
        local,
        "POST",
        "/v1/orders/score",
        seed.order("o-list-2", card="fp-stolen-1", buyer="b-list-2", amount=2990.0),
    )
    assert status == 200 and second["decision"] == "DECLINE"
    assert "LIST_BLOCK_CARD" in second["rules"]

    # When it is taken off again, the change is in its history, and the next order is not declined
    row.get_by_label(re.compile("Reason to remove")).fill("bank confirmed the card was replaced")
    row.get_by_role("button", name="Remove").click()
    console.get_by_text("is off every list").wait_for()
    _, third = seed.call(
        local,
        "POST",
        "/v1/orders/score",
        seed.order("o-list-3", card="fp-stolen-1", buyer="b-list-3", amount=2990.0),
    )
    assert third["decision"] != "DECLINE"


def shadow_artifact(root: Path) -> Path:
    """The packaged model under another version, calibrated to decline every order."""
    directory = root / "fraud-shadow-console"
    shutil.copytree(PACKAGED_MODEL_DIR, directory)
    metadata = json.loads((directory / "metadata.json").read_text())
    metadata.update(version="fraud-shadow-console", calibration={"x": [0.0, 1.0], "y": [0.9, 0.9]})
    (directory / "metadata.json").write_text(json.dumps(metadata))
    return directory


def test_the_model_page_shows_both_versions_and_how_often_the_shadow_disagrees(
    console: Any,
    local: LocalServer,
    screenshots: Path | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a shadow model published to the stack's registry, and orders scored by both
    env = local.stack.env_for("ScoreOrderFunction")
    monkeypatch.setenv("AWS_ENDPOINT_URL", local.endpoint_url)
    args = ["--bucket", env["MODEL_BUCKET_NAME"], "--active-parameter", env["ACTIVE_MODEL_PARAMETER"]]
    args += ["--shadow-parameter", env["SHADOW_MODEL_PARAMETER"], "--region", local.stack.region]
    assert main(["publish", str(shadow_artifact(tmp_path)), "--shadow", *args]) == 0
    try:
        numbers = itertools.count()

        def scored_by_both() -> bool:
            n = next(numbers)
            order = seed.order(f"o-shadow-{n}", card=f"fp-shadow-{n}", buyer=f"b-shadow-{n}", amount=990.0)
            order["seller"]["id"] = "s-shadow"  # a seller with no fraud labelled by the other tests
            assert seed.call(local, "POST", "/v1/orders/score", order)[0] == 200
            _, page = seed.call(local, "GET", "/v1/console/model")
            return bool(page["disagreement"] and page["disagreement"]["compared"])

        seed.wait_for("orders compared with the shadow", scored_by_both)
        # When the model page is opened
        console.get_by_role("link", name="Model").click()
        console.get_by_role("heading", name="Shadow: fraud-shadow-console").wait_for()
        # Then it shows the active version's evaluation and the shadow's disagreement rate
        text = console.get_by_role("main").inner_text()
        assert "Active: " in text and "Evaluation on the held-out test period" in text
        assert re.search(
            r"[1-9]\d* of [1-9]\d* orders scored by both would have been decided otherwise", text
        )
        shoot(console, screenshots, "model")
        assert_keyboard_usable(console)
    finally:
        assert main(["publish", "--shadow", "--clear", *args]) == 0


def test_the_lists_cli_changes_a_list_through_the_same_audited_route(
    local: LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # When a device is blocked from the command line
    where = ["--url", local.api_url, "--region", local.stack.region]
    assert main(["lists", "add", "block", "device", "dev-cli-1", "--reason", "emulator farm", *where]) == 0
    entry = json.loads(capsys.readouterr().out)
    assert (entry["list"], entry["shown_as"], entry["applied"]) == ("block", "device dev-cli-1", True)
    assert entry["by"].startswith("arn:aws:iam::")  # the signing principal, as in the page
    # Then the device's next order is declined
    order = seed.order("o-cli-1", card="fp-cli-1", buyer="b-cli-1", amount=1990.0)
    order["device_id"] = "dev-cli-1"
    assert seed.call(local, "POST", "/v1/orders/score", order)[1]["decision"] == "DECLINE"
    # And `show` and `history` list it; `remove` takes it off
    assert main(["lists", "show", "--list", "block", *where]) == 0
    assert entry["entity"] in capsys.readouterr().out
    assert main(["lists", "remove", "device", "dev-cli-1", "--reason", "farm shut down", *where]) == 0
    capsys.readouterr()
    assert main(["lists", "history", entry["entity"], *where]) == 0
    changes = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(c["list"], c["reason"]) for c in changes] == [
        (None, "farm shut down"),
        ("block", "emulator farm"),
    ]
    # A value that names nothing is refused with the API's 422
    assert main(["lists", "add", "block", "address", "Moscow", "--reason", "x", *where]) == 1


def test_the_lanes_page_shows_the_published_figures_and_a_sellers_own_view(
    console: Any,
    local: LocalServer,
    screenshots: Path | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a lane report made from a simulated history and published to the stack's model bucket
    history = write_simulated_history(
        simulate(SimulationConfig(days=3, seed=3, orders_per_day=120)), tmp_path, "jsonl", 3
    )
    bucket = local.stack.env_for("LaneReportFunction")["MODEL_BUCKET_NAME"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", local.endpoint_url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", local.stack.region)
    seller = json.loads((tmp_path / "orders.jsonl").open().readline())["seller"]["id"]
    argv = ["lanes", "report", "--orders", str(history["orders"]), "--labels", str(history["labels"])]
    argv += ["--shipments", str(history["shipments"]), "--out", str(tmp_path / "lanes"), "--seller", seller]
    assert main([*argv, "--publish", "--bucket", bucket]) == 0
    published = json.loads((tmp_path / "lanes" / "lanes.json").read_text())
    # When the lanes page is opened
    console.get_by_role("link", name="Lanes").click()
    console.get_by_role("heading", name="Lane reliability").wait_for()
    # Then each area's row shows the report's own figures, small samples marked rather than hidden
    for area in published["by_area"]:
        row = console.get_by_role("row", name=re.compile(rf"^{re.escape(area['area_name'])}\b"))
        cells = row.get_by_role("cell").all_inner_texts()
        parcels = str(area["parcels"]) + (" (small sample, under 30)" if area["small_sample"] else "")
        assert cells[0] == parcels
        if area["delivery_days_p50"] is not None:
            assert cells[1] == f"{area['delivery_days_p50']:.1f}"
    assert len(console.get_by_role("table").nth(1).get_by_role("row").all()) == len(published["by_lane"]) + 1
    shoot(console, screenshots, "lanes")
    assert_keyboard_usable(console)
    # And a seller's view shows that seller's lanes beside the marketplace's
    console.get_by_label("Seller id").fill(seller)
    console.get_by_role("button", name="Show this seller's lanes").click()
    console.get_by_role("heading", name=f"Lanes of seller {seller}").wait_for()
    assert f"Seller {seller}'s lanes beside the marketplace's" in console.get_by_role("main").inner_text()
