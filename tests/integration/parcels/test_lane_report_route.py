"""LaneReportFunction on moto: `dozor lanes report --publish` puts the report in the model bucket,
GET /v1/lanes serves the marketplace's figures and GET /v1/lanes/sellers/{id} one seller's alone."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from dozor.adapters.s3_reports import LANES_PREFIX, LATEST
from dozor.handlers.parcels import lane_report
from dozor.settings import LaneReportSettings
from dozor_local.invoke import LambdaContext
from dozor_local.sam import load_template
from dozor_training.cli import main
from dozor_training.fraud.simulator import SimulationConfig, simulate
from dozor_training.history_commands import write_simulated_history

ROOT = Path(__file__).resolve().parents[3]
EVENT = json.loads((ROOT / "events" / "api_get_seller_lanes.json").read_text())
BUCKET = "dozor-models-test"


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    orders = simulate(SimulationConfig(days=3, seed=3, orders_per_day=120))
    return write_simulated_history(orders, tmp_path_factory.mktemp("history"), "jsonl", 3)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("MODEL_BUCKET_NAME", BUCKET)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
        lane_report.settings.cache_clear()
        lane_report.lane_reports.cache_clear()
        yield client
        lane_report.settings.cache_clear()
        lane_report.lane_reports.cache_clear()


def publish(history: dict[str, Path], out: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    argv = ["lanes", "report", "--orders", str(history["orders"]), "--labels", str(history["labels"])]
    argv += ["--shipments", str(history["shipments"]), "--out", str(out), "--publish", "--bucket", BUCKET]
    assert main(argv) == 0
    summary: dict[str, Any] = json.loads(capsys.readouterr().out)
    return summary


def get(
    path: str, seller_id: str | None = None, claims: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    event = copy.deepcopy(EVENT)
    if claims is not None:
        event["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["routeKey"] = event["requestContext"]["routeKey"] = (
        "GET /v1/lanes" if seller_id is None else "GET /v1/lanes/sellers/{seller_id}"
    )
    event["pathParameters"] = None if seller_id is None else {"seller_id": seller_id}
    context = LambdaContext(
        function_name="LaneReportFunction",
        invoked_function_arn="arn:aws:lambda:eu-central-1:123456789012:function:LaneReportFunction",
        memory_limit_in_mb="256",
        aws_request_id="req-1",
        function_version="$LATEST",
        log_group_name="/aws/lambda/LaneReportFunction",
        log_stream_name="local",
        deadline_ms=2**62,
    )
    response = lane_report.lambda_handler(event, context)
    body: dict[str, Any] = json.loads(response["body"])
    return response["statusCode"], body


def sellers_in(history: dict[str, Path], shipped: bool = False) -> set[str]:
    """Every seller of the orders file (with `shipped`, those who shipped a parcel)."""
    with history["orders"].open() as f:
        orders = [json.loads(line) for line in f]
    return {o["seller"]["id"] for o in orders if not shipped or (o.get("shipping") or {}).get("region")}


def test_the_marketplace_route_serves_the_published_report_without_sellers_views(
    s3: Any, history: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = publish(history, tmp_path, capsys)
    assert f"s3://{BUCKET}/{LANES_PREFIX}{LATEST}" in summary["published"]
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=LANES_PREFIX)["Contents"]}
    # latest.json, and one generation: its marketplace report and one view per seller
    assert len(keys) == len(summary["published"])
    assert (
        len([k for k in keys if "/sellers/" in k]) == len(sellers_in(history, shipped=True)) == len(keys) - 2
    )

    status, body = get("/v1/lanes")
    assert status == 200
    written = json.loads((tmp_path / "lanes.json").read_text())
    assert body.pop("generation") and body == written  # the same figures as the files
    assert "sellers" not in body
    text = json.dumps(body)
    assert not [s for s in sellers_in(history) if s in text]


def test_a_sellers_route_serves_that_sellers_view_alone(
    s3: Any, history: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publish(history, tmp_path, capsys)
    sellers = sorted(sellers_in(history))
    seller = sellers[0]
    status, body = get(f"/v1/lanes/sellers/{seller}", seller)
    assert status == 200
    assert body["view"] == "seller" and body["seller_id"] == seller
    text = json.dumps(body)
    assert not [s for s in sellers[1:] if s in text]
    assert body["overall"]["marketplace"]["parcels"] > body["overall"]["seller"]["parcels"] > 0


def test_unknown_sellers_and_a_missing_report_are_404s(
    s3: Any, history: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, body = get("/v1/lanes")
    assert status == 404 and body["error"]["code"] == "not_found"
    publish(history, tmp_path, capsys)
    status, body = get("/v1/lanes/sellers/slr_nobody", "slr_nobody")
    assert status == 404 and "slr_nobody" in body["error"]["message"]
    status, _ = get("/v1/lanes/elsewhere")
    assert status == 404


def test_a_broken_report_is_a_422_not_a_crash(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key=LANES_PREFIX + LATEST, Body=b"{not json")
    status, body = get("/v1/lanes")
    assert status == 422 and body["error"]["code"] == "invalid_request"
    s3.put_object(Bucket=BUCKET, Key=LANES_PREFIX + LATEST, Body=b'{"view": "seller"}')
    status, _ = get("/v1/lanes")
    assert status == 422


def test_an_unreachable_bucket_is_a_503_logged_as_the_lane_report_unavailable(
    s3: Any, caplog: pytest.LogCaptureFixture
) -> None:
    s3.delete_bucket(Bucket=BUCKET)  # what a deleted or unreadable bucket answers: NoSuchBucket
    status, body = get("/v1/lanes")
    assert status == 503 and body["error"]["code"] == "unavailable"
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warned == ["lane report unavailable"]


def test_the_function_reads_only_the_published_reports_behind_the_apis_authorization() -> None:
    template = load_template(ROOT / "template.yaml")
    function = template["Resources"]["LaneReportFunction"]["Properties"]
    assert function["Handler"] == "dozor.handlers.parcels.lane_report.lambda_handler"
    routes = {(e["Properties"]["Method"], e["Properties"]["Path"]) for e in function["Events"].values()}
    assert routes == {("GET", "/v1/lanes"), ("GET", "/v1/lanes/sellers/{seller_id}")}
    assert all("Auth" not in e["Properties"] for e in function["Events"].values())  # the API's default
    paths = template["Resources"]["HttpApi"]["Properties"]["DefinitionBody"]["paths"]
    for _, path in routes:
        assert paths[path]["get"]["security"] == paths["/v1/orders/score"]["post"]["security"]
    (statement,) = [s for p in function["Policies"] for s in p["Statement"]]
    assert statement["Action"] == "s3:GetObject"
    assert statement["Resource"] == {"Fn::Sub": "${ModelBucket.Arn}/" + LANES_PREFIX + "*"}


def test_a_token_scoped_to_a_seller_reads_that_sellers_view_alone(
    s3: Any, history: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publish(history, tmp_path, capsys)
    mine, other = sorted(sellers_in(history))[:2]
    claims = {"sub": "merchant-portal|42", "seller_id": mine}
    status, body = get(f"/v1/lanes/sellers/{mine}", mine, claims)
    assert status == 200 and body["seller_id"] == mine
    status, body = get(f"/v1/lanes/sellers/{other}", other, claims)
    assert status == 404 and other not in json.dumps(body).replace(f"seller {other}", "")
    assert get(f"/v1/lanes/sellers/{other}", other, {"sub": "x", "seller_id": "slr_nobody"})[1] == body
    status, body = get("/v1/lanes", claims=claims)  # thin lanes of the marketplace's are other sellers'
    assert status == 404 and "sellers" not in body
    assert get("/v1/lanes", claims={"sub": "ops"})[0] == 200  # a token naming no seller: the marketplace


def test_the_seller_claim_is_a_setting(
    s3: Any,
    history: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A Cognito pool names the merchant in a custom attribute, not in seller_id.
    monkeypatch.setenv("SELLER_CLAIM", "custom:merchant")
    lane_report.settings.cache_clear()
    publish(history, tmp_path, capsys)
    mine, other = sorted(sellers_in(history))[:2]
    claims = {"sub": "merchant-portal|42", "custom:merchant": mine}
    assert get(f"/v1/lanes/sellers/{mine}", mine, claims)[0] == 200
    assert get(f"/v1/lanes/sellers/{other}", other, claims)[0] == 404
    assert get("/v1/lanes", claims=claims)[0] == 404
    # seller_id is then just another claim: it scopes nobody
    assert get("/v1/lanes", claims={"sub": "ops", "seller_id": mine})[0] == 200


def test_the_template_sets_the_seller_claim_from_its_parameter() -> None:
    template = load_template(ROOT / "template.yaml")
    parameter = template["Parameters"]["JwtSellerClaim"]
    assert parameter["Default"] == LaneReportSettings.model_fields["seller_claim"].default == "seller_id"
    variables = template["Resources"]["LaneReportFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["SELLER_CLAIM"] == {"Ref": "JwtSellerClaim"}
    pattern = re.compile(parameter["AllowedPattern"])
    assert pattern.match("seller_id") and pattern.match("custom:seller_id") and not pattern.match("")


def test_old_lane_report_generations_expire_and_model_artifacts_do_not() -> None:
    bucket = load_template(ROOT / "template.yaml")["Resources"]["ModelBucket"]["Properties"]
    rules = bucket["LifecycleConfiguration"]["Rules"]
    assert [r["Prefix"] for r in rules if r["Status"] == "Enabled"] == [LANES_PREFIX]
    (rule,) = rules
    # Longer than any publishing interval (so the current generation outlives its successor's
    # arrival), and old versions of the rewritten latest.json do not pile up in the versioned bucket.
    assert rule["ExpirationInDays"] >= 30
    assert 0 < rule["NoncurrentVersionExpiration"]["NoncurrentDays"] <= rule["ExpirationInDays"]
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"  # why the noncurrent rule is needed
