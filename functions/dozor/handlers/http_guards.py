"""Checks on a request body before anything parses it: size in bytes, media type, nesting depth.

Each is answered with the one error body (`http_errors`) instead of reaching a parser that would
fail on it with a 500: a body of 200 KB of emoji is 800 KB of UTF-8, `multipart/form-data`
without a boundary cannot be split, and JSON nested a thousand levels deep exhausts the stack.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from dozor.handlers.http_errors import FieldError, proxy_error

# An order is nested 3 levels deep (order → items → item); nothing legitimate comes near this.
MAX_JSON_DEPTH = 32
# A string runs to its closing quote, or to the end of an unterminated text: it always matches
# where it starts, so the scan stays linear whatever the body holds.
_STRING = re.compile(r'"(?:[^"\\]|\\.?)*+(?:"|\Z)', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


def body_bytes(event: dict[str, Any]) -> bytes:
    """The body as the client sent it, in bytes (API Gateway base64-encodes non-text bodies)."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return body.encode()
    return str(body).encode("utf-8", errors="surrogatepass")


def media_type(event: dict[str, Any]) -> str:
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def is_json(media: str) -> bool:
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in a JSON text (strings skipped), without parsing it."""
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRING.sub('""', text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def unreadable_body(event: dict[str, Any], max_bytes: int) -> dict[str, Any] | None:
    """The error answer for a body that must not reach the parser, or None when it may."""
    raw = body_bytes(event)
    if not raw:
        return None
    if len(raw) > max_bytes:
        return proxy_error(
            413, "payload_too_large", f"body of {len(raw)} bytes exceeds the {max_bytes} byte limit"
        )
    media = media_type(event)
    if media and not is_json(media):
        return proxy_error(415, "unsupported_media_type", f"send the body as application/json, not {media}")
    if json_depth(raw.decode("utf-8", errors="replace")) > MAX_JSON_DEPTH:
        field = FieldError(
            field="body", message=f"nested deeper than {MAX_JSON_DEPTH} levels", type="json_depth"
        )
        return proxy_error(422, "invalid_request", "the request is invalid", [field])
    return None
