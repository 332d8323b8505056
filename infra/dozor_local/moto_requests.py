"""Workarounds for what moto's server spends on every request before and after the service's work.

Like `moto_quirks` (which installs these with its own), each patch changes how fast moto answers,
never what it answers; `tests/integration/local/test_moto_quirks_requests.py` compares each with
plain moto. What the emulator's profile under `make bench-gateway` showed, per request:

- ``dispatch_hosts``: to find the service of a request, moto's server asks whether the host is a
  moto module by listing moto's package directory (a ``listdir`` and a ``stat`` of each of its
  ~150 entries) twice per request, then tries up to ~180 URL patterns. The module list does not
  change while a server runs, and a host's backend is kept once found.
- ``sqs_retention``: for every message a ReceiveMessage returns, moto checks its retention
  period through ``get_queue_attributes``, which builds every attribute of the queue (counting
  its messages, visible, in flight and delayed, by walking them all) three times over to read
  one number: a receive cost grew with the queue (~10 ms each in the demo, a fifth of the
  emulator's CPU). The period is read from the queue itself, the value those attributes hold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

Swaps = Any  # moto_quirks._Swaps: set(owner, name, value) remembered so that it can be undone


# --- dispatch_hosts ---------------------------------------------------------------------------------


def dispatch_hosts(swaps: Swaps) -> None:
    from moto import backends  # noqa: PLC0415 - moto is imported only when a stack is used
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication  # noqa: PLC0415

    modules = tuple(backends.list_of_moto_modules())

    def list_of_moto_modules() -> Iterator[str]:
        return iter(modules)

    original = DomainDispatcherApplication.get_backend_for_host

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        if host is None:
            return None
        known: dict[str, Any] = self.__dict__.setdefault("_dozor_backends", {})
        found = known.get(host)
        if found is None:
            found = original(self, host)
            if found is not None:  # an unknown host is asked again (and reported again) each time
                known[host] = found
        return found

    swaps.set(backends, "list_of_moto_modules", list_of_moto_modules)
    swaps.set(DomainDispatcherApplication, "get_backend_for_host", get_backend_for_host)


# --- sqs_retention ----------------------------------------------------------------------------------


def sqs_retention(swaps: Swaps) -> None:
    from moto.sqs import models  # noqa: PLC0415

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention_period = self.get_queue(queue_name).message_retention_period
        now = models.__dict__["unix_time"]()  # moto's own clock, looked up as moto's check does
        return bool(retention_period + message.sent_timestamp / 1000 > now)

    check = is_message_valid_based_on_retention_period
    swaps.set(models.SQSBackend, "is_message_valid_based_on_retention_period", check)


PATCHES: dict[str, Callable[[Swaps], None]] = {
    "dispatch_hosts": dispatch_hosts,
    "sqs_retention": sqs_retention,
}
