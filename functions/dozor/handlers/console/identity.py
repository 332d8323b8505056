"""Who is asking: the principal API Gateway authorized, as the console records it on every change.

And whether that principal may use the console at all. In JWT mode the API's one authorizer also
admits merchants' tokens (the lane report's seller claim), so the gateway's route scopes are not
trusted alone: the function refuses a token without the console's scope or with a seller claim,
and any request no authorizer vouched for (README § The console).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from dozor.handlers.authorizer import authorized
from dozor.handlers.http_errors import ERROR_RESPONSES, ErrorBody, GatewayError, documented

# Claims that name a person rather than a client, most readable first.
_PERSON_CLAIMS = ("username", "cognito:username", "email", "sub")


def principal(event: Mapping[str, Any], scope: str, seller_claim: str) -> str | None:
    """The IAM caller's ARN or the JWT's user when it may use the console, else None (refuse).

    A JWT must carry `scope` and no `seller_claim` (a merchant's token), and name a user.
    """
    caller = authorized(event)
    if caller.iam_arn:
        return caller.iam_arn
    if not caller.claims or caller.claims.get(seller_claim) or scope not in caller.scopes:
        return None
    user = caller.first_claim(_PERSON_CLAIMS)
    return f"jwt:{user}" if user else None


def actor(event: Mapping[str, Any]) -> str:
    """The IAM caller's ARN (with its session name) or the JWT's user, from `requestContext.authorizer`.

    Never taken from the request body: what an audit trail records must be what the gateway checked.
    Only called behind `api.refuse_unauthorized`, which answered 403 to a request without one.
    """
    caller = authorized(event)
    if caller.iam_arn:
        return caller.iam_arn
    user = caller.first_claim(_PERSON_CLAIMS)
    if user:
        return f"jwt:{user}"
    raise PermissionError("no authorized principal")  # unreachable behind refuse_unauthorized


# The console routes' error statuses: the API's, and a 403 that is also the function's own.
CONSOLE_RESPONSES: dict[int, OpenAPIResponse] = {
    **ERROR_RESPONSES,
    403: documented(
        "IAM mode: unsigned request or wrong signature (answered by API Gateway, AWS's body); "
        "JWT mode: a token without the console's scope, a merchant's token, or no principal "
        "(answered by Dozor, code `forbidden`)",
        ErrorBody | GatewayError,
    ),
}
