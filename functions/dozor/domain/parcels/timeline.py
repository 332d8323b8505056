"""A parcel's scan timeline against its lane's deadlines, as ops reads it.

Each scan opens a stage (the status it reported) that lasts until the next scan. The lane's
learned norms (`LaneDeadlines`) say when the next scan is normally due after a scan of that stage
and when the parcel counts as stalled; a stage is *late* when its next scan (or, for the stage the
parcel is still in, now) came after the stalled deadline. The deadline ops watches is the current
stage's: the last scan plus the lane's stalled limit for its status. Finished parcels have none.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from dozor.domain.parcels.lanes import LaneDeadlines
from dozor.domain.parcels.shipments import Parcel, ParcelStatus


class Stage(BaseModel):
    """One scan and the silence after it."""

    model_config = ConfigDict(frozen=True)

    status: ParcelStatus
    at: datetime
    country: str | None
    region: str | None
    facility: str | None
    ended_at: datetime | None  # the next scan; None while the parcel is still in this stage
    due_by: datetime | None  # when the lane's next scan is normally due (None once finished)
    stalled_by: datetime | None  # past this, the lane counts the parcel as stalled
    late: bool


class Timeline(BaseModel):
    model_config = ConfigDict(frozen=True)

    parcel_id: str
    order_id: str
    carrier: str
    lane: str
    destination_region: str | None
    status: ParcelStatus
    stages: list[Stage]
    deadline: datetime | None  # the current stage's stalled deadline; None once finished
    now: datetime


def timeline(parcel: Parcel, deadlines: LaneDeadlines, now: datetime) -> Timeline:
    """Every scan of the parcel as a stage, with the lane's due and stalled deadlines after it."""
    stages: list[Stage] = []
    scans = parcel.scans
    for i, scan in enumerate(scans):
        following = scans[i + 1].occurred_at if i + 1 < len(scans) else None
        finished = following is None and parcel.is_terminal
        due_by = stalled_by = None
        if not finished:
            due_by = scan.occurred_at + deadlines.due_after(parcel.lane, scan.status)
            stalled_by = scan.occurred_at + deadlines.stalled_after(parcel.lane, scan.status)
        seen_until = following or now
        stages.append(
            Stage(
                status=scan.status,
                at=scan.occurred_at,
                country=scan.country,
                region=scan.region,
                facility=scan.facility,
                ended_at=following,
                due_by=due_by,
                stalled_by=stalled_by,
                late=stalled_by is not None and seen_until > stalled_by,
            )
        )
    return Timeline(
        parcel_id=parcel.parcel_id,
        order_id=parcel.order_id,
        carrier=parcel.carrier,
        lane=parcel.lane.key(),
        destination_region=parcel.lane.destination_region,
        status=parcel.status,
        stages=stages,
        deadline=None if parcel.is_terminal else stages[-1].stalled_by,
        now=now,
    )
