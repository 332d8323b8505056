"""One reading of `requestContext.authorizer` for every HTTP function (throttle, console, lanes)."""

from __future__ import annotations

from typing import Any

from dozor.handlers.authorizer import authorized


def event(authorizer: dict[str, Any] | None, source_ip: str = "203.0.113.7") -> dict[str, Any]:
    context: dict[str, Any] = {"http": {"sourceIp": source_ip}}
    if authorizer is not None:
        context["authorizer"] = authorizer
    return {"requestContext": context}


def test_iam_mode_gives_the_callers_arn_and_no_claims() -> None:
    arn = "arn:aws:sts::123456789012:assumed-role/checkout/i-0abc"
    caller = authorized(event({"iam": {"userArn": arn, "accountId": "123456789012"}}))
    assert caller.iam_arn == arn
    assert dict(caller.claims) == {}
    assert caller.scopes == frozenset()


def test_jwt_mode_gives_claims_and_the_scopes_listed_and_claimed() -> None:
    jwt = {"claims": {"sub": "u-1", "scope": "dozor/console openid"}, "scopes": ["dozor/lanes"]}
    caller = authorized(event({"jwt": jwt}))
    assert caller.iam_arn == ""
    assert caller.scopes == {"dozor/console", "openid", "dozor/lanes"}
    assert caller.first_claim(("client_id", "sub")) == "u-1"
    assert caller.first_claim(("client_id", "azp")) is None


def test_an_empty_claim_is_no_claim_and_the_next_one_is_taken() -> None:
    caller = authorized(event({"jwt": {"claims": {"client_id": "", "azp": "shop-7"}}}))
    assert caller.first_claim(("client_id", "azp")) == "shop-7"


def test_a_request_no_authorizer_vouched_for_has_only_its_source_address() -> None:
    for raw in (event(None), event({}), event({"iam": None, "jwt": None}), {}):
        caller = authorized(raw)
        assert (caller.iam_arn, dict(caller.claims), caller.scopes) == ("", {}, frozenset())
    assert authorized(event(None)).source_ip == "203.0.113.7"
    assert authorized({}).source_ip == "unknown"
