"""S3: the model bucket, where trained artifacts live under ``<kind>/<version>/<file>``.

Versions are immutable: every file is written with ``If-None-Match: *``, so a second upload of a
version can only succeed if it carries the same bytes (compared by the SHA-256 kept in the
object's metadata). Errors surface as registry errors, never as ClientError.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from dozor.domain.registry import ArtifactConflictError, RegistryUnavailableError, UnknownVersionError

# The booster first, metadata last: a version counts as published once its metadata is there.
ARTIFACT_FILES = ("model.ubj", "metadata.json")
_MISSING = {"404", "NoSuchKey", "NotFound"}


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class S3ModelArtifacts:
    """Model artifacts of one kind (``fraud``) in one bucket."""

    def __init__(self, client: Any, bucket: str, kind: str = "fraud") -> None:
        self._client = client
        self._bucket = bucket
        self._kind = kind

    def key(self, version: str, name: str) -> str:
        return f"{self._kind}/{version}/{name}"

    def upload(self, version: str, directory: Path) -> bool:
        """Upload an artifact directory under `version`; False when the same artifact was already there."""
        uploaded = False
        for name in ARTIFACT_FILES:
            body = (directory / name).read_bytes()
            digest = hashlib.sha256(body).hexdigest()
            try:
                self._client.put_object(
                    Bucket=self._bucket,
                    Key=self.key(version, name),
                    Body=body,
                    IfNoneMatch="*",
                    Metadata={"sha256": digest},
                )
                uploaded = True
            except ClientError as error:
                if _code(error) not in {"PreconditionFailed", "412"}:
                    raise RegistryUnavailableError(f"cannot upload {version}/{name}: {error}") from error
                if self._stored_digest(version, name) != digest:
                    raise ArtifactConflictError(
                        f"{version}/{name} already exists with different content; "
                        "versions are immutable, publish under a new version"
                    ) from error
        return uploaded

    def exists(self, version: str) -> bool:
        try:
            self._client.head_object(Bucket=self._bucket, Key=self.key(version, ARTIFACT_FILES[-1]))
        except ClientError as error:
            if _code(error) in _MISSING:
                return False
            raise RegistryUnavailableError(f"cannot read {version}: {error}") from error
        return True

    def download(self, version: str, directory: Path) -> Path:
        """The artifact's files in `directory`, each written whole or not at all (no half models)."""
        directory.mkdir(parents=True, exist_ok=True)
        for name in ARTIFACT_FILES:
            try:
                response = self._client.get_object(Bucket=self._bucket, Key=self.key(version, name))
                body = response["Body"].read()
            except ClientError as error:
                if _code(error) in _MISSING:
                    raise UnknownVersionError(f"no model {version} in s3://{self._bucket}") from error
                raise RegistryUnavailableError(f"cannot download {version}/{name}: {error}") from error
            handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{name}.")
            with os.fdopen(handle, "wb") as out:
                out.write(body)
            Path(temporary).replace(directory / name)
        return directory

    def versions(self) -> list[str]:
        """Every version with an artifact in the bucket, in name order."""
        found: list[str] = []
        try:
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self._bucket, Prefix=f"{self._kind}/", Delimiter="/"):
                found += [p["Prefix"].split("/")[1] for p in page.get("CommonPrefixes", [])]
        except ClientError as error:
            raise RegistryUnavailableError(f"cannot list s3://{self._bucket}: {error}") from error
        return sorted(found)

    def _stored_digest(self, version: str, name: str) -> str | None:
        try:
            head = self._client.head_object(Bucket=self._bucket, Key=self.key(version, name))
        except ClientError as error:
            raise RegistryUnavailableError(f"cannot read {version}/{name}: {error}") from error
        digest: str | None = head.get("Metadata", {}).get("sha256")
        return digest
