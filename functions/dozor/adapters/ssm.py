"""SSM Parameter Store: the pointers naming which model version is active and which one shadows.

Reads go through powertools parameters with a cache (``max_age``), so a function asks SSM at most
once per refresh interval and picks up a newly published version within that interval, with no
redeploy. Writes keep SSM's own parameter history, which is the registry's history.

Checkout reads inside its latency budget: a read that would call SSM (the cached value is stale)
is made only when ``fits()`` says the call's worst case still leaves the decision what it needs;
otherwise it fails at once, like an unreachable SSM, and the registry keeps the models it has.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.parameters import SSMProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from dozor.adapters.aws_errors import SSM, translated
from dozor.domain.errors import NotFoundError, StoreUnavailableError
from dozor.domain.fraud.registry import ModelRole, PointerChange


class SsmModelPointers:
    """The active and (optional) shadow pointers, one String parameter each."""

    def __init__(
        self, client: Any, active_parameter: str, shadow_parameter: str | None, max_age: int
    ) -> None:
        self._client = client
        self._provider = SSMProvider(boto3_client=client)
        self._names = {ModelRole.ACTIVE: active_parameter}
        if shadow_parameter:
            self._names[ModelRole.SHADOW] = shadow_parameter
        self._max_age = max_age
        # When each role was last fetched (taken before the call, so it goes stale no later than
        # powertools' copy: while this says fresh, a read costs no call).
        self._fetched_at: dict[ModelRole, float] = {}

    def has(self, role: ModelRole) -> bool:
        return role in self._names

    def name(self, role: ModelRole) -> str:
        try:
            return self._names[role]
        except KeyError:
            raise NotFoundError(f"no parameter configured for the {role} model") from None

    def fresh(self, role: ModelRole) -> bool:
        """Whether a read of the role is answered from the cache, without calling SSM."""
        fetched = self._fetched_at.get(role)
        return fetched is not None and time.monotonic() - fetched < self._max_age

    def read(self, role: ModelRole, fits: Callable[[], bool] | None = None) -> str:
        """The version the role points at (cached for `max_age` seconds).

        ``fits``: whether a call to SSM may be made now (checkout's budget), asked only when the
        cached value is stale; when it says no, `StoreUnavailableError` at once.
        """
        fresh = self.fresh(role)
        if not fresh and fits is not None and not fits():
            raise StoreUnavailableError(f"no time left in the decision budget to read the {role} pointer")
        started = time.monotonic()
        try:
            value = self._provider.get(self.name(role), max_age=self._max_age, force_fetch=not fresh)
        except GetParameterError as error:  # powertools wraps every failure of the read in it
            raise StoreUnavailableError(f"cannot read the {role} model parameter: {error}") from error
        if not fresh:
            self._fetched_at[role] = started
        return str(value).strip()

    def point(self, role: ModelRole, version: str) -> int:
        """Point the role at `version`; returns the parameter's new revision."""
        with translated(SSM, f"cannot set the {role} model parameter"):
            response = self._client.put_parameter(
                Name=self.name(role), Value=version, Type="String", Overwrite=True
            )
        return int(response["Version"])

    def history(self, role: ModelRole) -> list[PointerChange]:
        """Every value the role's parameter has had, oldest first."""
        changes: list[PointerChange] = []
        with translated(SSM, f"cannot read the {role} model history"):
            paginator = self._client.get_paginator("get_parameter_history")
            for page in paginator.paginate(Name=self.name(role)):
                changes += [
                    PointerChange(role, int(p["Version"]), str(p["Value"]), p.get("LastModifiedDate"))
                    for p in page.get("Parameters", [])
                ]
        return sorted(changes, key=lambda c: c.revision)
