"""The HTTP contract of ScoreOrderFunction at its edges: one error body for every status, limits
that mean what they say, and an OpenAPI document that declares all of it (issue: fuzzing found
5xx answers and undocumented statuses)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dozor.handlers.fraud import score_order
from tests.helpers.aws_stack import Stack, api_event, make_order


def call(stack: Stack, event: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, Any]]:
    response = score_order.lambda_handler(event, stack.context)
    return response["statusCode"], json.loads(response["body"]), response.get("headers") or {}


def post(stack: Stack, body: dict[str, Any] | str, content_type: str = "application/json") -> Any:
    event = api_event("POST", "/v1/orders/score", body)
    event["headers"]["content-type"] = content_type
    return call(stack, event)


def assert_error(body: dict[str, Any], code: str) -> dict[str, Any]:
    """The one error body: {"error": {"code", "message", "fields"}} and nothing else."""
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "fields"}
    assert error["code"] == code and error["message"]
    assert all(set(f) == {"field", "message", "type"} for f in error["fields"])
    return error


def test_unknown_routes_and_unknown_decisions_are_404_in_the_error_body(stack: Stack) -> None:
    for method, path in [("GET", "/v1/nothing-here"), ("DELETE", "/v1/orders/score"), ("GET", "/")]:
        event = api_event(method, path)
        event["routeKey"] = "$default"
        status, body, _ = call(stack, event)
        assert status == 404
        assert_error(body, "not_found")
    event = api_event("GET", "/v1/orders/nope/decision", path_parameters={"order_id": "nope"})
    status, body, _ = call(stack, event)
    assert status == 404
    assert "nope" in assert_error(body, "not_found")["message"]


def test_invalid_order_names_each_field(stack: Stack) -> None:
    order = make_order("o-http-bad")
    del order["buyer"]["id"]
    order["currency"] = "XYZ"
    status, body, _ = post(stack, order)
    assert status == 422
    fields = {f["field"] for f in assert_error(body, "invalid_request")["fields"]}
    assert {"buyer.id", "currency"} <= fields
    assert stack.decision_count() == 0


def test_body_limit_counts_bytes_not_characters(stack: Stack) -> None:
    # 20,000 four-byte emoji: 20,000 characters (under 64 KiB) but 80,000 bytes (over it)
    order = make_order("o-http-emoji")
    order["shipping"]["address"] = "\U0001f4e6" * 20_000
    text = json.dumps(order, ensure_ascii=False)
    assert len(text) < 64 * 1024 < len(text.encode())
    status, body, _ = post(stack, text)
    assert status == 413
    assert "bytes" in assert_error(body, "payload_too_large")["message"]
    # the same limit on a base64-encoded body counts the decoded bytes
    event = api_event("POST", "/v1/orders/score", json.dumps(make_order("o-http-b64")) + " " * 70_000)
    event["body"] = base64.b64encode(event["body"].encode()).decode()
    event["isBase64Encoded"] = True
    assert call(stack, event)[0] == 413
    assert stack.decision_count() == 0


@pytest.mark.parametrize(
    "content_type",
    ["multipart/form-data", "multipart/form-data; boundary=x", "text/plain", "application/xml"],
)
def test_a_body_that_is_not_json_is_415(stack: Stack, content_type: str) -> None:
    status, body, _ = post(stack, "--x\r\nContent-Disposition: form-data\r\n\r\n1\r\n--x--", content_type)
    assert status == 415
    assert_error(body, "unsupported_media_type")


def test_json_media_types_with_parameters_are_accepted(stack: Stack) -> None:
    assert post(stack, make_order("o-http-charset"), "application/json; charset=utf-8")[0] == 200


@pytest.mark.parametrize("depth", [33, 990, 5_000])
def test_absurdly_nested_json_is_422_not_500(stack: Stack, depth: int) -> None:
    status, body, _ = post(stack, "[" * depth + "]" * depth)
    assert status == 422
    assert assert_error(body, "invalid_request")["fields"][0]["field"] == "body"
    status, _, _ = post(stack, '{"order_id": ' + '{"a": ' * depth + "1" + "}" * depth + "}")
    assert status == 422


def test_malformed_json_is_422(stack: Stack) -> None:
    status, body, _ = post(stack, '{"order_id": ')
    assert status == 422
    assert_error(body, "invalid_request")


@pytest.mark.parametrize("amount", [1e-300, 1e-5, 0.004, 0.0099])
def test_amounts_below_one_minor_unit_are_422_never_503(stack: Stack, amount: float) -> None:
    status, body, _ = post(stack, make_order("o-http-tiny", amount=amount))
    assert status == 422
    assert "amount" in {f["field"] for f in assert_error(body, "invalid_request")["fields"]}


def test_amounts_are_rounded_to_the_minor_unit_and_scored(stack: Stack) -> None:
    status, decision, _ = post(stack, make_order("o-http-fraction", amount=1234.567891234567))
    assert status == 200, decision
    assert decision["order_id"] == "o-http-fraction"
    status, decision, _ = post(stack, make_order("o-http-cent", amount=0.01))
    assert status == 200, decision


@pytest.mark.parametrize(
    ("amount", "currency", "status"),
    [
        (50_000_000, "RUB", 200),
        (50_000_001, "RUB", 422),
        (50_000_000, "USD", 422),  # 4.5 billion roubles: the cap applies after conversion
        (555_555, "USD", 200),
        (277_000_000, "KZT", 200),  # 49.9M roubles
    ],
)
def test_the_amount_cap_applies_after_conversion(
    stack: Stack, amount: float, currency: str, status: int
) -> None:
    order = make_order(f"o-http-cap-{amount}-{currency}", amount=amount)
    order["currency"] = currency
    got, body, _ = post(stack, order)
    assert got == status, body
    if status == 422:
        assert "amount" in {f["field"] for f in assert_error(body, "invalid_request")["fields"]}


@pytest.mark.parametrize("field", ["created_at", "buyer.account_created_at"])
def test_an_instant_more_than_a_day_ahead_is_422_naming_its_field(stack: Stack, field: str) -> None:
    order = make_order(f"o-http-ahead-{field}")
    ahead = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    if field == "created_at":
        order["created_at"] = ahead
    else:
        order["buyer"]["account_created_at"] = ahead
    got, body, _ = post(stack, order)
    assert got == 422
    assert [f["field"] for f in assert_error(body, "invalid_request")["fields"]] == [field]
    assert ahead not in json.dumps(body)  # the rule is named, the value is not echoed


def test_openapi_documents_every_status_with_its_body_and_the_security_scheme(stack: Stack) -> None:
    status, doc, _ = call(stack, api_event("GET", "/v1/openapi.json"))
    assert status == 200
    assert doc["security"] == [{"sigv4": []}]
    assert doc["components"]["securitySchemes"]["sigv4"]["x-amazon-apigateway-authtype"] == "awsSigv4"
    score = doc["paths"]["/v1/orders/score"]["post"]["responses"]
    decision = doc["paths"]["/v1/orders/{order_id}/decision"]["get"]["responses"]
    assert set(score) == {"200", "401", "403", "404", "409", "413", "415", "422", "429", "503"}
    assert set(decision) == {"200", "401", "403", "404", "413", "415", "422", "429", "503"}

    def schema(response: dict[str, Any]) -> str:
        ref: str = response["content"]["application/json"]["schema"]["$ref"]
        return ref.rsplit("/", 1)[1]

    for responses in (score, decision):
        assert schema(responses["200"]) == "Decision"
        assert {schema(responses[s]) for s in responses if s not in {"200", "401", "403", "429"}} == {
            "ErrorBody"
        }
        assert {schema(responses[s]) for s in ("401", "403")} == {"GatewayError"}
        # 429: a caller over its own limit (Dozor's body) or the route's shared one (AWS's)
        either = responses["429"]["content"]["application/json"]["schema"]["anyOf"]
        assert {ref["$ref"].rsplit("/", 1)[1] for ref in either} == {"ErrorBody", "GatewayError"}
    # created_at's years as a pattern; the clock's bound in its description (no keyword can say it)
    created = doc["components"]["schemas"]["Order"]["properties"]["created_at"]
    assert created["format"] == "date-time" and created["pattern"] == "^20[0-9]{2}-"
    assert "a day ahead of now" in created["description"]
    error = doc["components"]["schemas"]["ErrorDetail"]
    assert set(error["required"]) == {"code", "message"} and "fields" in error["properties"]
    # One API, one document: the console's and the lane report's routes are in it too
    assert {"/v1/lanes", "/v1/lanes/sellers/{seller_id}", "/v1/console/reviews"} <= set(doc["paths"])
    assert "404" in doc["paths"]["/v1/lanes"]["get"]["responses"]


def test_swagger_ui_is_served_though_its_models_load_only_for_the_documentation(stack: Stack) -> None:
    # The OpenAPI models are set up on the first documentation request, not at import (cold start).
    response = score_order.lambda_handler(api_event("GET", "/v1/docs"), stack.context)
    assert response["statusCode"] == 200
    assert response["headers"]["Content-Type"].startswith("text/html")
    assert "SwaggerUIBundle" in response["body"] and score_order.TITLE in response["body"]
    spec = score_order.lambda_handler(
        {**api_event("GET", "/v1/docs"), "queryStringParameters": {"format": "json"}}, stack.context
    )
    document = json.loads(spec["body"])
    assert document["components"]["securitySchemes"]["sigv4"]["in"] == "header"
    # the whole API, as GET /v1/openapi.json has it: the console's and the lane report's routes too
    assert {"/v1/orders/score", "/v1/lanes", "/v1/console/reviews"} <= set(document["paths"])
    assert '"/v1/lanes"' in response["body"]
