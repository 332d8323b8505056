"""The one error body of the HTTP API: ``{"error": {"code", "message", "fields"}}``, for every status.

Every error the function answers has this shape, with a stable machine-readable `code` and the
offending `fields` (empty when no field is to blame). The OpenAPI document declares it for each
status (`ERROR_RESPONSES`). What API Gateway answers before the function runs (401/403 for a
missing or wrong signature or token, 429 when the route's shared throttle is spent) keeps the
shape AWS gives it, ``{"message": ...}`` (`GatewayError`): HTTP APIs offer no way to change those
bodies. A 429 for a caller over its own limit comes from Dozor (`http_throttle`), in the one body.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel, ConfigDict, Field

from dozor.domain.errors import (
    ConflictError,
    DozorError,
    InvalidInputError,
    NotFoundError,
    StoreUnavailableError,
)
from dozor.handlers.wiring import logger

ErrorCode = Literal[
    "forbidden",
    "not_found",
    "conflict",
    "payload_too_large",
    "unsupported_media_type",
    "invalid_request",
    "throttled",
    "unavailable",
    "internal",
]


class FieldError(BaseModel):
    """One offending field: its dotted path in the body (`buyer.id`), or `body` for the whole body."""

    model_config = ConfigDict(frozen=True)
    field: str
    message: str
    type: str


class ErrorDetail(BaseModel):
    model_config = ConfigDict(frozen=True)
    code: ErrorCode
    message: str
    fields: list[FieldError] = Field(default_factory=list)


class ErrorBody(BaseModel):
    """The body of every error Dozor's function answers."""

    model_config = ConfigDict(frozen=True)
    error: ErrorDetail


class GatewayError(BaseModel):
    """What API Gateway itself answers (authorization, throttling), before Dozor runs."""

    message: str


def documented(description: str, model: Any = ErrorBody) -> OpenAPIResponse:
    """A response for the OpenAPI document: ``model`` is a pydantic model, or a union of them."""
    return {"description": description, "content": {content_types.APPLICATION_JSON: {"model": model}}}


# The error statuses every authenticated route can answer, for the OpenAPI document.
ERROR_RESPONSES: dict[int, OpenAPIResponse] = {
    401: documented("JWT mode: no or an invalid bearer token (answered by API Gateway)", GatewayError),
    403: documented("IAM mode: unsigned request or wrong signature (answered by API Gateway)", GatewayError),
    404: documented("No such route, or no decision for that order"),
    413: documented("Body larger than the limit, counted in bytes"),
    415: documented("Body not sent as application/json"),
    422: documented("Invalid request; `fields` names each offending field"),
    429: documented(
        "Over a limit, with Retry-After: this caller's own (answered by Dozor, code `throttled`), "
        "or the route's, shared by every caller (answered by API Gateway, AWS's body)",
        ErrorBody | GatewayError,
    ),
    503: documented("A store is unavailable; retry the same request (Retry-After)"),
}
ORDER_RESPONSES: dict[int, OpenAPIResponse] = {
    **ERROR_RESPONSES,
    409: documented("This order_id was scored before with a different order"),
}

# Each family of the one error model has one status (dozor.domain.errors); first match wins.
_STATUS: tuple[tuple[type[DozorError], int, ErrorCode, str], ...] = (
    (StoreUnavailableError, 503, "unavailable", "the decision store is busy; retry the same request"),
    (ConflictError, 409, "conflict", "the request conflicts with what is stored"),
    (InvalidInputError, 422, "invalid_request", "the request is invalid"),
    (NotFoundError, 404, "not_found", "not found"),
)


def error_body(code: ErrorCode, message: str, fields: Sequence[FieldError] = ()) -> str:
    return ErrorBody(error=ErrorDetail(code=code, message=message, fields=list(fields))).model_dump_json()


def error_response(
    status: int,
    code: ErrorCode,
    message: str,
    fields: Sequence[FieldError] = (),
    headers: Mapping[str, str] | None = None,
) -> Response[str]:
    return Response(
        status, content_types.APPLICATION_JSON, error_body(code, message, fields), headers=dict(headers or {})
    )


def proxy_error(
    status: int, code: ErrorCode, message: str, fields: Sequence[FieldError] = ()
) -> dict[str, Any]:
    """The same error in the Lambda proxy response shape, for answers before the resolver runs."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": content_types.APPLICATION_JSON},
        "body": error_body(code, message, fields),
        "isBase64Encoded": False,
    }


def _field(location: Sequence[Any]) -> str:
    parts = [str(p) for p in location]
    if parts and parts[0] in {"body", "path", "query", "header"}:
        parts = parts[1:]
    return ".".join(parts) or "body"


def validation_response(errors: Sequence[Mapping[str, Any]]) -> Response[str]:
    """422 naming each offending field. Input values are not echoed: they may be personal data."""
    fields = [
        FieldError(
            field=_field(e.get("loc", ())),
            message=str(e.get("msg", "invalid")),
            type=str(e.get("type", "invalid")),
        )
        for e in errors
    ]
    return error_response(422, "invalid_request", "the request is invalid", fields)


def not_found_response() -> Response[str]:
    return error_response(404, "not_found", "no such route")


def domain_error_response(error: DozorError) -> Response[str]:
    """The HTTP answer to a domain error, by its family; 503s ask the client to retry."""
    for family, status, code, message in _STATUS:
        if isinstance(error, family):
            headers = {"Retry-After": "1"} if status == 503 else None
            detail = str(error) if status in (404, 409) else message
            # A rule the contract cannot check alone (a date ahead of the clock) names its field;
            # the message names the rule, never the value.
            named = error.fields if isinstance(error, InvalidInputError) else ()
            fields = [FieldError(field=f, message=str(error), type="value_error") for f in named]
            return error_response(status, code, detail, fields, headers=headers)
    return error_response(500, "internal", "internal error")


def install_error_handlers(app: APIGatewayHttpResolver, store: str) -> None:
    """The one error body for a resolver's invalid requests, unknown routes and domain errors;
    a store outage is logged as ``"<store> unavailable"`` (what the function's alarms look for)."""

    @app.exception_handler(RequestValidationError)
    def invalid_request(error: RequestValidationError) -> Response[str]:
        return validation_response(error.errors())

    @app.not_found
    def no_such_route(error: Exception) -> Response[str]:
        return not_found_response()

    @app.exception_handler(DozorError)
    def domain_error(error: DozorError) -> Response[str]:
        if isinstance(error, StoreUnavailableError):
            logger.warning(f"{store} unavailable", extra={"error": str(error)})
        return domain_error_response(error)
