"""Console routes for ops: open parcel alerts, a parcel's timeline, acknowledging and resolving.

GET  /v1/console/alerts                                             open alerts, filtered
GET  /v1/console/parcels/{parcel_id}                                scans against the lane's deadlines
POST /v1/console/parcels/{parcel_id}/alerts/{alert_type}/acknowledge  someone is on it (stays open)
POST /v1/console/parcels/{parcel_id}/alerts/{alert_type}/resolve      closed by hand; the topic hears it

No ``from __future__ import annotations``: the resolver reads the signatures at run time.
"""

from datetime import UTC, datetime
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import BaseModel, ConfigDict, Field

from dozor.domain.errors import NotFoundError
from dozor.domain.parcels.alerts import AlertType, Severity
from dozor.domain.parcels.handling import HandledAlert, resolve_by_hand
from dozor.domain.parcels.timeline import Timeline, timeline
from dozor.handlers.console.identity import CONSOLE_RESPONSES, actor
from dozor.handlers.console.wiring import console_dependencies
from dozor.handlers.http_errors import documented

router = Router()  # type: ignore[no-untyped-call]  # powertools leaves its __init__ untyped

ParcelId = Annotated[str, Path(min_length=1, max_length=128)]
Filter = Annotated[str | None, Query(min_length=1, max_length=64)]
PER_TYPE = 200  # newest open alerts read per type before filtering (the filters are in memory)


class AlertsPage(BaseModel):
    alerts: list[HandledAlert]
    truncated: bool = Field(
        description="True when `alerts` may not be every open alert that matches: more than `limit` "
        f"matched (the newest `limit` are shown), or a type has more than {PER_TYPE} open alerts and "
        f"the filters saw only its newest {PER_TYPE}. The page says it shows the first ones; narrow "
        "the filters (by type first) to see the rest"
    )
    carriers: list[str] = Field(description="carriers with open alerts (for the filter)")
    regions: list[str] = Field(description="destination regions with open alerts (for the filter)")


class ParcelView(BaseModel):
    timeline: Timeline
    alerts: list[HandledAlert]


class OpsNote(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Annotated[str, Field(max_length=500)] | None = None


@router.get(
    "/v1/console/alerts",
    summary="Open parcel alerts, newest first, filtered by type, carrier, region and severity",
    responses={200: documented("The open alerts", AlertsPage), **CONSOLE_RESPONSES},
)
def open_alerts(
    type: Annotated[AlertType | None, Query()] = None,
    carrier: Filter = None,
    region: Filter = None,
    severity: Annotated[Severity | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
) -> AlertsPage:
    alerts = console_dependencies().alerts
    found: list[HandledAlert] = []
    cut = False  # a type had more open alerts than were read: a match among them is not seen
    for alert_type in [type] if type else list(AlertType):
        newest = alerts.open_handled(alert_type, PER_TYPE + 1)  # one more, to know there are more
        cut = cut or len(newest) > PER_TYPE
        found += newest[:PER_TYPE]
    chosen = [
        a
        for a in found
        if (carrier is None or a.alert.carrier == carrier)
        and (region is None or a.alert.destination_region == region)
        and (severity is None or a.alert.severity is severity)
    ]
    chosen.sort(key=lambda a: a.alert.raised_at, reverse=True)
    return AlertsPage(
        alerts=chosen[:limit],
        truncated=cut or len(chosen) > limit,
        carriers=sorted({a.alert.carrier for a in found}),
        regions=sorted({a.alert.destination_region for a in found if a.alert.destination_region}),
    )


@router.get(
    "/v1/console/parcels/<parcel_id>",
    summary="A parcel's scans against its lane's deadlines, and its alerts",
    responses={200: documented("The parcel", ParcelView), **CONSOLE_RESPONSES},
)
def parcel(parcel_id: ParcelId) -> ParcelView:
    deps = console_dependencies()
    stored = deps.parcels.load(parcel_id)
    if stored is None:
        raise NotFoundError(f"no parcel {parcel_id}")
    handled = [a for t in AlertType if (a := deps.alerts.handled(parcel_id, t)) is not None]
    return ParcelView(timeline=timeline(stored.parcel, deps.deadlines, datetime.now(UTC)), alerts=handled)


@router.post(
    "/v1/console/parcels/<parcel_id>/alerts/<alert_type>/acknowledge",
    summary="Acknowledge an open alert: someone is on it (it stays open)",
    responses={
        200: documented("The alert", HandledAlert),
        409: documented("The alert is resolved already"),
        **CONSOLE_RESPONSES,
    },
)
def acknowledge(parcel_id: ParcelId, alert_type: AlertType, request: OpsNote) -> HandledAlert:
    deps = console_dependencies()
    by = actor(router.current_event.raw_event)
    return deps.alerts.acknowledge(parcel_id, alert_type, by, request.note, datetime.now(UTC))


@router.post(
    "/v1/console/parcels/<parcel_id>/alerts/<alert_type>/resolve",
    summary="Resolve an open alert by hand; subscribers of the alerts topic are told",
    responses={
        200: documented("The resolved alert", HandledAlert),
        409: documented("The alert is resolved already"),
        **CONSOLE_RESPONSES,
    },
)
def resolve(parcel_id: ParcelId, alert_type: AlertType, request: OpsNote) -> HandledAlert:
    deps = console_dependencies()
    by = actor(router.current_event.raw_event)
    at = datetime.now(UTC)
    return resolve_by_hand(deps.alerts, deps.topic, deps.parcels, parcel_id, alert_type, by, request.note, at)
