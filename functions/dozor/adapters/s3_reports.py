"""S3: reports in the model bucket, the lane report under ``reports/lanes/``.

    reports/lanes/latest.json                          the marketplace report the API serves
    reports/lanes/<generation>/marketplace.json        the same, kept per publication
    reports/lanes/<generation>/sellers/<seller>.json   each seller's own view of that publication

The seller views are written first and ``latest.json`` last, so the API never points at a
generation whose views are not all there. Errors surface as domain errors, never as ClientError.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from dozor.adapters.aws_errors import S3, translated
from dozor.domain.errors import InvalidInputError, NotFoundError
from dozor.domain.parcels.lane_report import GENERATION

LANES_PREFIX = "reports/lanes/"
LATEST = "latest.json"


def seller_key(generation: str, seller_id: str) -> str:
    return f"{LANES_PREFIX}{generation}/sellers/{quote(seller_id, safe='')}.json"


class S3LaneReports:
    """The lane report documents in one bucket."""

    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def publish(
        self, marketplace: Mapping[str, Any], sellers: Mapping[str, Mapping[str, Any]], generation: str
    ) -> list[str]:
        """Write one generation: every seller's view, the marketplace's, then point latest.json at it."""
        document = {**marketplace, GENERATION: generation}
        keys = [seller_key(generation, s) for s in sellers]
        for key, view in zip(keys, sellers.values(), strict=True):
            self._put(key, view)
        for key in (f"{LANES_PREFIX}{generation}/marketplace.json", LANES_PREFIX + LATEST):
            self._put(key, document)
            keys.append(key)
        return keys

    def latest(self) -> Mapping[str, Any]:
        try:
            return self._get(LANES_PREFIX + LATEST)
        except NotFoundError as error:
            raise NotFoundError("no lane report has been published") from error

    def seller(self, generation: str, seller_id: str) -> Mapping[str, Any]:
        try:
            return self._get(seller_key(generation, seller_id))
        except NotFoundError as error:
            raise NotFoundError(f"no lane report for seller {seller_id}") from error

    def _put(self, key: str, document: Mapping[str, Any]) -> None:
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        with translated(S3, f"cannot write s3://{self._bucket}/{key}"):
            self._client.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType="application/json")

    def _get(self, key: str) -> Mapping[str, Any]:
        with translated(S3, f"cannot read s3://{self._bucket}/{key}"):
            body = self._client.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        try:
            document = json.loads(body)
        except ValueError as error:
            raise InvalidInputError(f"s3://{self._bucket}/{key} is not JSON") from error
        if not isinstance(document, dict):
            raise InvalidInputError(f"s3://{self._bucket}/{key} is not a JSON object")
        return document
