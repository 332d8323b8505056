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

from dozor.handlers.http_errors import ERROR_RESPONSES, ErrorBody, GatewayError, documented

# Claims that name a person rather than a client, most readable first.
_PERSON_CLAIMS = ("username", "cognito:username", "email", "sub")


def _authorizer(event: Mapping[str, Any]) -> Mapping[str, Any]:
    return (event.get("requestContext") or {}).get("authorizer") or {}


def _scopes(jwt: Mapping[str, Any]) -> set[str]:
    """The token's scopes: as API Gateway lists them, and the `scope` claim (space-separated)."""
    listed = {str(s) for s in (jwt.get("scopes") or ())}
    claim = (jwt.get("claims") or {}).get("scope") or ""
    return listed | set(str(claim).split())


def principal(event: Mapping[str, Any], scope: str, seller_claim: str) -> str | None:
    """The IAM caller's ARN or the JWT's user when it may use the console, else None (refuse).

    A JWT must carry `scope` and no `seller_claim` (a merchant's token), and name a user.
    """
    authorizer = _authorizer(event)
    arn = str((authorizer.get("iam") or {}).get("userArn") or "")
    if arn:
        return arn
    jwt = authorizer.get("jwt") or {}
    claims = jwt.get("claims") or {}
    if not claims or claims.get(seller_claim) or scope not in _scopes(jwt):
        return None
    for claim in _PERSON_CLAIMS:
        if claims.get(claim):
            return f"jwt:{claims[claim]}"
    return None


def actor(event: Mapping[str, Any]) -> str:
    """The IAM caller's ARN (with its session name) or the JWT's user, from `requestContext.authorizer`.

    Never taken from the request body: what an audit trail records must be what the gateway checked.
    Only called behind `api.refuse_unauthorized`, which answered 403 to a request without one.
    """
    authorizer = _authorizer(event)
    arn = str((authorizer.get("iam") or {}).get("userArn") or "")
    if arn:
        return arn
    claims = (authorizer.get("jwt") or {}).get("claims") or {}
    for claim in _PERSON_CLAIMS:
        if claims.get(claim):
            return f"jwt:{claims[claim]}"
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
