"""The one shape of every error the HTTP API returns: ``{"message", "errors": [{"field", ...}]}``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types

from dozor.domain.errors import (
    ConflictError,
    DozorError,
    InvalidInputError,
    NotFoundError,
    StoreUnavailableError,
)

# Each family of the one error model has one status (dozor.domain.errors); first match wins.
_STATUS: tuple[tuple[type[DozorError], int, str], ...] = (
    (StoreUnavailableError, 503, "the decision store is busy; retry the same request"),
    (ConflictError, 409, "the request conflicts with what is stored"),
    (InvalidInputError, 422, "the request is invalid"),
    (NotFoundError, 404, "not found"),
)


def error_response(
    status: int,
    message: str,
    headers: Mapping[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> Response[str]:
    body: dict[str, Any] = {"message": message}
    if errors is not None:
        body["errors"] = errors
    return Response(status, content_types.APPLICATION_JSON, json.dumps(body), headers=dict(headers or {}))


def _field(location: Sequence[Any]) -> str:
    parts = [str(p) for p in location]
    if parts and parts[0] in {"body", "path", "query", "header"}:
        parts = parts[1:]
    return ".".join(parts) or "body"


def validation_response(errors: Sequence[Mapping[str, Any]]) -> Response[str]:
    """422 naming each offending field. Input values are not echoed: they may be personal data."""
    fields = [
        {"field": _field(e.get("loc", ())), "message": e.get("msg", "invalid"), "type": e.get("type")}
        for e in errors
    ]
    return error_response(422, "the order is invalid", errors=fields)


def oversize_response(size: int, limit: int) -> dict[str, Any]:
    """A 413 in the Lambda proxy response shape (raised before the resolver sees the event)."""
    return {
        "statusCode": 413,
        "headers": {"Content-Type": content_types.APPLICATION_JSON},
        "body": json.dumps({"message": f"body of {size} bytes exceeds the {limit} byte limit"}),
        "isBase64Encoded": False,
    }


def domain_error_response(error: DozorError) -> Response[str]:
    """The HTTP answer to a domain error, by its family; 503s ask the client to retry."""
    for family, status, message in _STATUS:
        if isinstance(error, family):
            headers = {"Retry-After": "1"} if status == 503 else None
            detail = str(error) if status in (404, 409) else message
            return error_response(status, detail, headers)
    return error_response(500, "internal error")
