"""SSM Parameter Store: the pointers naming which model version is active and which one shadows.

Reads are cached for ``max_age``, so a function asks SSM at most once per refresh interval and
picks up a newly published version within that interval, with no redeploy. Writes keep SSM's own
parameter history, which is the registry's history. The cache is this class's own two dicts, not
powertools' parameters utility: that package imports every provider it has (AppConfig, DynamoDB,
Secrets Manager) with any one of them, on every cold start of the scoring function.

Checkout reads inside its latency budget: a read that would call SSM (the cached value is stale)
is made only when ``fits()`` says the call's worst case still leaves the decision what it needs;
otherwise it fails at once, like an unreachable SSM, and the registry keeps the models it has.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from dozor.adapters.aws_errors import SSM, translated
from dozor.domain.errors import DozorError, NotFoundError, StoreUnavailableError
from dozor.domain.fraud.registry import ModelRole, PointerChange


class SsmModelPointers:
    """The active and (optional) shadow pointers, one String parameter each."""

    def __init__(
        self, client: Any, active_parameter: str, shadow_parameter: str | None, max_age: int
    ) -> None:
        self._client = client
        self._names = {ModelRole.ACTIVE: active_parameter}
        if shadow_parameter:
            self._names[ModelRole.SHADOW] = shadow_parameter
        self._max_age = max_age
        # What each role last read, and when it was fetched (taken before the call, so a value
        # goes stale no later than max_age after SSM gave it: while fresh, a read costs no call).
        self._values: dict[ModelRole, str] = {}
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
        if self.fresh(role):
            return self._values[role]
        if fits is not None and not fits():
            raise StoreUnavailableError(f"no time left in the decision budget to read the {role} pointer")
        name = self.name(role)
        started = time.monotonic()
        try:
            with translated(SSM, f"cannot read the {role} model parameter"):
                value = str(self._client.get_parameter(Name=name)["Parameter"]["Value"]).strip()
        except DozorError as error:  # missing or refused alike: the registry keeps the models it has
            raise StoreUnavailableError(str(error)) from error
        self._values[role], self._fetched_at[role] = value, started
        return value

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
