"""Who is asking: the principal API Gateway authorized, as the console records it on every change."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Claims that name a person rather than a client, most readable first.
_PERSON_CLAIMS = ("username", "cognito:username", "email", "sub")


def actor(event: Mapping[str, Any]) -> str:
    """The IAM caller's ARN (with its session name) or the JWT's user, from `requestContext.authorizer`.

    Never taken from the request body: what an audit trail records must be what the gateway checked.
    """
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    arn = str((authorizer.get("iam") or {}).get("userArn") or "")
    if arn:
        return arn
    claims = (authorizer.get("jwt") or {}).get("claims") or {}
    for claim in _PERSON_CLAIMS:
        if claims.get(claim):
            return f"jwt:{claims[claim]}"
    return "unknown"
