"""Each family of the one error model maps onto one status, one code and the one error body."""

from __future__ import annotations

import json

import pytest

from dozor.domain.errors import (
    AlreadyDecidedError,
    ConflictError,
    DozorError,
    InvalidInputError,
    NotFoundError,
    StoreUnavailableError,
)
from dozor.handlers.http_errors import ErrorBody, domain_error_response, validation_response


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (StoreUnavailableError("table throttled"), 503, "unavailable"),
        (ConflictError("order o-1 was scored with another body"), 409, "conflict"),
        (AlreadyDecidedError("o-1"), 409, "conflict"),
        (InvalidInputError("card=4111..."), 422, "invalid_request"),
        (NotFoundError("no decision for order o-1"), 404, "not_found"),
        (DozorError("unexpected"), 500, "internal"),
    ],
)
def test_each_family_has_its_status_code_and_the_one_body(error: DozorError, status: int, code: str) -> None:
    response = domain_error_response(error)
    body = json.loads(str(response.body))
    assert response.status_code == status
    assert ErrorBody.model_validate(body).error.code == code
    assert set(body["error"]) == {"code", "message", "fields"}
    if status == 503:
        assert response.headers["Retry-After"] == "1"
    if status in (422, 500, 503):  # the error's own text may carry input: not echoed
        assert str(error) not in body["error"]["message"]


def test_validation_errors_name_each_field_without_echoing_values() -> None:
    errors = [
        {"loc": ("body", "buyer", "id"), "msg": "Field required", "type": "missing", "input": {}},
        {
            "loc": ("body", "payment", "card_bin"),
            "msg": "String should match",
            "type": "string_pattern_mismatch",
            "input": "4111x",
        },
        {"loc": (), "msg": "bad", "type": "json_invalid"},
    ]
    body = json.loads(str(validation_response(errors).body))
    assert [f["field"] for f in body["error"]["fields"]] == ["buyer.id", "payment.card_bin", "body"]
    assert "4111x" not in json.dumps(body)
