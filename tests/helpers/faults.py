"""Faults injected into botocore where a request leaves the client, switched on and off by name.

A hang is simulated as a socket that never answers: the call sleeps for the client's read timeout
and raises botocore's ReadTimeoutError. An error code is answered as AWS would answer it
(``code``), a refused connection as botocore raises it (``refused``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError


class Faults:
    """Faults switched on and off by name; hooked into the session before any client is built
    (a client copies the session's event hooks when it is made)."""

    def __init__(self) -> None:
        self.active: dict[str, Callable[..., Any]] = {}
        session = boto3._get_default_session()  # the session the handlers' clients come from
        session.events.register_first("before-send", self._dispatch("before-send"))
        session.events.register_first("before-call", self._dispatch("before-call"))

    def _dispatch(self, stage: str) -> Callable[..., Any]:
        def handle(event_name: str, **kwargs: Any) -> Any:
            _, service, operation = event_name.split(".")
            for key in (f"{stage}.{service}.{operation}", f"{stage}.{service}.*"):
                if key in self.active:
                    return self.active[key](**kwargs)
            return None

        return handle

    @contextmanager
    def on(self, event: str, handler: Callable[..., Any]) -> Iterator[None]:
        self.active[event] = handler
        try:
            yield
        finally:
            del self.active[event]


def hang(seconds: float | Callable[[], float]) -> Callable[..., None]:
    """A call that waits ``seconds`` (the client's read timeout) and then times out."""

    def answer(**_: object) -> None:
        time.sleep(seconds() if callable(seconds) else seconds)
        raise ReadTimeoutError(endpoint_url="http://127.0.0.1:1")

    return answer


def refused(**_: object) -> None:
    """A call to an endpoint nobody listens on."""
    raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")


def code(error_code: str, reasons: list[dict[str, str]] | None = None) -> Callable[..., Any]:
    """A call AWS answers with ``error_code`` (and a transaction's cancellation reasons)."""

    def answer(**_: object) -> tuple[object, dict[str, Any]]:
        error: dict[str, Any] = {"Error": {"Code": error_code, "Message": "injected"}}
        if reasons is not None:
            error["CancellationReasons"] = reasons
        return type("Response", (), {"status_code": 400, "headers": {}})(), error

    return answer


def sent(params: dict[str, Any]) -> str:
    """The body of a request as it leaves (``params`` of a before-call hook), as text: JSON
    protocols send bytes or text, query protocols (SNS, SQS's older one) a dict of fields."""
    body = params.get("body") or b""
    if isinstance(body, bytes):
        return body.decode("utf-8", errors="replace")
    return str(body)
