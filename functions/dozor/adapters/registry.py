"""The model registry: S3 holds the immutable artifacts, SSM names the active and shadow versions.

This module composes the two resource adapters (`s3.S3ModelArtifacts`, `ssm.SsmModelPointers`)
and makes no AWS call of its own: publishing is "validate, upload, then point", and serving is
"read the pointers, load what they name once, keep it". Keeping the composition here rather than
in the domain keeps file and download handling out of the domain, and keeps each AWS resource kind
in exactly one module.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aws_lambda_powertools import Logger

from dozor.adapters.s3 import ARTIFACT_FILES, S3ModelArtifacts
from dozor.adapters.ssm import SsmModelPointers
from dozor.domain.errors import DozorError, StoreUnavailableError, UnknownVersionError
from dozor.domain.fraud.model import FraudModel
from dozor.domain.fraud.registry import (
    NO_SHADOW,
    PACKAGED,
    ModelRole,
    PointerChange,
    ServingModels,
    check_version,
)

logger = Logger(child=True)


@dataclass(frozen=True)
class Published:
    """What `publish` did: the version now serving in `role`, and whether its files were uploaded."""

    version: str
    role: ModelRole
    uploaded: bool
    revision: int


@dataclass(frozen=True)
class RegistryStatus:
    active: str
    shadow: str | None  # None when the stack has no shadow parameter
    versions: list[str]


class ModelRegistry:
    """Publishing and rollback, for the `dozor publish` / `dozor registry` commands."""

    def __init__(self, artifacts: S3ModelArtifacts, pointers: SsmModelPointers) -> None:
        self._artifacts = artifacts
        self._pointers = pointers

    def publish(self, directory: Path, role: ModelRole = ModelRole.ACTIVE) -> Published:
        """Validate an artifact directory, upload it (once; versions are immutable) and point `role` at it."""
        model = FraudModel.load(directory)  # ModelMismatchError when its features are not the code's
        version = check_version(model.version, publishable=True)
        uploaded = self._artifacts.upload(version, directory)
        return Published(version, role, uploaded, self._pointers.point(role, version))

    def point(self, version: str, role: ModelRole = ModelRole.ACTIVE) -> Published:
        """Point `role` at a version published before (a rollback), or at the packaged model."""
        if role is ModelRole.SHADOW and version == NO_SHADOW:
            return self.clear_shadow()
        check_version(version)
        if version != PACKAGED:
            with tempfile.TemporaryDirectory(prefix="dozor-model-") as scratch:
                loaded = FraudModel.load(self._artifacts.download(version, Path(scratch)))
            if loaded.version != version:
                raise UnknownVersionError(f"the artifact under {version} says it is {loaded.version}")
        return Published(version, role, False, self._pointers.point(role, version))

    def clear_shadow(self) -> Published:
        """Stop shadowing: the functions score with the active model only."""
        revision = self._pointers.point(ModelRole.SHADOW, NO_SHADOW)
        return Published(NO_SHADOW, ModelRole.SHADOW, False, revision)

    def status(self) -> RegistryStatus:
        shadow = self._pointers.read(ModelRole.SHADOW) if self._pointers.has(ModelRole.SHADOW) else None
        return RegistryStatus(self._pointers.read(ModelRole.ACTIVE), shadow, self._artifacts.versions())

    def history(self) -> list[PointerChange]:
        """Every pointer change of both roles, oldest first."""
        roles = [r for r in ModelRole if self._pointers.has(r)]
        changes = [c for r in roles for c in self._pointers.history(r)]
        return sorted(changes, key=lambda c: (c.changed_at is None, c.changed_at, c.role, c.revision))


class RegistryModelSource:
    """The models a function serves with, following the registry's pointers.

    `current()` is called once per invocation: the pointers come from a cache that SSM refreshes
    every `refresh_seconds`, and a version's files are downloaded to `cache_dir` and loaded once,
    then kept. When the registry cannot be read or a version cannot be loaded, the function keeps
    the models it has (the packaged one at a cold start) and tries again after `refresh_seconds`,
    so an outage costs one slow call per interval, not one per order.

    Checkout passes ``fits`` (may a pointer be read from SSM now, inside its budget): a warm
    container whose budget has no room left keeps its models and refreshes after the interval.
    A cold one reads all the same, bounded by its SSM client's timeouts (`side_call_config`):
    deciding with the model the registry names matters more than the rest of that first budget.
    """

    def __init__(
        self,
        pointers: SsmModelPointers,
        artifacts: S3ModelArtifacts | None,
        packaged: FraudModel,
        cache_dir: Path,
        refresh_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pointers = pointers
        self._artifacts = artifacts
        self._loaded: dict[str, FraudModel] = {PACKAGED: packaged}
        self._current = ServingModels(packaged)
        self._cache_dir = cache_dir
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._retry_at: float | None = None
        self._cold = True

    def current(self, fits: Callable[[], bool] | None = None) -> ServingModels:
        """The active and shadow models to score the next batch with."""
        if self._retry_at is not None and self._clock() < self._retry_at:
            return self._current
        fits = None if self._cold else fits
        try:
            active = self._model(self._pointers.read(ModelRole.ACTIVE, fits))
        except DozorError as error:  # unreachable, unknown, or not this code's features
            return self._keep_current("active", error)
        shadow: FraudModel | None = None
        if self._pointers.has(ModelRole.SHADOW):
            try:
                version = self._pointers.read(ModelRole.SHADOW, fits)
                shadow = None if version == NO_SHADOW else self._model(version)
            except DozorError as error:  # unreachable, unknown, or not this code's features
                # A broken shadow must not hold back the active model: go on without it.
                self._keep_current("shadow", error)
                shadow = None
            else:
                self._retry_at = None
        else:
            self._retry_at = None
        chosen = ServingModels(active, shadow)
        if _versions(chosen) != _versions(self._current) or self._cold:
            logger.info(
                "serving models",
                extra={"model_version": active.version, "shadow_version": shadow.version if shadow else None},
            )
        self._current, self._cold = chosen, False
        return chosen

    def _keep_current(self, role: str, error: Exception) -> ServingModels:
        self._retry_at = self._clock() + self._refresh_seconds
        logger.warning(
            "model registry unusable; keeping the models already loaded",
            extra={
                "role": role,
                "error": str(error),
                "cold_start": self._cold,
                "model_version": self._current.active.version,
                "retry_in_seconds": self._refresh_seconds,
            },
        )
        self._cold = False
        return self._current

    def _model(self, version: str) -> FraudModel:
        if version in self._loaded:
            return self._loaded[version]
        check_version(version)
        if self._artifacts is None:
            raise StoreUnavailableError(f"model {version} is named but no model bucket is configured")
        directory = self._cache_dir / version
        if not all((directory / name).exists() for name in ARTIFACT_FILES):
            self._artifacts.download(version, directory)
        model = FraudModel.load(directory)
        if model.version != version:
            raise UnknownVersionError(f"the artifact under {version} says it is {model.version}")
        self._loaded[version] = model
        return model


def _versions(models: ServingModels) -> tuple[str, str | None]:
    return models.active.version, models.shadow.version if models.shadow else None
