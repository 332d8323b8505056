"""The API's one OpenAPI document, from every resolver that serves part of the HTTP API.

Each function's resolver documents its own routes (scoring, the console, the lane report);
`GET /v1/openapi.json` serves them as one document: the scoring resolver's, with the others' paths
and components added. Here, outside both features' handlers, because the document is the whole
API's: the fraud handlers may not import the parcels' (lint-imports).
Component names are shared (the error body, the decision): the same model gives the same schema.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver


def merged(first: APIGatewayHttpResolver, *others: APIGatewayHttpResolver) -> str:
    """The document of `first` (info, security) with the paths and components of `others` added."""
    document: dict[str, Any] = json.loads(first.get_openapi_json_schema())
    for other in others:
        part: dict[str, Any] = json.loads(other.get_openapi_json_schema())
        document.setdefault("paths", {}).update(part.get("paths", {}))
        components = document.setdefault("components", {})
        for section, entries in part.get("components", {}).items():
            if section != "securitySchemes":  # the first resolver's schemes cover every route
                components.setdefault(section, {}).update(entries)
    return json.dumps(document)


@cache
def whole_api(scoring: APIGatewayHttpResolver) -> str:
    """The HTTP API's document: the scoring function's, the console's and the lane report's routes.

    Built once per container: the routes cannot change while it lives, and building it (every
    resolver's schema, then JSON both ways) costs 20-35 ms of CPU per call."""
    from dozor.handlers.console.api import openapi_app  # noqa: PLC0415 - only the docs need them
    from dozor.handlers.parcels.lane_report import app as lanes  # noqa: PLC0415

    return merged(scoring, openapi_app(), lanes)


@cache
def swagger_page(document: str) -> str:
    """powertools' Swagger UI page for a document, with the UI's script and styles inlined from
    the files powertools ships (as its enable_swagger does: the page needs no CDN)."""
    from aws_lambda_powertools.event_handler.openapi import swagger_ui  # noqa: PLC0415

    shipped = Path(swagger_ui.__file__).parent
    script = (shipped / "swagger-ui-bundle.min.js").read_text(encoding="utf-8")
    styles = (shipped / "swagger-ui.min.css").read_text(encoding="utf-8")
    # "</" escaped: the document sits inside a <script> element, which a "</script>" would close.
    return swagger_ui.generate_swagger_html(document.replace("</", "<\\/"), script, styles, "", None)
