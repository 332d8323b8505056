"""S3: the model bucket, where trained artifacts live under ``<kind>/<version>/<file>``.

Versions are immutable: every file is written with ``If-None-Match: *``, so a second upload of a
version can only succeed if it carries the same bytes (compared by the SHA-256 kept in the
object's metadata). Errors surface as domain errors, never as ClientError.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from dozor.adapters.aws_errors import S3, translated
from dozor.domain.errors import ArtifactConflictError, ConflictError, NotFoundError, UnknownVersionError

# The booster and the evaluator's arrays first, metadata last: a version counts as published
# once its metadata is there.
ARTIFACT_FILES = ("model.ubj", "trees.npz", "metadata.json")


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
                with translated(S3, f"cannot upload {version}/{name}"):
                    self._client.put_object(
                        Bucket=self._bucket,
                        Key=self.key(version, name),
                        Body=body,
                        IfNoneMatch="*",
                        Metadata={"sha256": digest},
                    )
                uploaded = True
            except ConflictError as error:  # already there: fine only if it is the same bytes
                if self._stored_digest(version, name) != digest:
                    raise ArtifactConflictError(
                        f"{version}/{name} already exists with different content; "
                        "versions are immutable, publish under a new version"
                    ) from error
        return uploaded

    def exists(self, version: str) -> bool:
        try:
            with translated(S3, f"cannot read {version}"):
                self._client.head_object(Bucket=self._bucket, Key=self.key(version, ARTIFACT_FILES[-1]))
        except NotFoundError:
            return False
        return True

    def download(self, version: str, directory: Path) -> Path:
        """The artifact's files in `directory`, each written whole or not at all (no half models)."""
        directory.mkdir(parents=True, exist_ok=True)
        for name in ARTIFACT_FILES:
            try:
                with translated(S3, f"cannot download {version}/{name}"):
                    response = self._client.get_object(Bucket=self._bucket, Key=self.key(version, name))
                    body = response["Body"].read()
            except NotFoundError as error:
                raise UnknownVersionError(f"no model {version} in s3://{self._bucket}") from error
            handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{name}.")
            with os.fdopen(handle, "wb") as out:
                out.write(body)
            Path(temporary).replace(directory / name)
        return directory

    def metadata(self, version: str) -> dict[str, Any]:
        """A published version's metadata.json (training data, thresholds, evaluation), without the model."""
        try:
            with translated(S3, f"cannot read {version}/metadata.json"):
                body = self._client.get_object(Bucket=self._bucket, Key=self.key(version, ARTIFACT_FILES[-1]))
                loaded: dict[str, Any] = json.loads(body["Body"].read())
        except NotFoundError as error:
            raise UnknownVersionError(f"no model {version} in s3://{self._bucket}") from error
        return loaded

    def versions(self) -> list[str]:
        """Every version with an artifact in the bucket, in name order."""
        found: list[str] = []
        with translated(S3, f"cannot list s3://{self._bucket}"):
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self._bucket, Prefix=f"{self._kind}/", Delimiter="/"):
                found += [p["Prefix"].split("/")[1] for p in page.get("CommonPrefixes", [])]
        return sorted(found)

    def _stored_digest(self, version: str, name: str) -> str | None:
        with translated(S3, f"cannot read {version}/{name}"):
            head = self._client.head_object(Bucket=self._bucket, Key=self.key(version, name))
        digest: str | None = head.get("Metadata", {}).get("sha256")
        return digest
