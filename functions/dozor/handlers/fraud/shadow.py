"""The shadow model's disagreement tally of the scoring functions (the console's model page reads it).

Built on first use; without SHADOW_TALLY_TABLE_NAME (local runs without the table, unit tests)
nothing is counted. A tally that cannot be stored is logged and kept for the next flush: it is a
measurement, and must never fail or slow a decision beyond one UpdateItem a minute: the flush
runs on the request path, so its client makes one attempt within checkout's side-call cost
(`Budget.side_call_cost`), never the store's usual timeouts and retries.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from dozor.adapters.dynamodb.shadow_tally import ShadowTally
from dozor.domain.budget import Budget
from dozor.domain.errors import DozorError
from dozor.handlers.wiring import aws_client, logger, side_call_config
from dozor.settings import ShadowTallySettings


@lru_cache(maxsize=1)
def shadow_tally() -> ShadowTally | None:
    settings = ShadowTallySettings()
    if not settings.shadow_tally_table_name:
        return None
    budget = Budget(settings.decision_budget_ms / 1000)
    client = aws_client("dynamodb", config=side_call_config(budget))
    return ShadowTally(client, settings.shadow_tally_table_name)


def count_shadow(active_version: str, shadow_version: str, differs: bool) -> None:
    """Count one order both models scored (flushed to the table at most once a minute)."""
    tally = shadow_tally()
    if tally is None:
        return
    try:
        tally.count(active_version, shadow_version, differs, datetime.now(UTC))
    except DozorError as error:
        logger.warning("shadow tally not stored; kept for the next flush", extra={"error": str(error)})
