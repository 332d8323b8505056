"""ScoreOrderFunction: the checkout's real-time risk decision over the HTTP API.

POST /v1/orders/score                  an order in, a Decision out (replays return the first one)
GET  /v1/orders/{order_id}/decision    the stored decision
GET  /v1/openapi.json, /v1/docs        the OpenAPI document and its Swagger UI (no auth)
anything else                          404 in the one error body (the API's $default route)

Every error is the one body of `http_errors`; bodies too large, not JSON or nested absurdly deep
are answered before anything parses them (`http_guards`).

No ``from __future__ import annotations`` here: the resolver reads the route signatures at run
time to validate requests and build the OpenAPI document.
"""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.middleware_factory import lambda_handler_decorator
from aws_lambda_powertools.utilities.typing import LambdaContext

from dozor.domain.contracts import Decision, Order
from dozor.domain.errors import NotFoundError
from dozor.handlers.fraud.wiring import dependencies, report_shadow, scoring
from dozor.handlers.http_errors import (
    ERROR_RESPONSES,
    ORDER_RESPONSES,
    documented,
    install_error_handlers,
)
from dozor.handlers.http_guards import unreadable_body
from dozor.handlers.http_throttle import CallerThrottledError, per_caller_limit, throttled_response
from dozor.handlers.wiring import logger, metrics, tracer

TITLE = "Dozor risk API"
DOCS_PATH = "/v1/docs"

app = APIGatewayHttpResolver(enable_validation=True)
_documented: list[bool] = []  # whether the documentation routes are set up in this container


def document_api() -> None:
    """The API's OpenAPI configuration, set up on the first request for the documentation:
    powertools' OpenAPI models cost a fifth of `import boto3` on every cold start, and only the
    documentation routes read them (checkout's requests never do)."""
    if _documented:
        return
    from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn  # noqa: PLC0415

    # As deployed by default: AWS IAM, a SigV4-signed request (service `execute-api`). With the
    # template's JwtIssuer set, API Gateway wants `Authorization: Bearer <JWT>` instead.
    sigv4 = APIKey(
        name="Authorization",
        in_=APIKeyIn.header,
        description="AWS Signature Version 4 (service execute-api), or `Bearer <JWT>` in JWT mode",
        **{"x-amazon-apigateway-authtype": "awsSigv4"},
    )
    app.configure_openapi(
        title=TITLE, version="1.0.0", security_schemes={"sigv4": sigv4}, security=[{"sigv4": []}]
    )
    _documented.append(True)


@app.post(
    "/v1/orders/score",
    summary="Score an order",
    responses={200: documented("The decision (a replay: the first one)", Decision), **ORDER_RESPONSES},
)
@per_caller_limit(app, lambda: dependencies().scoring.budget)  # 429 for a caller over its limit
@tracer.capture_method
def score_order(order: Order) -> Decision:
    deadline = app.context.get("deadline")  # started on arrival, by per_caller_limit
    service = scoring(deadline)  # the hash key and the registry's pointers inside the budget
    scored = service.prepare([order], deadline=deadline)[0]
    decision = service.commit(scored)
    report_shadow(scored, decision)
    metrics.add_metric(name=f"Decision{decision.decision.value.title()}", unit=MetricUnit.Count, value=1)
    return decision


@app.get(
    "/v1/orders/<order_id>/decision",
    summary="The stored decision for an order",
    responses={200: documented("The stored decision", Decision), **ERROR_RESPONSES},
)
@per_caller_limit(app)
@tracer.capture_method
def get_decision(order_id: Annotated[str, Path(min_length=1, max_length=128)]) -> Decision:
    decision = dependencies().store.get_decision(order_id)
    if decision is None:
        raise NotFoundError(f"no decision for order {order_id}")
    return decision


@app.get("/v1/openapi.json", include_in_schema=False)
def openapi_document() -> Response[str]:
    # The console's and the lane report's routes belong to the same API and so to its one document.
    from dozor.handlers.api_document import whole_api  # noqa: PLC0415 - only the docs need it

    document_api()
    return Response(200, content_types.APPLICATION_JSON, whole_api(app))


@app.get(DOCS_PATH, include_in_schema=False)
def swagger_ui() -> Response[str]:
    # powertools' Swagger UI page, over the whole API's document: its enable_swagger would show
    # this resolver's routes only. `?format=json` answers the document, as enable_swagger's does.
    from dozor.handlers.api_document import swagger_page, whole_api  # noqa: PLC0415

    document_api()
    if (app.current_event.query_string_parameters or {}).get("format") == "json":
        return Response(200, content_types.APPLICATION_JSON, whole_api(app))
    return Response(200, "text/html", swagger_page(whole_api(app)))


install_error_handlers(app, "decision store")


@app.exception_handler(CallerThrottledError)
def caller_throttled(error: CallerThrottledError) -> Response[str]:
    return throttled_response(error)


@lambda_handler_decorator
def reject_unreadable(handler: Any, event: dict[str, Any], context: LambdaContext) -> Any:
    """413 / 415 / 422 before anything parses a body that is too large, not JSON, or too deep."""
    return unreadable_body(event, dependencies().settings.max_body_bytes) or handler(event, context)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
@reject_unreadable
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
