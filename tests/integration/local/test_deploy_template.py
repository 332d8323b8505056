"""The deploy path, offline: what the SAM transform makes of template.yaml (both authorization
modes), the throttles, reserved concurrency, access logs and dashboard, the layer's build guard
and the committed samconfig.toml. No Docker, no AWS account."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from dozor_local.sam import load_template, translate

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = ROOT / "template.yaml"
# The docs, and the console's page (static files with no data; its /v1/console/* data routes are
# authorized like every other route: a browser cannot sign a navigation).
OPEN_ROUTES = {"/v1/openapi.json", "/v1/docs", "/console", "/console/", "/console/{name}"}


def translated(**parameters: str) -> dict[str, Any]:
    return translate(load_template(TEMPLATE), region="eu-central-1", parameters=parameters)


def resolve_if(value: Any, jwt: bool) -> Any:
    """The branch of an Fn::If on UseJwt that CloudFormation would take."""
    if isinstance(value, dict) and "Fn::If" in value:
        condition, yes, no = value["Fn::If"]
        assert condition == "UseJwt"
        return yes if jwt else no
    return value


def route_security(template: dict[str, Any], jwt: bool) -> dict[str, list[dict[str, list[str]]]]:
    paths = template["Resources"]["HttpApi"]["Properties"]["Body"]["paths"]
    return {
        f"{method} {path}": resolve_if(operation.get("security", []), jwt)
        for path, item in paths.items()
        for method, operation in item.items()
    }


@pytest.mark.parametrize(
    ("parameters", "scheme"), [({}, "AWS_IAM"), ({"JwtIssuer": "https://id.example"}, "DozorJwt")]
)
def test_every_route_but_the_docs_is_authorized(parameters: dict[str, str], scheme: str) -> None:
    security = route_security(translated(**parameters), jwt=bool(parameters))
    assert {route for route, required in security.items() if not required} == {
        f"get {p}" for p in OPEN_ROUTES
    }
    guarded = {route: required for route, required in security.items() if required}
    assert set(guarded) >= {
        "post /v1/orders/score",
        "get /v1/orders/{order_id}/decision",
        "x-amazon-apigateway-any-method $default",
    }
    # In JWT mode the console's data routes also require its scope: a merchant's token (the same
    # issuer and audience) must not settle reviews or change lists.
    console_scope = [{"Ref": "ConsoleScope"}] if scheme == "DozorJwt" else []
    for route, required in guarded.items():
        wanted = console_scope if route.split(" ", 1)[1].startswith("/v1/console/") else []
        assert required == [{scheme: wanted}], route
    assert sum(route.split(" ", 1)[1].startswith("/v1/console/") for route in guarded) == 11


def test_the_jwt_authorizer_takes_the_issuer_and_audiences() -> None:
    body = translated(JwtIssuer="https://id.example", JwtAudience="checkout,ops")["Resources"]["HttpApi"]
    components = resolve_if(body["Properties"]["Body"]["components"], jwt=True)
    authorizer = components["securitySchemes"]["DozorJwt"]["x-amazon-apigateway-authorizer"]
    assert authorizer["type"] == "jwt" and authorizer["identitySource"] == "$request.header.Authorization"
    assert authorizer["jwtConfiguration"] == {
        "issuer": {"Ref": "JwtIssuer"},
        "audience": {"Ref": "JwtAudience"},
    }
    iam = translated()["Resources"]["HttpApi"]["Properties"]["Body"]["components"]
    assert resolve_if(iam, jwt=False) == {"Ref": "AWS::NoValue"}  # no authorizer in IAM mode


def test_throttles_reserved_concurrency_and_access_logs() -> None:
    resources = translated()["Resources"]
    stage = resources["HttpApiApiGatewayDefaultStage"]["Properties"]
    assert stage["DefaultRouteSettings"] == {
        "ThrottlingBurstLimit": {"Ref": "ApiThrottleBurstLimit"},
        "ThrottlingRateLimit": {"Ref": "ApiThrottleRateLimit"},
    }
    # the open docs and the console's page have small throttles of their own
    assert {key: v["ThrottlingRateLimit"] for key, v in stage["RouteSettings"].items()} == {
        "GET /v1/openapi.json": 5,
        "GET /v1/docs": 5,
        "GET /console": 5,
        "GET /console/": 5,
        "GET /console/{name}": 10,
    }
    assert stage["AccessLogSettings"]["DestinationArn"] == {"Fn::GetAtt": ["HttpApiAccessLogGroup", "Arn"]}
    log_format = json.loads(re.sub(r"\s+", " ", stage["AccessLogSettings"]["Format"]))
    assert {"requestId", "route", "status", "latencyMs", "caller", "subject", "authError"} <= set(log_format)
    assert resources["HttpApiAccessLogGroup"]["Properties"]["RetentionInDays"] == 30
    score = resources["ScoreOrderFunction"]["Properties"]
    assert score["ReservedConcurrentExecutions"] == {"Ref": "ScoreOrderReservedConcurrency"}


def test_the_score_function_may_touch_only_its_own_resources() -> None:
    resources = translated()["Resources"]
    role = resources["ScoreOrderFunctionRole"]["Properties"]
    statements = [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    actions = {
        a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert not [a for a in actions if a.endswith("*")]
    assert not [s for s in statements if s["Resource"] == "*"]
    assert "dynamodb:Scan" not in actions and "dynamodb:DeleteItem" not in actions


def test_the_dashboard_is_valid_json_over_every_dlq_and_the_metrics_the_code_emits() -> None:
    template = load_template(TEMPLATE)
    body = template["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    references = set(re.findall(r"\$\{([^}]+)\}", body))
    dashboard = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))
    titles = {w["properties"]["title"] for w in dashboard["widgets"]}
    assert {"Decisions by kind", "Checkout latency (ms)", "Degraded share of decisions"} <= titles
    assert {"Dead-letter queue depths", "Parcel alerts by type"} <= titles
    dlqs = {
        q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for q in template["Resources"].values()
        if q["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in q.get("Properties", {})
    }
    assert {f"{dlq}.QueueName" for dlq in dlqs} <= references
    assert all(r.split(".")[0] in template["Resources"] or r.startswith("AWS::") for r in references)
    code = "\n".join(p.read_text() for p in (ROOT / "functions/dozor/handlers").rglob("*.py"))
    names = {m[1] for w in dashboard["widgets"] for m in w["properties"]["metrics"] if m[0] == "Dozor"}
    for name in names - {
        "DecisionApprove",
        "DecisionReview",
        "DecisionDecline",
        "AlertsStalled",
        "AlertsLikelyLost",
    }:
        assert f'"{name}"' in code, name
    assert "Decision{decision.decision.value.title()}" in code and "Alerts{alert_type.title()" in code


def test_descriptions_tell_the_truth_about_the_layer_and_the_api() -> None:
    template = load_template(TEMPLATE)
    layer = template["Resources"]["DependenciesLayer"]
    assert "scipy" not in layer["Properties"]["Description"]
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    assert "SigV4" in template["Outputs"]["ApiUrl"]["Description"]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_sam_build_of_the_layer_fails_loudly_when_it_was_not_built(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "infra/layer").mkdir(parents=True)
    shutil.copy(ROOT / "infra/layer/Makefile", project / "infra/layer/Makefile")
    makefile = str(project / "infra/layer/Makefile")
    artifacts = tmp_path / "artifacts"
    command = [
        "make",
        "--no-print-directory",
        "--makefile",
        makefile,
        "build-DependenciesLayer",
        f"ARTIFACTS_DIR={artifacts}",
    ]
    failed = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert failed.returncode != 0 and "the Lambda layer was not built" in failed.stderr
    (project / "build/layer/python/numpy").mkdir(parents=True)
    (project / "build/layer/python/numpy/__init__.py").write_text("")
    subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=True)
    assert (artifacts / "python/numpy/__init__.py").exists()


def test_every_function_ships_its_package_with_python_312_bytecode(tmp_path: Path) -> None:
    # /var/task is read-only on Lambda: a package shipped as source is compiled at every cold start
    functions = {
        name: resource
        for name, resource in load_template(TEMPLATE)["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    assert {name: r.get("Metadata", {}).get("BuildMethod") for name, r in functions.items()} == dict.fromkeys(
        functions, "makefile"
    )
    artifacts = tmp_path / "ScoreOrderFunction"
    command = ["make", "--no-print-directory", "-C", str(ROOT / "functions"), "build-ScoreOrderFunction"]
    built = subprocess.run(
        [*command, f"ARTIFACTS_DIR={artifacts}"], capture_output=True, text=True, check=False
    )
    assert built.returncode == 0, built.stderr
    if "no CPython 3.12 found" in built.stderr:
        pytest.skip("no CPython 3.12 here to write the runtime's bytecode")
    sources = sorted(p.relative_to(artifacts) for p in artifacts.rglob("*.py"))
    assert Path("dozor/handlers/fraud/score_order.py") in sources
    assert (artifacts / "dozor/model/trees.npz").exists()  # the package's data files come along
    for source in sources:
        cached = artifacts / source.parent / "__pycache__" / f"{source.stem}.cpython-312.pyc"
        assert cached.exists(), source


def test_samconfig_deploys_with_resolve_s3_and_the_capabilities_the_template_needs() -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())["default"]
    deploy = config["deploy"]["parameters"]
    assert deploy["resolve_s3"] is True
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert config["global"]["parameters"]["stack_name"] == "dozor"
    assert config["validate"]["parameters"]["lint"] is True
