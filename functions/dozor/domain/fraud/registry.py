"""The model registry as the domain sees it: named versions, the roles they serve in, what goes wrong.

A version is an immutable trained artifact (``fraud-20261125-1a2b3c4d``). Two pointers name which
version serves: the *active* model makes every Decision; the *shadow* model, when set, scores the
same orders for comparison and never acts. ``packaged`` names the model shipped inside the code,
``none`` (shadow only) means no shadow. Rolling back is pointing a role at an earlier version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from dozor.domain.errors import ArtifactConflictError, UnknownVersionError
from dozor.domain.fraud.model import FraudModel

PACKAGED = "packaged"
NO_SHADOW = "none"
# Versions become S3 keys and /tmp directory names: nothing that could climb out of either.
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class ModelRole(StrEnum):
    ACTIVE = "active"
    SHADOW = "shadow"


def check_version(version: str, *, publishable: bool = False) -> str:
    """The version, if it is a well-formed name (and, to publish under it, not a reserved word)."""
    if not _VERSION.match(version) or ".." in version:
        raise UnknownVersionError(f"{version!r} is not a model version name")
    if publishable and version in {PACKAGED, NO_SHADOW}:
        raise ArtifactConflictError(f"{version!r} is reserved; an artifact cannot be published under it")
    return version


@dataclass(frozen=True)
class ServingModels:
    """The models a function scores with: the active one decides, the shadow one only watches."""

    active: FraudModel
    shadow: FraudModel | None = None


@dataclass(frozen=True)
class PointerChange:
    """One past value of a role's pointer (the registry's history)."""

    role: ModelRole
    revision: int
    version: str
    changed_at: datetime | None
