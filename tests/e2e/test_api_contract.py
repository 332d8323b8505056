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
    response_schema_conformance,
    status_code_conformance,
)

from dozor_local.auth import sign
from dozor_local.server import LocalServer

pytestmark = pytest.mark.e2e

EXAMPLES = 400  # per scoring operation and generation mode: 2 operations x 2 modes, 1,600 requests
# The console's 11 operations (people, not checkout's hot path): 10 each per mode, 220 requests.
CONSOLE_EXAMPLES = 10
SEED = 20261201
BUDGET_SECONDS = 150
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
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

        @seed(SEED)
        @settings(
            max_examples=CONSOLE_EXAMPLES if operation.path.startswith("/v1/console/") else EXAMPLES,
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
            except Exception as failure:  # every failure is collected, the run goes on
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
    assert elapsed < BUDGET_SECONDS
