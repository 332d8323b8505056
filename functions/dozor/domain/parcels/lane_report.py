"""The published lane report, as the API serves it: the marketplace's figures or one seller's view.

The document is what `dozor lanes report --publish` wrote (`dozor_training.parcels.lanes_report`):
the marketplace report with a ``sellers`` map of each seller's own view. The marketplace view never
carries the map; a seller's view is that seller's entry alone, so no answer holds another
seller's figures.

A caller may be scoped to one seller (a merchant's token naming its seller): it gets that seller's
view and nothing else, neither another seller's view nor the marketplace's (whose thin lanes can
be one other seller's parcels). Refusals read as "not found", so they do not tell which sellers
exist. An unscoped caller (the marketplace's own services) may read every view.
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


def marketplace_view(document: Mapping[str, Any], caller_seller: str | None = None) -> dict[str, Any]:
    if caller_seller is not None:
        raise NotFoundError(
            f"the marketplace's lane report is not for sellers; see /v1/lanes/sellers/{caller_seller}"
        )
    _check(document)
    return {key: value for key, value in document.items() if key != SELLERS}


def seller_view(
    document: Mapping[str, Any], seller_id: str, caller_seller: str | None = None
) -> dict[str, Any]:
    if caller_seller is not None and caller_seller != seller_id:
        raise NotFoundError(f"no lane report for seller {seller_id}")
    _check(document)
    view = document.get(SELLERS, {}).get(seller_id)
    if not isinstance(view, Mapping) or view.get("seller_id") != seller_id:
        raise NotFoundError(f"no lane report for seller {seller_id}")
    return dict(view)


def _check(document: Mapping[str, Any]) -> None:
    if document.get("view") != "marketplace" or not isinstance(document.get(SELLERS, {}), Mapping):
        raise InvalidInputError("the stored lane report is not a marketplace lane report")
