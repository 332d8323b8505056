"""Orders as Dozor may store them: personal fields replaced by keyed hashes (DESIGN.md § Principles).

The Decisions table keeps each decided order so that production traffic can be exported and
trained on. What it keeps must still produce the same features, so the pseudonyms are chosen
with the feature code in mind:

- card fingerprint, ip, phone: the keyed hash of the value, the same hash the Features table uses
  for the card and ip entities, so the same card is still the same card.
- shipping address: the keyed hash of the whole normalised address (country to street, as the
  address entity is keyed); country, region, city and postal code stay readable, since remoteness
  and local time are computed from the region.
- email: the domain stays (disposable-mail domains are a feature, and a domain is not personal);
  the local part becomes a keyed pseudonym with the same length and the same positions of digits,
  so ``email_digit_share`` is unchanged. Very short local parts can collide (4 bits per character);
  the effect is two rare addresses sharing a history, which the features tolerate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TypeVar

from pydantic import BaseModel

from dozor.domain.contracts import Order

M = TypeVar("M", bound=BaseModel)

_LETTERS = "abcdefghijklmnop"  # one per hex digit of the hash
_AS_LETTER = {f"{n:x}": _LETTERS[n] for n in range(16)}
_AS_DIGIT = {f"{n:x}": str(n % 10) for n in range(16)}


class PiiHasher:
    """Keyed hash (HMAC-SHA256) for personal data: stable for joins, useless without the key.

    Remembers its last few hundred answers: scoring hashes each order's card, ip and address twice
    (its entities, its stored form), and a returning buyer's values again. The values stay in the
    memory of the process that already holds the orders, never anywhere else.
    """

    def __init__(self, key: bytes) -> None:
        self._known: dict[tuple[str, str], str] = {}
        # HMAC (RFC 2104) with the key's two padded blocks hashed once, as the standard library's
        # `hmac` does per call: a value then costs two copies and two short hashes (~0.8 us, where
        # `hmac.digest` takes ~1.8; each new order brings five or six values).
        block = (hashlib.sha256(key).digest() if len(key) > _BLOCK else key).ljust(_BLOCK, b"\0")
        self._keyed_inner = hashlib.sha256(block.translate(_INNER_PAD))
        self._keyed_outer = hashlib.sha256(block.translate(_OUTER_PAD))

    def __call__(self, kind: str, value: str) -> str:
        known = self._known
        hashed = known.get((kind, value))
        if hashed is None:
            if len(known) >= _REMEMBERED:
                known.clear()
            inner = self._keyed_inner.copy()
            inner.update(f"{kind}:{value}".encode())
            outer = self._keyed_outer.copy()
            outer.update(inner.digest())
            hashed = known[kind, value] = outer.hexdigest()[:32]
        return hashed


_REMEMBERED = 512
_BLOCK = hashlib.sha256().block_size
_INNER_PAD = bytes(x ^ 0x36 for x in range(256))
_OUTER_PAD = bytes(x ^ 0x5C for x in range(256))


def normalise(value: str) -> str:
    """Case and spacing folded, so the same email or address is the same entity."""
    lowered = value.lower()
    # Most values have nothing to fold: only single ASCII spaces inside (a printable string holds
    # no other whitespace), which split() and join() would give back unchanged.
    if lowered.isprintable() and "  " not in lowered and lowered[:1] != " " and lowered[-1:] != " ":
        return lowered
    return " ".join(lowered.split())  # split() cuts at the whitespace r"\s+" matches


def address_key(order: Order) -> str | None:
    """The shipping address as one normalised string, country to street (None without a street)."""
    s = order.shipping
    if s is None or not s.address:
        return None
    parts = (s.country, s.region, s.city, s.postal_code, s.address)
    return "|".join([normalise(p) for p in parts if p])


def pseudonymise(order: Order, hasher: PiiHasher) -> Order:
    """The order with card fingerprint, email, phone, ip and street address replaced by keyed hashes."""
    buyer_changes: dict[str, str] = {}
    buyer = order.buyer
    if buyer.email:
        buyer_changes["email"] = _email_pseudonym(buyer.email, hasher)
    if buyer.phone:
        buyer_changes["phone"] = hasher("phone", buyer.phone)
    changes: dict[str, object] = {}
    if buyer_changes:
        changes["buyer"] = _replaced(buyer, buyer_changes)
    if order.ip:
        changes["ip"] = hasher("ip", order.ip)
    payment = order.payment
    if payment and payment.card_fingerprint:
        changes["payment"] = _replaced(
            payment, {"card_fingerprint": hasher("card", payment.card_fingerprint)}
        )
    address = address_key(order)
    if order.shipping and address:
        changes["shipping"] = _replaced(order.shipping, {"address": hasher("address", address)})
    return _replaced(order, changes) if changes else order


_set = object.__setattr__


def _replaced(model: M, changes: Mapping[str, object]) -> M:
    """``model.model_copy(update=changes)`` for a model without extras or private attributes,
    at half its cost (up to four copies per order scored): the values are ours, already valid."""
    cls = type(model)
    copy = cls.__new__(cls)
    _set(copy, "__dict__", {**model.__dict__, **changes})
    _set(copy, "__pydantic_fields_set__", model.__pydantic_fields_set__ | changes.keys())
    _set(copy, "__pydantic_extra__", None)
    _set(copy, "__pydantic_private__", None)
    return copy


def _email_pseudonym(email: str, hasher: PiiHasher) -> str:
    local, at, domain = email.strip().rpartition("@")
    if not at:  # not an address at all: nothing readable is worth keeping
        local, domain = email.strip(), ""
    normalised = normalise(email)
    stream = ""
    block = 0
    while len(stream) < len(local):
        stream += hasher("email", f"{normalised}#{block}")
        block += 1
    pseudonym = "".join(
        [_AS_DIGIT[h] if c.isdigit() else _AS_LETTER[h] for c, h in zip(local, stream, strict=False)]
    )
    return f"{pseudonym}@{domain.lower()}" if at else pseudonym
