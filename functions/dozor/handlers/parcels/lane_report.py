"""LaneReportFunction: the published lane reliability figures over the HTTP API.

GET /v1/lanes                        the marketplace's figures (no seller's own view)
GET /v1/lanes/sellers/{seller_id}    one seller's lanes beside the marketplace's

Both read the report `dozor lanes report --publish` put in the model bucket (one object per
seller); the API's default authorizer guards them. A JWT carrying the seller claim (SELLER_CLAIM,
the template's JwtSellerClaim, `seller_id` by default) scopes the caller to that seller: its own
view only (`dozor.domain.parcels.lane_report`). Errors are the one body of `http_errors`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from dozor.adapters.s3_reports import S3LaneReports
from dozor.domain.errors import InvalidInputError
from dozor.domain.parcels.lane_report import marketplace_view, seller_view
from dozor.handlers.authorizer import authorized
from dozor.handlers.http_errors import ERROR_RESPONSES, documented, install_error_handlers
from dozor.handlers.wiring import aws_client, logger, tracer
from dozor.settings import LaneReportSettings

MAX_SELLER_ID = 128

app = APIGatewayHttpResolver()


@lru_cache(maxsize=1)
def settings() -> LaneReportSettings:
    """Read from the environment on first use (tests call `settings.cache_clear()`)."""
    return LaneReportSettings()  # filled from the environment


@lru_cache(maxsize=1)
def lane_reports() -> S3LaneReports:
    """The report store, built on first use (tests call `lane_reports.cache_clear()`)."""
    return S3LaneReports(aws_client("s3"), settings().model_bucket_name)


def caller_seller() -> str | None:
    """The seller a JWT caller is scoped to, if its token names one (IAM callers are unscoped)."""
    return authorized(app.current_event.raw_event).first_claim((settings().seller_claim,))


# The views are the published report's own JSON (README § Lane reliability), passed through.
_RESPONSES: dict[int, OpenAPIResponse] = {
    200: documented("The lane report's view: areas, lanes, carriers, each with its sample", dict[str, Any]),
    **ERROR_RESPONSES,
    404: documented("No report published yet, or no such seller in it"),
}


@app.get(
    "/v1/lanes",
    summary="The marketplace's lane report (a seller-scoped token gets its seller's lanes)",
    responses=_RESPONSES,
)
def marketplace() -> dict[str, Any]:
    return marketplace_view(lane_reports(), caller_seller())


@app.get(
    "/v1/lanes/sellers/<seller_id>",
    summary="One seller's lanes beside the marketplace's",
    responses=_RESPONSES,
)
def seller(seller_id: Annotated[str, Path(min_length=1, max_length=MAX_SELLER_ID)]) -> dict[str, Any]:
    # Documented as a bound (so a client, and the contract fuzzing, know it); checked here, as this
    # resolver does not validate requests against its document.
    if not 0 < len(seller_id) <= MAX_SELLER_ID:
        raise InvalidInputError("seller_id must be 1 to 128 characters")
    return seller_view(lane_reports(), seller_id, caller_seller())


install_error_handlers(app, "lane report")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
