"""The local API against its own OpenAPI document, fuzzed with schemathesis: every response to
every generated request (valid and invalid orders, odd ids, both operations) must be documented
(status, media type, body schema) and none may be a 5xx. Requests are SigV4-signed as a checkout in
AWS signs them; a fixed seed and example budget keep the run reproducible and bounded.

Cases come from each operation's hypothesis strategy (schemathesis' Python API): its pytest
loader does not run under pytest 9.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from dozor.domain.contracts import MAX_ORDER_AMOUNT_RUB, RUB_PER_UNIT
from dozor_local.auth import sign
from dozor_local.server import LocalServer

pytestmark = pytest.mark.e2e

EXAMPLES = 300  # per scoring operation and generation mode: 2 operations x 2 modes, 1,200 requests
# The console's 11 operations and the lane report's 2 (people, not checkout's hot path): 10 each
# per mode, 260 requests.
CONSOLE_EXAMPLES = 10
OFF_THE_HOT_PATH = ("/v1/console/", "/v1/lanes")
SEED = 20261201
# The routes held to positive acceptance: the scoring API's. The console's (/v1/console/...) are
# held to every other check; their bodies' either-or rules are not in their schemas yet.
CHECKED_FOR_ACCEPTANCE = "/v1/orders/"
# Instants the document bounds by year only: "no more than a day ahead of now" moves with the
# clock, which no JSON Schema keyword can express (the field's description says it).
CLOCK_BOUND = {"created_at": ("created_at",), "buyer.account_created_at": ("buyer", "account_created_at")}


def ahead_of_now(body: Any) -> set[str]:
    """The clock-bound fields of a request body that are more than a day ahead of now."""
    limit = datetime.now(UTC) + timedelta(days=1)
    found = set()
    for name, path in CLOCK_BOUND.items():
        value: Any = body
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        try:
            instant = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            continue
        if instant is not None and instant.tzinfo is not None and instant > limit:
            found.add(name)
    return found


def over_the_converted_cap(body: Any) -> set[str]:
    """``{"amount"}`` when the order's amount, rounded and converted to roubles, is over the cap:
    the schema bounds the amount by the cap in its cheapest currency only."""
    if not isinstance(body, dict):
        return set()
    amount, rate = body.get("amount"), RUB_PER_UNIT.get(str(body.get("currency")))
    if not isinstance(amount, int | float) or rate is None:
        return set()
    return {"amount"} if round(amount, 2) * rate > MAX_ORDER_AMOUNT_RUB else set()


def valid_data_accepted(ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis' positive_data_acceptance, with the two documented rules the schema cannot
    carry checked instead of waived: a schema-valid order dated more than a day ahead of now, or
    whose amount is over the cap once converted, must be refused with 422 naming that field; no
    other schema-valid request may be refused."""
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    if not positive or not case.path.startswith(CHECKED_FOR_ACCEPTANCE):
        return None
    rules = ahead_of_now(case.body) | over_the_converted_cap(case.body)
    if rules and response.status_code == 422:
        named = {f["field"] for f in response.json()["error"]["fields"]}
        assert named & rules, f"a 422 names {sorted(named)}, not {sorted(rules)}"
        return True
    return positive_data_acceptance(ctx, response, case)


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
    valid_data_accepted,
]


class SigV4(requests.auth.AuthBase):
    """Signs each prepared request for the local API (service execute-api, the stack's region)."""

    def __init__(self, region: str) -> None:
        self.region = region

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        data = body.encode() if isinstance(body, str) else bytes(body) if isinstance(body, bytes) else b""
        request.headers.update(sign(str(request.method), str(request.url), data, region=self.region))
        return request


def fuzz(local: LocalServer, mode: GenerationMode, statuses: Counter[int], failures: list[str]) -> None:
    schema = schemathesis.openapi.from_url(local.api_url + "/v1/openapi.json")
    # The signature is added to each request as it leaves (SigV4 covers the whole request), so
    # the Authorization header is not a parameter to fuzz; unsigned calls: test_local_stack.
    schema.config.generation.update(with_security_parameters=False)
    session = requests.Session()
    session.auth = SigV4(local.stack.region)
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an invalid schema raises here: fine
        if mode is GenerationMode.NEGATIVE and not list(operation.iter_parameters()) and not operation.body:
            continue  # nothing in the request to make invalid (GET /v1/lanes): no negative case exists

        @seed(SEED)
        @settings(
            max_examples=CONSOLE_EXAMPLES if operation.path.startswith(OFF_THE_HOT_PATH) else EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case: Any) -> None:
            response = case.call(base_url=local.api_url, session=session, timeout=30)
            statuses[response.status_code] += 1
            try:
                case.validate_response(response, checks=CHECKS)
            except (Exception, BaseExceptionGroup) as failure:  # every failure is collected
                failures.append(
                    f"{mode.value} {case.method} {case.formatted_path} -> {response.status_code}: {failure}"
                )

        check()


def test_every_response_is_documented_and_none_is_a_server_error(local: LocalServer) -> None:
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    started = time.monotonic()
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        fuzz(local, mode, statuses, failures)
    elapsed = time.monotonic() - started
    figures = f"{statuses.total()} requests in {elapsed:.0f} s, statuses {dict(sorted(statuses.items()))}"
    print(f"\nschemathesis: {figures}")
    assert statuses.total() >= 1_000
    assert [s for s in statuses if s >= 500] == []
    assert failures == [], "\n".join(failures[:10])
    # Bounded by its seeded example counts, not by a wall time a loaded machine would break.
