"""ConsoleFunction: the ops console (README § The console) — its page and the routes behind it.

GET /console, /console/, /console/{file}   the single page (HTML, CSS, JS; no data in it), open
                                           like the docs: a browser cannot sign a navigation
/v1/console/...                            reviewers (`reviews`), ops (`alerts`), lists (`lists`),
                                           model (`model`): authorized like every API route, and in
                                           the API's OpenAPI document (`openapi_app`)

Everything the page shows comes from these routes, which read the real tables, queue and topic.
Errors are the one body of `http_errors`; bodies too large, not JSON or too deep are answered
before anything parses them (`http_guards`).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.middleware_factory import lambda_handler_decorator
from aws_lambda_powertools.utilities.typing import LambdaContext

from dozor.handlers.console import alerts, lists, model, reviews, static
from dozor.handlers.console.identity import principal
from dozor.handlers.console.wiring import console_dependencies
from dozor.handlers.http_errors import (
    install_error_handlers,
    proxy_error,
)
from dozor.handlers.http_guards import unreadable_body
from dozor.handlers.wiring import logger, tracer

MAX_BODY_BYTES = 16 * 1024  # a verdict, a note, a list change: a few hundred bytes

app = APIGatewayHttpResolver(enable_validation=True)
for _router in (reviews.router, alerts.router, lists.router, model.router, static.router):
    app.include_router(_router)


def openapi_app() -> APIGatewayHttpResolver:
    """The resolver whose routes the API's OpenAPI document adds to the scoring ones."""
    return app


install_error_handlers(app, "console store")


@lambda_handler_decorator
def reject_unreadable(handler: Any, event: dict[str, Any], context: LambdaContext) -> Any:
    """413 / 415 / 422 before anything parses a body that is too large, not JSON, or too deep."""
    return unreadable_body(event, MAX_BODY_BYTES) or handler(event, context)


@lambda_handler_decorator
def refuse_unauthorized(handler: Any, event: dict[str, Any], context: LambdaContext) -> Any:
    """403 to a /v1/console request without a console principal (`identity.principal`).

    The page's files stay open; its data routes are the console's own, so a JWT the gateway
    admitted for another route (a merchant's) is refused here even if a route scope was missed.
    """
    if not str(event.get("rawPath") or "").startswith("/v1/console"):
        return handler(event, context)
    settings = console_dependencies().settings
    if principal(event, settings.console_scope, settings.seller_claim) is None:
        logger.warning("console request refused: no console principal")
        return proxy_error(403, "forbidden", "this caller may not use the console")
    return handler(event, context)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@refuse_unauthorized
@reject_unreadable
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
