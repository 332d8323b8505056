"""What API Gateway's authorizer vouched for on a request: ``requestContext.authorizer``.

One reading of it for every HTTP function: the caller throttle counts callers by it, the console
records its actor and checks its scope with it, and the lane report scopes a merchant's token
to its seller by it. In IAM mode the gateway gives the caller's ARN (``iam.userArn``, with the
session name for an assumed role); in JWT mode the token's claims and scopes (``jwt``). An event
no authorizer vouched for (an open route, a test) has neither.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Authorized:
    iam_arn: str  # "" unless IAM mode
    claims: Mapping[str, Any]  # empty unless JWT mode
    scopes: frozenset[str]  # as API Gateway lists them, and the token's `scope` claim
    source_ip: str

    def first_claim(self, names: tuple[str, ...]) -> str | None:
        """The first of `names` the token carries with a value."""
        for name in names:
            if self.claims.get(name):
                return str(self.claims[name])
        return None


def authorized(event: Mapping[str, Any]) -> Authorized:
    context = event.get("requestContext") or {}
    authorizer = context.get("authorizer") or {}
    jwt = authorizer.get("jwt") or {}
    claims = jwt.get("claims") or {}
    scopes = {str(s) for s in (jwt.get("scopes") or ())} | set(str(claims.get("scope") or "").split())
    return Authorized(
        iam_arn=str((authorizer.get("iam") or {}).get("userArn") or ""),
        claims=claims,
        scopes=frozenset(scopes),
        source_ip=str((context.get("http") or {}).get("sourceIp", "unknown")),
    )
