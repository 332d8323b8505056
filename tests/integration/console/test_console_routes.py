"""ConsoleFunction and ReviewIntakeFunction on moto, with template.yaml's resources: review cases
from the review queue, verdicts as Feedback, list changes with their audit trail and their effect
on the profile scoring reads, alerts acknowledged and resolved, the shadow tally."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from dozor.adapters.dynamodb.parcels import DynamoAlertStore, DynamoParcelStore
from dozor.adapters.dynamodb.shadow_tally import ShadowTally
from dozor.domain.contracts import Decision
from dozor.domain.errors import ConflictError
from dozor.domain.parcels.alerts import AlertType, assess
from dozor.domain.parcels.lanes import LaneDeadlines
from dozor.domain.parcels.shipments import ShipmentEvent, apply_scans
from dozor.domain.parcels.tracking import AlertEvent, outbox_entry
from dozor.handlers.console import alerts as alerts_routes
from dozor.handlers.console import api, review_intake
from dozor.handlers.console.wiring import console_dependencies
from dozor_local.invoke import lambda_context
from dozor_local.stack import LocalStack
from tests.helpers.aws_stack import TEMPLATE, api_event, sqs_event
from tests.helpers.faults import Faults, code

ALICE = "arn:aws:iam::123456789012:user/alice"
BOB = "arn:aws:iam::123456789012:user/bob"
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def console(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        local = LocalStack.deploy(TEMPLATE)
        for name in ("ConsoleFunction", "ReviewIntakeFunction"):
            for key, value in local.env_for(name).items():
                monkeypatch.setenv(key, value)
        console_dependencies.cache_clear()
        review_intake.review_cases.cache_clear()
        yield local
        console_dependencies.cache_clear()
        review_intake.review_cases.cache_clear()
    boto3.DEFAULT_SESSION = None


def call(
    local: LocalStack,
    method: str,
    path: str,
    body: Any = None,
    params: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    who: str | None = ALICE,
    jwt: dict[str, Any] | None = None,
) -> tuple[int, Any]:
    """The route as API Gateway invokes it: authorized by IAM as `who`, or by a JWT (`jwt`: its
    claims and scopes as the authorizer passes them), or by nothing (`who=None`)."""
    event = api_event(method, path, body, params)
    if jwt is not None:
        event["requestContext"]["authorizer"] = {"jwt": jwt}
    elif who is not None:
        event["requestContext"]["authorizer"] = {"iam": {"userArn": who}}
    else:
        event["requestContext"].pop("authorizer", None)
    if query:
        event["queryStringParameters"] = query
        event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in query.items())
    context = lambda_context(local.function("ConsoleFunction"), local.env_for("ConsoleFunction"))
    response = api.lambda_handler(event, context)
    return response["statusCode"], json.loads(response["body"]) if response.get("body") else None


def review_message(order_id: str) -> str:
    decision = Decision.model_validate(
        {
            "order_id": order_id,
            "decision": "REVIEW",
            "score": 0.31,
            "risk_level": "MEDIUM",
            "reasons": [
                {"feature": "card_age_days", "value": 0.0, "contribution": 0.6, "text": "A new card"}
            ],
            "rules": ["LIST_REVIEW_CARD"],
            "model_version": "fraud-test",
            "decided_at": NOW.isoformat(),
        }
    )
    order = {
        "order_id": order_id,
        "created_at": NOW.isoformat(),
        "buyer_id": "b-1",
        "seller_id": "s-1",
        "amount": 8990.0,
        "currency": "RUB",
    }
    return json.dumps({"decision": decision.model_dump(mode="json"), "order": order})


def intake(local: LocalStack, bodies: list[str]) -> dict[str, Any]:
    context = lambda_context(local.function("ReviewIntakeFunction"), local.env_for("ReviewIntakeFunction"))
    return dict(review_intake.lambda_handler(sqs_event(bodies), context))


def feedback_messages(local: LocalStack) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    got = sqs.receive_message(QueueUrl=local.queue_url("FeedbackQueue"), MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in got.get("Messages", [])]


def test_a_review_case_opens_once_and_a_verdict_becomes_feedback_given_once(console: LocalStack) -> None:
    # Given a review message delivered twice, and one that is not a review message
    result = intake(console, [review_message("o-1"), review_message("o-1"), "not json"])
    assert result["batchItemFailures"] == []  # the bad one is quarantined, not failed
    status, queue = call(console, "GET", "/v1/console/reviews")
    assert status == 200
    assert [row["case"]["order_id"] for row in queue["cases"]] == ["o-1"]
    assert queue["cases"][0]["buyer"]["lifetime_orders"] == 0  # nothing scored for b-1 here

    # When alice marks it fraud
    status, case = call(
        console,
        "POST",
        "/v1/console/reviews/o-1/verdict",
        {"verdict": "fraud", "note": "stolen"},
        {"order_id": "o-1"},
    )
    # Then the case is settled by her (from the authorizer, not the body) and the Feedback is sent
    assert status == 202 and (case["state"], case["verdict_by"], case["note"]) == ("fraud", ALICE, "stolen")
    sent = feedback_messages(console)
    assert [(m["order_id"], m["kind"]) for m in sent] == [("o-1", "fraud_confirmed")]
    assert call(console, "GET", "/v1/console/reviews")[1]["cases"] == []

    # And nobody can settle it again, either way
    assert (
        call(
            console,
            "POST",
            "/v1/console/reviews/o-1/verdict",
            {"verdict": "legit"},
            {"order_id": "o-1"},
            who=BOB,
        )[0]
        == 409
    )
    assert (
        call(console, "POST", "/v1/console/reviews/o-1/verdict", {"verdict": "fraud"}, {"order_id": "o-1"})[0]
        == 409
    )
    assert feedback_messages(console) == []
    assert (
        call(console, "POST", "/v1/console/reviews/o-9/verdict", {"verdict": "fraud"}, {"order_id": "o-9"})[0]
        == 404
    )


def test_a_verdict_whose_feedback_failed_is_sent_when_the_same_reviewer_retries(
    console: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    intake(console, [review_message("o-2")])
    deps = console_dependencies()
    real = deps.feedback.report
    from dozor.domain.errors import StoreUnavailableError  # noqa: PLC0415

    def refused(feedback: Any) -> None:
        raise StoreUnavailableError("queue unreachable")

    monkeypatch.setattr(deps.feedback, "report", refused)
    assert (
        call(console, "POST", "/v1/console/reviews/o-2/verdict", {"verdict": "legit"}, {"order_id": "o-2"})[0]
        == 503
    )
    monkeypatch.setattr(deps.feedback, "report", real)
    assert (
        call(console, "POST", "/v1/console/reviews/o-2/verdict", {"verdict": "fraud"}, {"order_id": "o-2"})[0]
        == 409
    )
    assert (
        call(console, "POST", "/v1/console/reviews/o-2/verdict", {"verdict": "legit"}, {"order_id": "o-2"})[0]
        == 202
    )
    assert [m["kind"] for m in feedback_messages(console)] == ["legit_confirmed"]


def profile(local: LocalStack, pk: str) -> dict[str, Any]:
    item = boto3.client("dynamodb").get_item(
        TableName=local.physical_id("FeaturesTable"), Key={"pk": {"S": pk}, "sk": {"S": "P"}}
    )
    return dict(item.get("Item", {}))


def test_a_list_change_is_audited_applied_to_the_profile_and_undone(console: LocalStack) -> None:
    change = {"kind": "email", "value": "Drop.Box@Mailinator.com", "list": "block", "reason": "mule account"}
    status, entry = call(console, "POST", "/v1/console/lists/changes", change)
    assert status == 200 and entry["applied"] and entry["by"] == ALICE
    assert "mailinator" not in json.dumps(entry).lower()  # only the keyed hash
    assert profile(console, entry["entity"])["list"] == {"S": "block"}

    # Taken off by bob, by the key the list shows
    removal = {"kind": "email", "entity": entry["entity"], "list": None, "reason": "false positive"}
    status, off = call(console, "POST", "/v1/console/lists/changes", removal, who=BOB)
    assert status == 200 and off["list"] is None and "list" not in profile(console, entry["entity"])
    assert call(console, "GET", "/v1/console/lists", query={"list": "block"})[1]["entries"] == []
    _, history = call(console, "GET", "/v1/console/lists/history", query={"entity": entry["entity"]})
    assert [(c["list"], c["previous"], c["by"]) for c in history["changes"]] == [
        (None, "block", BOB),
        ("block", None, ALICE),
    ]

    # A key of another kind, or both a value and a key, are refused
    wrong = {"kind": "card", "entity": entry["entity"], "list": "block", "reason": "x"}
    assert call(console, "POST", "/v1/console/lists/changes", wrong)[0] == 422
    both = {**change, "entity": entry["entity"]}
    assert call(console, "POST", "/v1/console/lists/changes", both)[0] == 422


def open_alert(local: LocalStack, parcel_id: str, carrier: str = "CAINIAO", at: datetime = NOW) -> None:
    """A STALLED alert on a parcel of `carrier`, raised `at`."""
    ddb = boto3.client("dynamodb")
    parcels = DynamoParcelStore(ddb, local.physical_id("ShipmentsTable"))
    alerts = DynamoAlertStore(ddb, local.physical_id("AlertsTable"), local.physical_id("ShipmentsTable"))
    deadlines = LaneDeadlines()  # defaults: stalled after 8 days
    event = ShipmentEvent.model_validate(
        {
            "event_id": f"{parcel_id}-1",
            "parcel_id": parcel_id,
            "order_id": f"o-{parcel_id}",
            "carrier": carrier,
            "status": "IN_TRANSIT",
            "occurred_at": (NOW - timedelta(days=10)).isoformat(),
            "origin_country": "CN",
            "destination_region": "RU-KAM",
        }
    )
    parcel = parcels.save(apply_scans(None, [event], deadlines), None, frozenset()).parcel
    assert alerts.open(parcel, assess(parcel, at, None, deadlines, 0.5), None)


def test_ops_acknowledge_then_resolve_an_alert_and_the_parcel_can_be_alerted_again(
    console: LocalStack,
) -> None:
    open_alert(console, "LP-1")
    status, page = call(console, "GET", "/v1/console/alerts", query={"type": "STALLED", "carrier": "CAINIAO"})
    assert status == 200 and [a["alert"]["parcel_id"] for a in page["alerts"]] == ["LP-1"]
    assert page["carriers"] == ["CAINIAO"] and page["regions"] == ["RU-KAM"]
    assert call(console, "GET", "/v1/console/alerts", query={"carrier": "YUNEXPRESS"})[1]["alerts"] == []

    path = "/v1/console/parcels/LP-1/alerts/STALLED/acknowledge"
    params = {"parcel_id": "LP-1", "alert_type": "STALLED"}
    status, acked = call(console, "POST", path, {"note": "traced"}, params)
    assert (
        status == 200
        and acked["handling"]["acknowledged_by"] == ALICE
        and acked["handling"]["state"] == "OPEN"
    )
    status, resolved = call(console, "POST", path.replace("acknowledge", "resolve"), {}, params, who=BOB)
    assert status == 200 and resolved["handling"]["resolved_by"] == BOB
    assert resolved["handling"]["state"] == "RESOLVED"

    # Then it has left the open list, and its RESOLVED entry has left the parcel's outbox (published)
    assert call(console, "GET", "/v1/console/alerts")[1]["alerts"] == []
    stored = DynamoParcelStore(boto3.client("dynamodb"), console.physical_id("ShipmentsTable")).load("LP-1")
    assert stored is not None and AlertType.STALLED not in stored.open_alerts
    assert outbox_entry(AlertEvent.RESOLVED, "STALLED") not in stored.outbox
    # And a resolved alert cannot be acknowledged or resolved again; an unknown one is 404
    assert call(console, "POST", path, {}, params)[0] == 409
    assert call(console, "POST", path.replace("acknowledge", "resolve"), {}, params)[0] == 409
    assert call(console, "POST", path.replace("LP-1", "LP-9"), {}, {**params, "parcel_id": "LP-9"})[0] == 404
    # The timeline draws the one scan against the packaged lane deadlines, and lists the alert resolved
    status, view = call(console, "GET", "/v1/console/parcels/LP-1", params={"parcel_id": "LP-1"})
    assert status == 200 and [s["status"] for s in view["timeline"]["stages"]] == ["IN_TRANSIT"]
    assert view["timeline"]["deadline"] == view["timeline"]["stages"][0]["stalled_by"] is not None
    assert [(a["alert"]["type"], a["handling"]["state"]) for a in view["alerts"]] == [("STALLED", "RESOLVED")]


def test_the_shadow_tally_counts_in_memory_and_flushes_at_most_once_a_minute(console: LocalStack) -> None:
    ticks = iter([0.0, 1.0, 2.0, 61.0, 62.0])
    tally = ShadowTally(
        boto3.client("dynamodb"), console.physical_id("ShadowTallyTable"), clock=lambda: next(ticks)
    )
    for differs in (True, False, False):  # the first flushes at once, the next two wait
        tally.count("fraud-a", "fraud-b", differs, NOW)
    assert tally.disagreement("fraud-a", "fraud-b", NOW - timedelta(hours=1)).compared == 1
    tally.count("fraud-a", "fraud-b", True, NOW)  # a minute later: everything pending goes
    found = tally.disagreement("fraud-a", "fraud-b", NOW - timedelta(hours=1))
    assert (found.compared, found.differing, found.rate) == (4, 2, 0.5)
    assert tally.disagreement("fraud-a", "fraud-c", NOW - timedelta(hours=1)).rate is None


def test_the_model_page_names_the_packaged_model_and_no_shadow(console: LocalStack) -> None:
    status, page = call(console, "GET", "/v1/console/model")
    assert status == 200 and page["active"]["pointer"] == "packaged" and page["shadow"] is None
    assert page["active"]["report"]["model"]["roc_auc"] > 0.5


def test_only_a_console_principal_reads_or_changes_anything_and_the_page_stays_open(
    console: LocalStack,
) -> None:
    intake(console, [review_message("o-7")])
    verdict = ("POST", "/v1/console/reviews/o-7/verdict", {"verdict": "fraud"}, {"order_id": "o-7"})
    reviewer = {"claims": {"sub": "u-1", "username": "rita", "scope": "openid dozor/console"}, "scopes": None}
    refused = {
        "no principal": None,
        "a token without the console's scope": {"claims": {"sub": "u-2", "scope": "openid"}, "scopes": None},
        "a merchant's token, even with the scope": {
            "claims": {"sub": "m-1", "seller_id": "s-1"},
            "scopes": ["dozor/console"],
        },
        "a scoped token naming nobody": {"claims": {"scope": "dozor/console"}, "scopes": None},
    }
    for why, jwt in refused.items():
        for request in (("GET", "/v1/console/reviews"), verdict, ("GET", "/v1/console/alerts")):
            status, body = call(console, *request, who=None, jwt=jwt)  # type: ignore[arg-type]
            assert (status, body["error"]["code"]) == (403, "forbidden"), why
    # nothing was settled by the refused ones; the page itself needs no principal
    assert [c["case"]["order_id"] for c in call(console, "GET", "/v1/console/reviews")[1]["cases"]] == ["o-7"]
    page = api_event("GET", "/console")
    page["requestContext"].pop("authorizer", None)
    context = lambda_context(console.function("ConsoleFunction"), console.env_for("ConsoleFunction"))
    assert api.lambda_handler(page, context)["statusCode"] == 200
    assert feedback_messages(console) == []

    # a reviewer's token with the scope (in its claim, or as API Gateway lists it) is recorded by name
    status, case = call(console, *verdict, jwt=reviewer)  # type: ignore[arg-type]
    assert (status, case["verdict_by"]) == (202, "jwt:rita")
    scoped = {"claims": {"sub": "u-3"}, "scopes": ["dozor/console"]}
    assert call(console, "GET", "/v1/console/reviews", jwt=scoped)[0] == 200


def stored_case(local: LocalStack, order_id: str) -> dict[str, Any]:
    table = local.physical_id("ReviewCasesTable")
    return dict(boto3.client("dynamodb").get_item(TableName=table, Key={"order_id": {"S": order_id}})["Item"])


def test_anyones_retry_of_the_verdict_resends_its_pending_feedback_as_first_given(
    console: LocalStack,
) -> None:
    faults = Faults()  # before the console's clients are built: they copy the session's hooks
    intake(console, [review_message("o-3"), review_message("o-4")])
    verdict = (
        "POST",
        "/v1/console/reviews/o-3/verdict",
        {"verdict": "fraud", "note": "stolen"},
        {"order_id": "o-3"},
    )
    # Given alice's verdict stored but its Feedback refused by the queue
    with faults.on("before-call.sqs.SendMessage", code("ServiceUnavailable")):
        assert call(console, *verdict)[0] == 503  # type: ignore[arg-type]
    first_at = stored_case(console, "o-3")["verdict_at"]["S"]
    # When bob gives the other verdict, it conflicts; when he repeats hers, it is sent
    other = ("POST", "/v1/console/reviews/o-3/verdict", {"verdict": "legit"}, {"order_id": "o-3"})
    assert call(console, *other, who=BOB)[0] == 409  # type: ignore[arg-type]
    status, case = call(console, *verdict, who=BOB)  # type: ignore[arg-type]
    # Then the case keeps her name, note and time, and the Feedback carries that time
    assert status == 202 and (case["verdict_by"], case["note"]) == (ALICE, "stolen")
    assert datetime.fromisoformat(case["verdict_at"]) == datetime.fromisoformat(first_at)
    sent = feedback_messages(console)
    assert [(m["kind"], datetime.fromisoformat(m["reported_at"])) for m in sent] == [
        ("fraud_confirmed", datetime.fromisoformat(first_at))
    ]
    # and once sent, nobody sends it again
    assert call(console, *verdict)[0] == 409  # type: ignore[arg-type]


def test_a_retried_verdict_whose_answer_was_lost_sends_the_same_feedback_again(console: LocalStack) -> None:
    faults = Faults()
    intake(console, [review_message("o-5")])
    verdict = ("POST", "/v1/console/reviews/o-5/verdict", {"verdict": "legit"}, {"order_id": "o-5"})
    updates = iter([None, code("ServiceUnavailable")()])  # the verdict lands, "feedback sent" does not

    with faults.on("before-call.dynamodb.UpdateItem", lambda **_: next(updates)):
        assert call(console, *verdict)[0] == 503  # type: ignore[arg-type]
    assert call(console, *verdict)[0] == 202  # type: ignore[arg-type]
    first, again = feedback_messages(console)
    # the same Feedback twice (the labels store it once), not a second, later verdict
    assert first == again and first["kind"] == "legit_confirmed"
    assert "feedback_pending" not in stored_case(console, "o-5")


def test_the_alerts_page_says_when_it_shows_only_the_first_matches(
    console: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given three stalled parcels, the oldest alert a YUNEXPRESS one
    for n, carrier in enumerate(["YUNEXPRESS", "CAINIAO", "CAINIAO"]):
        open_alert(console, f"LP-T{n}", carrier, NOW - timedelta(minutes=3 - n))

    def page(**query: str) -> tuple[list[str], bool]:
        status, body = call(console, "GET", "/v1/console/alerts", query=query)
        assert status == 200
        return [a["alert"]["parcel_id"] for a in body["alerts"]], body["truncated"]

    assert page() == (["LP-T2", "LP-T1", "LP-T0"], False)
    assert page(limit="2") == (["LP-T2", "LP-T1"], True)
    assert page(carrier="YUNEXPRESS") == (["LP-T0"], False)
    # When fewer are read per type than are open, a match beyond the cut is not lost silently
    monkeypatch.setattr(alerts_routes, "PER_TYPE", 2)
    assert page(carrier="YUNEXPRESS") == ([], True)
    assert page(type="STALLED") == (["LP-T2", "LP-T1"], True)


def test_a_list_change_whose_profile_write_lands_after_a_later_ones_is_dropped(
    console: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = console_dependencies().decisions
    real = store.set_list_status
    late: list[tuple[Any, ...]] = []

    def first_write_late(*args: Any) -> None:  # the first change's write is still on its way
        if not late:
            late.append(args)
            return
        real(*args)

    monkeypatch.setattr(store, "set_list_status", first_write_late)
    block = {"kind": "device", "value": "fp-late-1", "list": "block", "reason": "chargebacks"}
    _, first = call(console, "POST", "/v1/console/lists/changes", block)
    removal = {"kind": "device", "entity": first["entity"], "list": None, "reason": "bank cleared it"}
    status, second = call(console, "POST", "/v1/console/lists/changes", removal, who=BOB)
    assert status == 200 and second["applied"] and "list" not in profile(console, first["entity"])

    # When the first change's write arrives now, the later change is already there: it is refused
    with pytest.raises(ConflictError):
        real(*late[0])
    assert "list" not in profile(console, first["entity"])
    # and a change after both still applies
    monkeypatch.setattr(store, "set_list_status", real)
    status, third = call(console, "POST", "/v1/console/lists/changes", {**block, "reason": "again"})
    assert status == 200 and third["applied"] and profile(console, first["entity"])["list"] == {"S": "block"}
