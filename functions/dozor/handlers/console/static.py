"""The console's page: a handful of files packaged beside the code, served as they are.

Only the files listed here are served (no path from a request ever reaches the file system). The
page holds no data and no secret: everything it shows it fetches from the authorized routes. Its
Content-Security-Policy allows nothing but this origin (no inline script, no CDN), so a value that
slipped into the page could not run or send anything anywhere.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from dozor.handlers.http_errors import not_found_response

CONSOLE_DIR = Path(__file__).resolve().parents[2] / "console"
FILES = {
    "index.html": "text/html; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "sigv4.js": "text/javascript; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = Router()  # type: ignore[no-untyped-call]  # powertools leaves its __init__ untyped


@lru_cache(maxsize=len(FILES))
def _read(name: str) -> str:
    return (CONSOLE_DIR / name).read_text(encoding="utf-8")


def _file(name: str) -> Response[str]:
    if name not in FILES:
        return not_found_response()
    return Response(200, FILES[name], _read(name), headers=dict(SECURITY_HEADERS))


@router.get("/console", include_in_schema=False)
def page() -> Response[str]:
    return _file("index.html")


@router.get("/console/", include_in_schema=False)
def page_slash() -> Response[str]:
    return _file("index.html")


@router.get("/console/config.json", include_in_schema=False)
def config() -> Response[str]:
    """How to sign in: the API's authorization mode and region (public facts, no secret).

    CONSOLE_AUTH follows the template's JwtIssuer switch (AWS_IAM or JWT); the page then asks
    for AWS credentials to sign with, or for a bearer token.
    """
    body = {
        "auth": os.environ.get("CONSOLE_AUTH", "AWS_IAM"),
        "region": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION", ""),
        "service": "execute-api",
    }
    return Response(200, "application/json", json.dumps(body), headers=dict(SECURITY_HEADERS))


@router.get("/console/<name>", include_in_schema=False)
def asset(name: str) -> Response[str]:
    return _file(name)
