"""Console route for the model: which versions serve, how they were evaluated, how often they disagree.

GET /v1/console/model    the active and shadow versions (the registry's pointers), each with its
                         training data, thresholds and evaluation report (its metadata.json), and
                         the shadow's disagreement rate over the last `hours`

No ``from __future__ import annotations``: the resolver reads the signatures at run time.
"""

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BaseModel, Field

from dozor.domain.fraud.model import PACKAGED_MODEL_DIR
from dozor.domain.fraud.registry import NO_SHADOW, PACKAGED, ModelRole
from dozor.handlers.console.identity import CONSOLE_RESPONSES
from dozor.handlers.console.wiring import ConsoleDependencies, console_dependencies
from dozor.handlers.http_errors import documented

router = Router()  # type: ignore[no-untyped-call]  # powertools leaves its __init__ untyped


class ModelCard(BaseModel):
    role: ModelRole
    pointer: str = Field(description="what the registry names: a version, or `packaged`")
    version: str = Field(description="the trained model's own version (what decisions carry)")
    trained_at: str | None
    thresholds: dict[str, float]
    data: dict[str, Any] = Field(description="what it was trained on: orders, labels, periods, rows")
    report: dict[str, Any] = Field(description="its evaluation on the held-out test period")


class ShadowDisagreement(BaseModel):
    compared: int = Field(description="orders both models scored (as flushed by the scoring functions)")
    differing: int = Field(description="of those, orders the shadow would have decided otherwise")
    rate: float | None
    since: datetime


class ModelPage(BaseModel):
    active: ModelCard
    shadow: ModelCard | None
    disagreement: ShadowDisagreement | None


def _card(deps: ConsoleDependencies, role: ModelRole, version: str) -> ModelCard:
    if version == PACKAGED or deps.artifacts is None:
        metadata: dict[str, Any] = json.loads((PACKAGED_MODEL_DIR / "metadata.json").read_text())
    else:
        metadata = deps.artifacts.metadata(version)
    return ModelCard(
        role=role,
        pointer=version,
        version=str(metadata.get("version", version)),
        trained_at=metadata.get("trained_at"),
        thresholds={k: float(v) for k, v in (metadata.get("thresholds") or {}).items()},
        data=metadata.get("data") or {},
        report=(metadata.get("metrics") or {}).get("test") or {},
    )


@router.get(
    "/v1/console/model",
    summary="The active and shadow model versions, their evaluation, and the shadow's disagreement rate",
    responses={200: documented("The models", ModelPage), **CONSOLE_RESPONSES},
)
def models(hours: Annotated[int, Query(ge=1, le=24 * 90)] = 24) -> ModelPage:
    deps = console_dependencies()
    pointers = deps.pointers
    active = pointers.read(ModelRole.ACTIVE) if pointers else PACKAGED
    shadow = pointers.read(ModelRole.SHADOW) if pointers and pointers.has(ModelRole.SHADOW) else NO_SHADOW
    active_card = _card(deps, ModelRole.ACTIVE, active)
    if shadow == NO_SHADOW:
        return ModelPage(active=active_card, shadow=None, disagreement=None)
    shadow_card = _card(deps, ModelRole.SHADOW, shadow)
    since = datetime.now(UTC) - timedelta(hours=hours)
    found = deps.tally.disagreement(active_card.version, shadow_card.version, since)
    return ModelPage(
        active=active_card,
        shadow=shadow_card,
        disagreement=ShadowDisagreement(
            compared=found.compared, differing=found.differing, rate=found.rate, since=found.since
        ),
    )
