"""The published lane report, as the API serves it: the marketplace's figures or one seller's view.

`dozor lanes report --publish` stores the marketplace report and, beside it, each seller's own view
as a separate document (`dozor_training.parcels.lanes_report`), all of one generation: a request
reads the marketplace document and at most the one seller's view it answers with, so no answer
holds another seller's figures and none depends on how many sellers there are.

A caller may be scoped to one seller (a merchant's token naming its seller): it gets that seller's
view and nothing else, neither another seller's view nor the marketplace's (whose thin lanes can
be one other seller's parcels). Refusals read as "not found", so they do not tell which sellers
exist. An unscoped caller (the marketplace's own services) may read every view.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from dozor.domain.errors import InvalidInputError, NotFoundError

GENERATION = "generation"  # the marketplace document's key naming the generation its views belong to


class LaneReports(Protocol):
    def latest(self) -> Mapping[str, Any]:
        """The last published marketplace document; NotFoundError when none was published."""
        ...

    def seller(self, generation: str, seller_id: str) -> Mapping[str, Any]:
        """One seller's view of a generation; NotFoundError when that seller has none."""
        ...


def marketplace_view(reports: LaneReports, caller_seller: str | None = None) -> dict[str, Any]:
    if caller_seller is not None:
        raise NotFoundError(
            f"the marketplace's lane report is not for sellers; see /v1/lanes/sellers/{caller_seller}"
        )
    return dict(_marketplace(reports))


def seller_view(reports: LaneReports, seller_id: str, caller_seller: str | None = None) -> dict[str, Any]:
    if caller_seller is not None and caller_seller != seller_id:
        raise NotFoundError(f"no lane report for seller {seller_id}")
    document = _marketplace(reports)
    view = reports.seller(str(document[GENERATION]), seller_id)
    if view.get("view") != "seller" or view.get("seller_id") != seller_id:
        raise InvalidInputError(f"the stored lane report of seller {seller_id} is not theirs")
    return dict(view)


def _marketplace(reports: LaneReports) -> Mapping[str, Any]:
    document = reports.latest()
    if document.get("view") != "marketplace" or not isinstance(document.get(GENERATION), str):
        raise InvalidInputError("the stored lane report is not a marketplace lane report")
    return document
