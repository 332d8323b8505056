"""The shadow model's disagreement tally of the scoring functions (the console's model page reads it).

Built on first use; without SHADOW_TALLY_TABLE_NAME (local runs without the table, unit tests)
nothing is counted. A tally that cannot be stored is logged and kept for the next flush: it is a
measurement, and must never fail or slow a decision beyond one UpdateItem a minute.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from dozor.adapters.dynamodb.shadow_tally import ShadowTally
from dozor.domain.errors import DozorError
from dozor.handlers.wiring import aws_client, logger
from dozor.settings import ShadowTallySettings


@lru_cache(maxsize=1)
def shadow_tally() -> ShadowTally | None:
    table = ShadowTallySettings().shadow_tally_table_name
    return ShadowTally(aws_client("dynamodb"), table) if table else None


def count_shadow(active_version: str, shadow_version: str, differs: bool) -> None:
    """Count one order both models scored (flushed to the table at most once a minute)."""
    tally = shadow_tally()
    if tally is None:
        return
    try:
        tally.count(active_version, shadow_version, differs, datetime.now(UTC))
    except DozorError as error:
        logger.warning("shadow tally not stored; kept for the next flush", extra={"error": str(error)})
