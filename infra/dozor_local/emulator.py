"""The AWS emulator in its own processes: moto's threaded server with Dozor's moto quirks installed.

    python -m dozor_local.emulator 127.0.0.1 0     # prints "ready http://127.0.0.1:<port>"
    python -m dozor_local.emulator 127.0.0.1 0 http://127.0.0.1:<dynamodb port>

Why processes of their own: moto does all of its work in Python under one GIL. Sharing that GIL
with the API gateway, the pollers and the demo's clients made every request wait for the
others; in its own process the emulator gets a core to itself. DynamoDB, most of the emulator's
work (and serialised within it, see `moto_quirks`), gets a second process (`LocalServer` starts
both): the functions reach it directly (`AWS_ENDPOINT_URL_DYNAMODB`), so SQS, SNS and the rest
answer on the other core meanwhile; in the demo that took a third off its wall time. Given the
DynamoDB process's URL, the main one forwards DynamoDB's requests to it (`DynamoDBPeer`), so one
endpoint still serves every service to whoever knows only AWS_ENDPOINT_URL (the AWS CLI, the
tests). Each exits when its stdin closes, so it never outlives the stack that started it.

Connections stay open between requests (`keep_alive_handler`): Werkzeug's development server
closes each one after its response, which cost every botocore call a TCP connect.

It counts what it serves: `GET /_dozor/requests` answers {operation: [requests, CPU ms]} (the
CPU of the thread that served each request; `DELETE` starts the count afresh), which is how
`make bench-gateway` reports AWS requests and emulator CPU per order (the main process adds the
DynamoDB process's count to its own). `?by=caller` answers
{caller: {operation: [requests, CPU ms]}}: a function's workers name themselves in the SDK's
user agent (`AWS_SDK_UA_APP_ID`), and every other client is "client". With
DOZOR_EMULATOR_PROFILE=<file> every request also runs under cProfile, and the merged profile is
written to that file (pstats) at exit or on `POST /_dozor/requests` (the DynamoDB process's to
`<file>.dynamodb`):

    DOZOR_EMULATOR_PROFILE=/tmp/emulator.prof make bench-gateway
    python -c "import pstats; pstats.Stats('/tmp/emulator.prof').sort_stats('tottime').print_stats(30)"

DOZOR_MOTO_QUIRKS=<names> installs only those quirks (comma-separated, "none" for plain moto): to
measure what a quirk saves, or to tell whether a quirk is behind an answer that looks wrong.
"""

from __future__ import annotations

import cProfile
import http.client
import io
import json
import logging
import os
import pstats
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from dozor_local import moto_quirks

PROFILE_ENV = "DOZOR_EMULATOR_PROFILE"
QUIRKS_ENV = "DOZOR_MOTO_QUIRKS"
REQUESTS_PATH = "/_dozor/requests"

WsgiApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


def caller(environ: dict[str, Any]) -> str:
    """Who sent a request: the app id botocore puts in its user agent (`app/<id>`), else "client"."""
    for part in str(environ.get("HTTP_USER_AGENT", "")).split():
        if part.startswith("app/"):
            return part[4:]
    return "client"


def operation(environ: dict[str, Any]) -> str:
    """The AWS operation a request asks for: `service.Operation` from the JSON protocol's target
    (DynamoDB, SQS), the query protocol's Action (SNS), or the method and first path part (S3)."""
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        service, _, action = target.partition(".")
        return f"{service.split('_')[0]}.{action}"
    if str(environ.get("CONTENT_TYPE", "")).startswith("application/x-www-form-urlencoded"):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)  # moto reads it again
        action = parse_qs(body.decode("utf-8", "replace")).get("Action")
        if action:
            return f"query.{action[0]}"
    service = str(environ.get("HTTP_AUTHORIZATION", "")).split("/")[3:4]
    return f"{service[0] if service else 'unsigned'}.{environ.get('REQUEST_METHOD', '?')}"


# What the DynamoDB process serves: DynamoDB's tables and their streams (one backend).
_DYNAMODB_TARGETS = ("DynamoDB_20120810.", "DynamoDBStreams_20120810.")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class DynamoDBPeer:
    """The emulator process that serves DynamoDB: its requests are forwarded there as they came
    (headers, signature and body), and its answers returned as they come back."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self._local = threading.local()  # one kept-alive connection per request thread

    @staticmethod
    def serves(environ: dict[str, Any]) -> bool:
        return str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith(_DYNAMODB_TARGETS)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")}
        headers["Content-Type"] = environ.get("CONTENT_TYPE", "")
        headers.pop("Connection", None)
        status, answer_headers, payload = self._send(environ.get("REQUEST_METHOD", "POST"), headers, body)
        start_response(status, answer_headers)
        return [payload]

    def report(self, method: str, query: str) -> Any:
        """The DynamoDB process's own count (`GET /_dozor/requests`), or its reset and dump."""
        status, _, payload = self._send(method, {}, b"", REQUESTS_PATH + (f"?{query}" if query else ""))
        return json.loads(payload) if status.startswith("200") else {}

    def _send(
        self, method: str, headers: dict[str, str], body: bytes, path: str = "/"
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        try:
            answer = self._exchange(self._connection(), method, path, headers, body)
        except (ConnectionError, http.client.HTTPException):
            # The kept-alive connection was closed under us (the peer closes none itself, so the
            # request was not served): botocore would retry it too; on a new connection.
            answer = self._exchange(self._connection(fresh=True), method, path, headers, body)
        kept = [(k, v) for k, v in answer.getheaders() if k.lower() not in _HOP_BY_HOP]
        return f"{answer.status} {answer.reason}", kept, answer.read()

    @staticmethod
    def _exchange(
        connection: http.client.HTTPConnection, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> http.client.HTTPResponse:
        connection.request(method, path, body=body, headers=headers)
        return connection.getresponse()

    def _connection(self, *, fresh: bool = False) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None or fresh:
            if connection is not None:
                connection.close()
            connection = http.client.HTTPConnection(self.host, self.port, timeout=600)
            self._local.connection = connection
        return connection


class Meter:
    """A WSGI middleware counting requests and their thread CPU per operation (and profiling them)."""

    def __init__(self, app: WsgiApp, profile: bool = False, peer: DynamoDBPeer | None = None) -> None:
        self.app = app
        self.peer = peer
        self.lock = threading.Lock()
        self.served: dict[str, dict[str, list[float]]] = {}  # caller -> operation -> [n, ms]
        self.profile = profile
        self._profilers: list[cProfile.Profile] = []  # one per request thread, merged at the end
        self._local = threading.local()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == REQUESTS_PATH:
            return self._report(environ, start_response)
        if self.peer is not None and self.peer.serves(environ):
            return self.peer(environ, start_response)  # counted (and profiled) where it is served
        name = operation(environ)
        profiler = self._profiler() if self.profile else None
        began = time.thread_time()
        if profiler is not None:
            profiler.enable()
        try:
            # The whole body now, so that its rendering is counted with the request.
            return [b"".join(self.app(environ, start_response))]
        finally:
            if profiler is not None:
                profiler.disable()
            spent = (time.thread_time() - began) * 1000
            with self.lock:
                entry = self.served.setdefault(caller(environ), {}).setdefault(name, [0, 0.0])
                entry[0] += 1
                entry[1] += spent

    def _report(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "POST" and self.profile:  # write the profile now
            self.dump(os.environ[PROFILE_ENV])
        with self.lock:
            if environ.get("REQUEST_METHOD") == "DELETE":  # start counting (and profiling) afresh
                self.served = {}
                self._profilers = []
                self._local = threading.local()
            served = {who: {op: list(entry) for op, entry in ops.items()} for who, ops in self.served.items()}
        query = str(environ.get("QUERY_STRING", ""))
        if self.peer is not None:
            theirs = self.peer.report(str(environ.get("REQUEST_METHOD", "GET")), "by=caller")
            for who, ops in theirs.items():
                for op, (n, ms) in ops.items():
                    entry = served.setdefault(who, {}).setdefault(op, [0, 0.0])
                    entry[0] += n
                    entry[1] += ms
        body = json.dumps(_by_caller(served) if "by=caller" in query else _by_operation(served))
        start_response("200 OK", [("content-type", "application/json")])
        return [body.encode()]

    def _profiler(self) -> cProfile.Profile:
        profiler: cProfile.Profile | None = getattr(self._local, "profiler", None)
        if profiler is None:
            # Thread CPU time, not wall time: a request thread waiting for the GIL (or a long
            # poll waiting for messages) would otherwise charge the wait to whatever it was in.
            profiler = self._local.profiler = cProfile.Profile(time.thread_time)
            with self.lock:
                self._profilers.append(profiler)
        return profiler

    def dump(self, path: str) -> None:
        """The profile of every request so far (since the last DELETE), as one pstats file."""
        with self.lock:
            profilers = list(self._profilers)
        if profilers:
            stats = pstats.Stats(profilers[0])
            for profiler in profilers[1:]:
                stats.add(profiler)
            stats.dump_stats(path)


def _by_caller(served: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, list[float]]]:
    return {who: {op: [int(n), round(ms, 2)] for op, (n, ms) in ops.items()} for who, ops in served.items()}


def _by_operation(served: dict[str, dict[str, list[float]]]) -> dict[str, list[float]]:
    merged: dict[str, list[float]] = {}
    for ops in served.values():
        for op, (n, ms) in ops.items():
            entry = merged.setdefault(op, [0, 0.0])
            entry[0] += n
            entry[1] += ms
    return {op: [int(n), round(ms, 2)] for op, (n, ms) in merged.items()}


def _call(app: WsgiApp, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """Run a WSGI app to the end: its status, headers and whole body."""
    started: list[Any] = []
    chunks: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started[:] = [status, headers]
        return chunks.append

    result = app(environ, start_response)
    try:
        chunks.extend(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return started[0], started[1], b"".join(chunks)


def keep_alive_handler() -> type[Any]:
    """moto's request handler on HTTP/1.1 connections that stay open.

    Werkzeug's development server closes every connection after one response (`Connection: close`,
    then a 10 ms wait for stray body bytes), so every botocore call paid a TCP connect and the
    emulator a new thread. Here the body is read whole (by its Content-Length) before the app
    sees it, so the next request line starts where it should; the response goes out in one write
    with its Content-Length. A chunked request body, which cannot be delimited this way, is served
    by Werkzeug's own code, which closes the connection after it as before.
    """
    from moto.moto_server.werkzeug_app import MotoRequestHandler  # noqa: PLC0415
    from werkzeug.exceptions import InternalServerError  # noqa: PLC0415

    class KeepAliveHandler(MotoRequestHandler):
        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def run_wsgi(self) -> None:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                super().run_wsgi()
                self.close_connection = True
                return
            if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length > 0 else b""
            self.environ = environ = self.make_environ()
            environ["wsgi.input"] = io.BytesIO(body)
            try:
                status, headers, payload = _call(self.server.app, environ)
            except Exception as error:  # what Werkzeug's server answers, and logs, for a crash
                self.log_error("error on request: %r", error)
                traceback.print_exc()
                status, headers, payload = _call(InternalServerError(), environ)
            code, _, reason = status.partition(" ")
            self.send_response(int(code), reason)
            declared = None
            for name, value in headers:
                lower = name.lower()
                if lower == "content-length":
                    declared = value
                elif lower not in {"connection", "transfer-encoding"}:
                    self.send_header(name, value)
            # A HEAD answer states the length of the body it does not send.
            head = self.command == "HEAD"
            self.send_header("Content-Length", declared if head and declared else str(len(payload)))
            # Headers and body in one write (http.server's header buffer, then end_headers' flush).
            self._headers_buffer.append(b"\r\n" + (b"" if head else payload))
            self.flush_headers()

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            pass  # the access log is off (its logger at WARNING); skip formatting each line for it

    return KeepAliveHandler


def make_emulator(
    host: str, port: int, *, profile: bool = False, keep_alive: bool = True, dynamodb_url: str | None = None
) -> Any:
    """moto's server app (every service) behind the meter, on a threaded Werkzeug server (not
    started: `serve_forever`). `keep_alive=False`: Werkzeug's own handler, as moto ships it.
    `dynamodb_url`: the emulator process that serves DynamoDB, where its requests are forwarded."""
    from moto.moto_server.werkzeug_app import (  # noqa: PLC0415 - heavy; only in the emulator process
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server  # noqa: PLC0415

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log per request
    chosen = os.environ.get(QUIRKS_ENV)
    names = None if chosen is None else tuple(n for n in chosen.split(",") if n not in ("", "none"))
    moto_quirks.install(names)
    peer = DynamoDBPeer(dynamodb_url) if dynamodb_url else None
    meter = Meter(DomainDispatcherApplication(create_backend_app), profile=profile, peer=peer)
    handler = keep_alive_handler() if keep_alive else MotoRequestHandler
    return make_server(host, port, meter, threaded=True, request_handler=handler)


def serve(host: str, port: int, dynamodb_url: str | None = None) -> None:
    """Run the emulator until stdin closes (the parent stopped or died)."""
    profile_path = os.environ.get(PROFILE_ENV)
    server = make_emulator(host, port, profile=bool(profile_path), dynamodb_url=dynamodb_url)
    threading.Thread(target=server.serve_forever, name="emulator", daemon=True).start()
    bound_host, bound_port = server.server_address[:2]
    print(f"ready http://{bound_host}:{bound_port}", flush=True)
    sys.stdin.read()  # returns at EOF: the parent closed the pipe or exited
    server.shutdown()
    if profile_path:
        server.app.dump(profile_path)


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]), *sys.argv[3:4])
