"""The published lane report, as the API serves it: the marketplace's figures or one seller's view.

The document is what `dozor lanes report --publish` wrote (`dozor_training.parcels.lanes_report`):
the marketplace report with a ``sellers`` map of each seller's own view. The marketplace view never
carries the map; a seller's view is that seller's entry alone, so no answer holds another
seller's figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from dozor.domain.errors import InvalidInputError, NotFoundError

SELLERS = "sellers"


class LaneReports(Protocol):
    def latest(self) -> Mapping[str, Any]:
        """The last published report document; NotFoundError when none was published."""
        ...


def marketplace_view(document: Mapping[str, Any]) -> dict[str, Any]:
    _check(document)
    return {key: value for key, value in document.items() if key != SELLERS}


def seller_view(document: Mapping[str, Any], seller_id: str) -> dict[str, Any]:
    _check(document)
    view = document.get(SELLERS, {}).get(seller_id)
    if not isinstance(view, Mapping) or view.get("seller_id") != seller_id:
        raise NotFoundError(f"no lane report for seller {seller_id}")
    return dict(view)


def _check(document: Mapping[str, Any]) -> None:
    if document.get("view") != "marketplace" or not isinstance(document.get(SELLERS, {}), Mapping):
        raise InvalidInputError("the stored lane report is not a marketplace lane report")
