"""The one shape of every error the HTTP API returns: ``{"message", "errors": [{"field", ...}]}``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types


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
