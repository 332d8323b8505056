"""A local API Gateway HTTP API: HTTP requests in, payload-format-2.0 Lambda events out.

Routes come from the template's `HttpApi` events (`POST /v1/orders/score`,
`GET /v1/orders/{order_id}/decision`, `{proxy+}`, `ANY`, `$default`). A request becomes the
event API Gateway builds (headers lower-cased and repeated ones comma-joined, cookies split
out, query strings, path parameters, request context, base64 body for non-text content) and
the function's answer goes back the way API Gateway maps it: a dict with `statusCode` is a
proxy response (headers, cookies as Set-Cookie, base64 bodies), anything else is a 200 with
the JSON of the value. No route: 404 `{"message":"Not Found"}`; the function raised, timed
out or answered nonsense: 500 `{"message":"Internal Server Error"}`. Routes the template
authorizes (AWS IAM, JWT) are checked before the function is invoked (`dozor_local.auth`).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from dozor_local.auth import UNAUTHORIZED, Authorization, SigV4Verifier
from dozor_local.invoke import Invocation

Invoke = Callable[[str, dict[str, Any]], Invocation]  # (function logical id, event) -> invocation

_TEXT_SUBTYPES = ("json", "xml", "javascript", "x-www-form-urlencoded", "yaml")
# Headers HTTP/1.1 lets a server fold; API Gateway joins repeated ones with commas.
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade"}


@dataclass(frozen=True)
class Route:
    """One route of the HTTP API: `METHOD /path/{param}` (or `$default`) to a function."""

    method: str  # GET, POST, ..., or ANY
    path: str  # the template's path, or "$default"
    function: str  # logical id
    pattern: re.Pattern[str] = field(compare=False, repr=False, default=re.compile(""))
    authorization: Authorization = "NONE"

    @classmethod
    def of(cls, method: str, path: str, function: str, authorization: Authorization = "NONE") -> Route:
        return cls(method.upper(), path, function, _path_pattern(path), authorization)

    @property
    def key(self) -> str:
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"

    @property
    def specificity(self) -> tuple[int, int, int, int]:
        """API Gateway's precedence: exact paths, then variables, greedy last; ANY after a method."""
        greedy = int("+}" in self.path)
        variables = self.path.count("{")
        return (int(self.path == "$default"), greedy, variables, int(self.method == "ANY"))


def _path_pattern(path: str) -> re.Pattern[str]:
    if path == "$default":
        return re.compile(r"^/.*$")
    regex = ""
    for part in re.split(r"(\{[^}]+\})", path):
        if part.startswith("{") and part.endswith("+}"):
            regex += f"(?P<{_group(part[1:-2])}>.+)"
        elif part.startswith("{"):
            regex += f"(?P<{_group(part[1:-1])}>[^/]+)"
        else:
            regex += re.escape(part)
    return re.compile(f"^{regex}$")


def _group(name: str) -> str:
    # Regex group names must be identifiers; keep the real name recoverable from the route.
    return "p_" + "".join(c if c.isalnum() else f"_{ord(c)}_" for c in name)


def _param_name(group: str) -> str:
    return re.sub(r"_(\d+)_", lambda m: chr(int(m.group(1))), group[2:])


def routes_from(
    functions: Mapping[str, Sequence[Any]], authorization: Mapping[str, Authorization] | None = None
) -> list[Route]:
    """The routes of every HttpApi event, from {logical id: events} (FunctionSpec.events), each
    with the authorization {route key: AWS_IAM | JWT | NONE} gives it (none: open)."""
    routes = []
    for logical_id, events in functions.items():
        for event in events:
            if event.type != "HttpApi":
                continue
            path = event.path or "$default"
            route = Route.of(event.method or "ANY", path, logical_id)
            routes.append(
                Route.of(route.method, path, logical_id, (authorization or {}).get(route.key, "NONE"))
            )
    return sorted(routes, key=lambda r: r.specificity)


def match(routes: Sequence[Route], method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The route API Gateway would pick for the request, with its path parameters (URL-decoded)."""
    for route in routes:
        if route.method not in {"ANY", method.upper()}:
            continue
        found = route.pattern.match(path)
        if found:
            return route, {_param_name(k): unquote(v) for k, v in found.groupdict().items()}
    return None


def is_text(content_type: str | None) -> bool:
    """Whether API Gateway passes a body of this type through as text (otherwise it base64-encodes)."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    main, _, sub = media.partition("/")
    return main == "text" or any(sub == s or sub.endswith("+" + s) for s in _TEXT_SUBTYPES)


@dataclass(frozen=True)
class ApiContext:
    """What the request context says about the API: account, API id, domain, stage."""

    account_id: str
    api_id: str
    region: str

    @property
    def domain_name(self) -> str:
        return f"{self.api_id}.execute-api.{self.region}.amazonaws.com"


def build_event(
    api: ApiContext,
    route: Route,
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    source_ip: str,
    path_parameters: Mapping[str, str],
    now: datetime | None = None,
) -> dict[str, Any]:
    """The payload-format-2.0 event API Gateway HTTP API sends for this request."""
    now = now or datetime.now(UTC)
    joined, cookies = _joined_headers(headers)
    joined.setdefault("x-forwarded-for", source_ip)
    joined.setdefault("x-forwarded-proto", "http")
    joined["x-amzn-trace-id"] = f"Root=1-{int(now.timestamp()):08x}-{secrets.token_hex(12)}"
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = joined
    if raw_query:
        event["queryStringParameters"] = _joined_query(raw_query)
    event["requestContext"] = {
        "accountId": api.account_id,
        "apiId": api.api_id,
        "domainName": api.domain_name,
        "domainPrefix": api.api_id,
        "http": {
            "method": method.upper(),
            "path": raw_path,
            "protocol": "HTTP/1.1",
            "sourceIp": source_ip,
            "userAgent": joined.get("user-agent", ""),
        },
        "requestId": base64.b64encode(secrets.token_bytes(10)).decode().rstrip("=") + "=",
        "routeKey": route.key,
        "stage": "$default",
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now.timestamp() * 1000),
    }
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    event.update(_body_fields(body, joined.get("content-type")))
    return event


def _joined_headers(headers: Sequence[tuple[str, str]]) -> tuple[dict[str, str], list[str]]:
    """Headers lower-cased, repeats joined with commas, hop-by-hop dropped; cookies apart."""
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        lower = name.lower()
        if lower == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
        elif lower not in _HOP_BY_HOP:
            joined[lower] = f"{joined[lower]},{value}" if lower in joined else value
    return joined, cookies


def _joined_query(raw_query: str) -> dict[str, str]:
    """Query parameters, a repeated one's values joined with commas (payload format 2.0)."""
    query: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    return query


def _body_fields(body: bytes, content_type: str | None) -> dict[str, Any]:
    """`body` (text, or base64 for binary types) and `isBase64Encoded`; no body, only the flag."""
    if not body:
        return {"isBase64Encoded": False}
    if is_text(content_type):
        return {"body": body.decode("utf-8", errors="replace"), "isBase64Encoded": False}
    return {"body": base64.b64encode(body).decode(), "isBase64Encoded": True}


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


_NOT_FOUND = HttpResponse(404, [("content-type", "application/json")], b'{"message":"Not Found"}')
_INTERNAL_ERROR = HttpResponse(
    500, [("content-type", "application/json")], b'{"message":"Internal Server Error"}'
)


def map_response(invocation: Invocation) -> HttpResponse:
    """The HTTP response API Gateway makes of a function's answer (payload format 2.0)."""
    if not invocation.ok:
        return _INTERNAL_ERROR
    result = invocation.result
    if not isinstance(result, dict) or "statusCode" not in result:
        # No statusCode: API Gateway assumes 200, JSON, and the whole answer as the body.
        return HttpResponse(200, [("content-type", "application/json")], json.dumps(result).encode())
    try:
        status = int(result["statusCode"])
        headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers += [(str(name), str(v)) for v in values]
        headers += [("set-cookie", str(c)) for c in result.get("cookies") or []]
        raw = result.get("body")
        text = raw if isinstance(raw, str) else ("" if raw is None else json.dumps(raw))
        body = base64.b64decode(text, validate=True) if result.get("isBase64Encoded") else text.encode()
    except (TypeError, ValueError, binascii.Error):
        return _INTERNAL_ERROR
    if not 100 <= status <= 599:
        return _INTERNAL_ERROR
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("content-type", "application/json"))
    return HttpResponse(status, headers, body)


class LatencyLog:
    """Wall time of every request the gateway served (ms), for p50 / p99."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.samples: list[float] = []

    def add(self, ms: float) -> None:
        with self._lock:
            self.samples.append(ms)

    def snapshot(self) -> list[float]:
        with self._lock:
            return list(self.samples)


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer with a listen backlog a burst of checkout calls fits in (the default 5
    reset clients when 20 connected at once)."""

    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away (a browser closing its kept-alive connection) is no error of
        # ours; anything else is printed with its traceback, as socketserver does.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class ApiGateway:
    """The HTTP API on host:port, invoking functions through `invoke` (port 0: a free one)."""

    def __init__(
        self,
        routes: Sequence[Route],
        invoke: Invoke,
        api: ApiContext,
        *,
        host: str = "127.0.0.1",
        port: int = 3000,
        max_body_bytes: int = 10 * 1024 * 1024,  # API Gateway's payload limit
        verifier: SigV4Verifier | None = None,
    ) -> None:
        self.routes = list(routes)
        self.invoke = invoke
        self.api = api
        self.verifier = verifier or SigV4Verifier(api.region)
        self.latency = LatencyLog()
        self.max_body_bytes = max_body_bytes
        self._server = _Server((host, port), _handler_class(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> ApiGateway:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="api-gateway", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def handle(
        self, method: str, target: str, headers: Sequence[tuple[str, str]], body: bytes, ip: str
    ) -> HttpResponse:
        """One request through the API: route, event, function, response."""
        split = urlsplit(target)
        found = match(self.routes, method, split.path)
        if found is None:
            return _NOT_FOUND
        route, params = found
        denied = self._authorize(route, method, target, headers, body)
        if denied is not None:
            return denied
        event = build_event(
            self.api,
            route,
            method=method,
            raw_path=unquote(split.path),  # API Gateway hands the function the decoded path
            raw_query=split.query,
            headers=headers,
            body=body,
            source_ip=ip,
            path_parameters=params,
        )
        authorizer = authorizer_context(route.authorization, headers, self.api.account_id)
        if authorizer:
            event["requestContext"]["authorizer"] = authorizer
        return map_response(self.invoke(route.function, event))

    def _authorize(
        self, route: Route, method: str, target: str, headers: Sequence[tuple[str, str]], body: bytes
    ) -> HttpResponse | None:
        """API Gateway's answer when the route's authorization refuses the request, else None."""
        if route.authorization == "AWS_IAM":
            denied = self.verifier.check(method, target, headers, body)
        elif route.authorization == "JWT":
            bearer = any(n.lower() == "authorization" and v.startswith("Bearer ") for n, v in headers)
            denied = None if bearer else UNAUTHORIZED
        else:
            return None
        if denied is None:
            return None
        return HttpResponse(denied.status, [("content-type", "application/json")], denied.body)


def authorizer_context(
    authorization: Authorization, headers: Sequence[tuple[str, str]], account_id: str
) -> dict[str, Any]:
    """`requestContext.authorizer` as API Gateway fills it for an authorized request: the IAM
    caller, or the JWT's claims (read, not verified: the local stack has no issuer)."""
    value = next((v for n, v in headers if n.lower() == "authorization"), "")
    if authorization == "AWS_IAM":
        key = value.partition("Credential=")[2].split("/", 1)[0]
        return {
            "iam": {
                "accessKey": key,
                "accountId": account_id,
                "callerId": key,
                "cognitoIdentity": None,
                "principalOrgId": None,
                "userArn": f"arn:aws:iam::{account_id}:user/{key}",
                "userId": key,
            }
        }
    if authorization == "JWT":
        token = value.removeprefix("Bearer ").split(".")
        try:
            claims = json.loads(base64.urlsafe_b64decode(token[1] + "=" * (-len(token[1]) % 4)))
        except (IndexError, ValueError):
            claims = {}
        return {"jwt": {"claims": claims if isinstance(claims, dict) else {}, "scopes": None}}
    return {}


def _handler_class(gateway: ApiGateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "dozor-local-apigw"

        def setup(self) -> None:
            super().setup()
            # Headers and body leave in separate writes; with Nagle on, the client's delayed ACK
            # holds the body back ~40 ms on every keep-alive request.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _serve(self) -> None:
            started = time.perf_counter()
            length = int(self.headers.get("content-length") or 0)
            if length > gateway.max_body_bytes:
                response = HttpResponse(
                    413, [("content-type", "application/json")], b'{"message":"Request Entity Too Large"}'
                )
                self.close_connection = True
            else:
                body = self.rfile.read(length) if length else b""
                response = gateway.handle(
                    self.command, self.path, list(self.headers.items()), body, self.client_address[0]
                )
            self.send_response(response.status)
            for name, value in response.headers:
                if name.lower() not in {"content-length", *_HOP_BY_HOP}:
                    self.send_header(name, value)
            self.send_header("content-length", str(len(response.body)))
            self.send_header("apigw-requestid", str(uuid.uuid4())[:18])
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
            gateway.latency.add((time.perf_counter() - started) * 1000)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the access log would drown the console; latencies are kept in gateway.latency

    return Handler
