"""SSM Parameter Store: the pointers naming which model version is active and which one shadows.

Reads go through powertools parameters with a cache (``max_age``), so a function asks SSM at most
once per refresh interval and picks up a newly published version within that interval, with no
redeploy. Writes keep SSM's own parameter history, which is the registry's history.
"""

from __future__ import annotations

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

    def has(self, role: ModelRole) -> bool:
        return role in self._names

    def name(self, role: ModelRole) -> str:
        try:
            return self._names[role]
        except KeyError:
            raise NotFoundError(f"no parameter configured for the {role} model") from None

    def read(self, role: ModelRole) -> str:
        """The version the role points at (cached for `max_age` seconds)."""
        try:
            value = self._provider.get(self.name(role), max_age=self._max_age)
        except GetParameterError as error:  # powertools wraps every failure of the read in it
            raise StoreUnavailableError(f"cannot read the {role} model parameter: {error}") from error
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
