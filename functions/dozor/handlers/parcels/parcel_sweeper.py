"""ParcelSweeperFunction: on a schedule, looks at every parcel whose next scan is overdue.

It pages through the sharded due-time index as of the scheduled event's time, re-scores each
parcel with the loss model, opens / resolves alerts, and moves the parcel's next look forward.
Before its time budget runs out it saves a cursor; the next run resumes there.

One bad parcel never stops the sweep: a parcel whose item cannot be read, or whose look fails
for anything about it alone (its data, a bug it reaches, a store call about it), is skipped,
logged with its reason and counted (``ParcelsPoisoned``, ``ParcelsDeferred``; an alarm watches
the first) while the others are judged and alerted. It stays due, so the next sweep tries again.
"""

from dataclasses import asdict
from datetime import timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from dozor.handlers.parcels.wiring import parcel_loss_model, shipment_dependencies
from dozor.handlers.wiring import logger, metrics, tracer


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    scheduled = parse(event=event, model=EventBridgeModel)
    deps = shipment_dependencies()
    report = deps.tracking.sweep(
        scheduled.time,
        parcel_loss_model(),
        lambda: timedelta(milliseconds=context.get_remaining_time_in_millis()),
        page_size=deps.settings.sweep_page_size,
        reserve=timedelta(seconds=deps.settings.sweep_reserve_seconds),
    )
    metrics.add_metric(name="ParcelsSwept", unit=MetricUnit.Count, value=report.looked_at)
    metrics.add_metric(name="ParcelsPoisoned", unit=MetricUnit.Count, value=len(report.poisoned))
    metrics.add_metric(name="ParcelsDeferred", unit=MetricUnit.Count, value=len(report.deferred))
    for parcel_id, reason in report.poisoned.items():
        logger.error("poison parcel skipped", extra={"parcel_id": parcel_id, "reason": reason})
    for parcel_id, reason in report.deferred.items():
        logger.warning("parcel left for the next sweep", extra={"parcel_id": parcel_id, "reason": reason})
    for alert_type, count in report.raised.items():
        metrics.add_metric(
            name=f"Alerts{alert_type.title().replace('_', '')}", unit=MetricUnit.Count, value=count
        )
    logger.info("sweep done", extra=asdict(report))
    return {"as_of": scheduled.time.isoformat(), **asdict(report)}
