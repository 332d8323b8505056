"""Workarounds for what moto's server spends on every request before and after the service's work.

Like `moto_quirks` (which installs these with its own), each patch changes how fast moto answers,
never what it answers; `tests/integration/local/test_moto_quirks_requests.py` compares each with
plain moto. What the emulator's profile under `make bench-gateway` showed, per request:

- ``dispatch_hosts``: to find the service of a request, moto's server asks whether the host is a
  moto module by listing moto's package directory (a ``listdir`` and a ``stat`` of each of its
  ~150 entries) twice per request, then tries up to ~180 URL patterns. The module list does not
  change while a server runs, and a host's backend is kept once found.
- ``direct_dynamodb``: a DynamoDB request went through moto's Flask app (a request context, URL
  routing, the CORS extension's after-request hook, a response object converted twice) to reach
  the one handler every DynamoDB request goes to; a third of a small UpdateItem's cost (0.7 ms
  against 0.5). A POST to "/" with DynamoDB's target goes to that handler directly, with the
  CORS header the extension adds to every answer; anything else (a browser's Origin, another
  path or method) goes through Flask as before.
- ``sqs_retention``: for every message a ReceiveMessage returns, moto checks its retention
  period through ``get_queue_attributes``, which builds every attribute of the queue (counting
  its messages, visible, in flight and delayed, by walking them all) three times over to read
  one number: a receive cost grew with the queue (~10 ms each in the demo, a fifth of the
  emulator's CPU). The period is read from the queue itself, the value those attributes hold.
- ``sqs_queue_counts``: every sent message makes moto build all of its queue's attributes (to
  read ``ContentBasedDeduplication``), and three of them count the queue's messages, visible, in
  flight and delayed, each asking the clock (through two datetimes) twice per message: a
  SendMessageBatch of ten into a queue of a few hundred cost ~6 ms, the demo's driver spent a
  tenth of the emulator's CPU on it. The clock is read once per count and each message's stamps
  compared with it, the comparisons moto's ``Message.visible`` and ``delayed`` make.
- ``serializer_dict_values``: moto renders every answer by walking the operation's output shape
  and asking, for each member, an attribute picker to find the value: it builds a context, joins
  the shape path, and tries up to a dozen spellings of the name (aliases, each also in
  snake_case) one after another. A DynamoDB answer is a dict that already uses the wire's names,
  and for a dict the spellings depend only on the shape, so they are worked out once per member
  and looked up in order: the first one the dict holds wins, as in moto. A third of the
  emulator's CPU in the demo.
- ``attribute_names``: moto turns the same few CamelCase names into snake_case on every request
  (the action) and, for SQS, ~35 times per sent message (building every queue attribute to read
  one); the conversion is a pure function of the name, so its answers are kept.
- ``random_strings``: a request id (52 characters) and a receipt handle (185) were drawn one
  `random.choice` at a time; they are drawn in one `choices` call from the same generator.
"""

from __future__ import annotations

import functools
import string
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


# --- direct_dynamodb -------------------------------------------------------------------------------


def direct_dynamodb(swaps: Swaps) -> None:
    from botocore.exceptions import ClientError  # noqa: PLC0415
    from flask import Response  # noqa: PLC0415
    from moto.dynamodb.responses import DynamoHandler  # noqa: PLC0415
    from moto.moto_api import recorder  # noqa: PLC0415
    from moto.moto_server import werkzeug_app  # noqa: PLC0415

    original = werkzeug_app.DomainDispatcherApplication.__call__

    def dispatch(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        direct = (
            str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB_20120810.")
            and environ.get("REQUEST_METHOD") == "POST"
            and environ.get("PATH_INFO") == "/"
            and "HTTP_ORIGIN" not in environ  # CORS answers a browser differently: Flask's way
        )
        if not direct:
            return original(self, environ, start_response)
        app = self.get_application(environ)
        if getattr(app, "service", None) != "dynamodb":
            return app(environ, start_response)
        # What moto's Flask view (core.utils.convert_to_flask_response) does with the request.
        request = werkzeug_app.BackendRequest(environ)
        recorder._record_request(request)
        try:
            result = DynamoHandler.dispatch(request, request.raw_url, dict(request.headers))
        except ClientError as error:
            result = 400, {}, error.response["Error"]["Message"]
        status, headers, content = result if len(result) == 3 else (200, {}, result)
        response = Response(response=content, status=status, headers=headers)
        if not werkzeug_app.DISABLE_GLOBAL_CORS:  # type: ignore[attr-defined]
            response.headers["Access-Control-Allow-Origin"] = "*"  # flask-cors, as moto sets it up
        return response(environ, start_response)

    swaps.set(werkzeug_app.DomainDispatcherApplication, "__call__", dispatch)


# --- sqs_retention ----------------------------------------------------------------------------------


def sqs_retention(swaps: Swaps) -> None:
    from moto.sqs import models  # noqa: PLC0415

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention_period = self.get_queue(queue_name).message_retention_period
        now = models.__dict__["unix_time"]()  # moto's own clock, looked up as moto's check does
        return bool(retention_period + message.sent_timestamp / 1000 > now)

    check = is_message_valid_based_on_retention_period
    swaps.set(models.SQSBackend, "is_message_valid_based_on_retention_period", check)


# --- sqs_queue_counts ------------------------------------------------------------------------------


def sqs_queue_counts(swaps: Swaps) -> None:
    from moto.sqs import models  # noqa: PLC0415

    def now_millis() -> float:
        return float(models.__dict__["unix_time_millis"]())  # moto's clock, as Message reads it

    def messages(self: Any) -> list[Any]:  # visible and not delayed: Message.visible, .delayed
        now = now_millis()
        return [m for m in self._messages if now > m.visible_at and now >= m.delayed_until]

    def delayed(self: Any) -> int:
        now = now_millis()
        return sum(1 for m in self._messages if now < m.delayed_until)

    def not_visible(self: Any) -> int:
        now = now_millis()
        return sum(1 for m in self._messages if now <= m.visible_at)

    swaps.set(models.Queue, "messages", property(messages))
    swaps.set(models.Queue, "approximate_number_of_messages_delayed", property(delayed))
    swaps.set(models.Queue, "approximate_number_of_messages_not_visible", property(not_visible))


# --- serializer_dict_values -------------------------------------------------------------------------


def serializer_dict_values(swaps: Swaps) -> None:
    from moto.core import serialize  # noqa: PLC0415

    original = serialize.ResponseSerializer.get_value
    # (member shape, its parent, member name) -> the spellings to try, the shapes kept alive so
    # that their ids are not reused while they are keys here.
    spellings: dict[tuple[int, int, str], tuple[Any, Any, tuple[str, ...] | None]] = {}

    def names_for_a_dict(self: Any, key: str, shape: Any) -> tuple[str, ...] | None:
        parent = getattr(shape, "parent", None)
        slot = (id(shape), id(parent), key)
        known = spellings.get(slot)
        if known is None:
            context = serialize.AttributePickerContext(
                obj={},  # what the aliases ask of a dict: its class, and that it has no Meta
                key=key,
                shape=shape,
                operation_model=self.operation_model,
                service_model=self.operation_model.service_model,
                key_path="",
            )
            names: tuple[str, ...] | None = tuple(self._value_picker.get_possible_keys(context))
            if any("." in name for name in names or ()):  # a dotted name is a path to moto
                names = None
            known = spellings[slot] = (shape, parent, names)
        return known[2]

    def get_value(self: Any, value: Any, key: str, shape: Any) -> Any:
        picker = self._value_picker
        # Transformers depend on the path, and other pickers are not moto's: moto's way then.
        plain = type(picker) is serialize.XFormedAttributePicker and not picker.response_transformers
        names = names_for_a_dict(self, key, shape) if plain and type(value) is dict else None
        if names is None:
            return original(self, value, key, shape)
        for name in names:
            if name in value:
                return value[name]
        return None

    swaps.set(serialize.ResponseSerializer, "get_value", get_value)


# --- attribute_names --------------------------------------------------------------------------------


def attribute_names(swaps: Swaps) -> None:
    from moto.core import responses, utils  # noqa: PLC0415
    from moto.sqs import models  # noqa: PLC0415

    remembered = functools.lru_cache(maxsize=4096)(utils.camelcase_to_underscores)
    for module in (responses, models):
        swaps.set(module, "camelcase_to_underscores", remembered)


# --- random_strings ---------------------------------------------------------------------------------


def random_strings(swaps: Swaps) -> None:
    from moto.moto_api._internal import mock_random  # noqa: PLC0415
    from moto.moto_api._internal.moto_random import MotoRandom  # noqa: PLC0415
    from moto.sqs import models  # noqa: PLC0415

    def get_random_string(
        self: Any, length: int = 20, include_digits: bool = True, lower_case: bool = False
    ) -> str:
        pool = string.ascii_letters + (string.digits if include_digits else "")
        drawn = "".join(self.choices(pool, k=length))
        return drawn.lower() if lower_case else drawn

    def generate_receipt_handle() -> str:
        return "".join(mock_random.choices(string.ascii_lowercase, k=185))

    swaps.set(MotoRandom, "get_random_string", get_random_string)
    swaps.set(models, "generate_receipt_handle", generate_receipt_handle)


PATCHES: dict[str, Callable[[Swaps], None]] = {
    "dispatch_hosts": dispatch_hosts,
    "direct_dynamodb": direct_dynamodb,
    "sqs_retention": sqs_retention,
    "sqs_queue_counts": sqs_queue_counts,
    "serializer_dict_values": serializer_dict_values,
    "attribute_names": attribute_names,
    "random_strings": random_strings,
}
