"""S3: reports in the model bucket, the lane report under ``reports/lanes/``.

``latest.json`` is what the API serves; every publication also keeps a dated copy beside it.
Errors surface as domain errors, never as ClientError.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from dozor.adapters.aws_errors import S3, translated
from dozor.domain.errors import InvalidInputError, NotFoundError

LANES_PREFIX = "reports/lanes/"
LATEST = "latest.json"


class S3LaneReports:
    """The lane report documents in one bucket."""

    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def publish(self, document: Mapping[str, Any], dated: str) -> list[str]:
        """Write the document as ``latest.json`` and as ``<dated>.json``; returns the keys."""
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        keys = [f"{LANES_PREFIX}{dated}.json", f"{LANES_PREFIX}{LATEST}"]
        for key in keys:
            with translated(S3, f"cannot write s3://{self._bucket}/{key}"):
                self._client.put_object(
                    Bucket=self._bucket, Key=key, Body=body, ContentType="application/json"
                )
        return keys

    def latest(self) -> Mapping[str, Any]:
        key = LANES_PREFIX + LATEST
        try:
            with translated(S3, f"cannot read s3://{self._bucket}/{key}"):
                body = self._client.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except NotFoundError as error:
            raise NotFoundError("no lane report has been published") from error
        try:
            document = json.loads(body)
        except ValueError as error:
            raise InvalidInputError(f"s3://{self._bucket}/{key} is not JSON") from error
        if not isinstance(document, dict):
            raise InvalidInputError(f"s3://{self._bucket}/{key} is not a JSON object")
        return document
