"""The pending-commits queue's message: a `PendingCommit` survives the trip whole, its retired
writer included, and a message queued before that field existed still decodes."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dozor.adapters.memory import CollectingReviewQueue, InMemoryDecisionStore
from dozor.adapters.sqs import decode_pending, encode_pending
from dozor.domain.errors import InvalidRecordError
from dozor.domain.fraud.model import FraudModel
from dozor.domain.fraud.scoring import OrderScoring, PendingCommit
from dozor.domain.privacy import PiiHasher, pseudonymise
from tests.helpers.orders import build_order

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
_HASHER = PiiHasher(b"k")


@pytest.fixture(scope="module")
def pending() -> PendingCommit:
    scoring = OrderScoring(InMemoryDecisionStore(), CollectingReviewQueue(), FraudModel.load(), _HASHER)
    order = build_order("o-codec", T0, buyer="b-codec")
    scored = scoring.prepare([order])[0]
    return PendingCommit(
        scored.decision,
        scored.updates,
        pseudonymise(order, _HASHER),
        scored.fingerprint,
        frozenset({"event"}),
    )


_NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", max_size=8)


@given(writers=st.frozensets(_NAMES, max_size=8), counted=st.booleans())
def test_a_pending_commit_comes_back_whole_with_its_writers_and_count(
    pending: PendingCommit, writers: frozenset[str], counted: bool
) -> None:
    sent = replace(pending, retired_writers=writers, counted=counted)
    assert decode_pending(encode_pending(sent)) == sent


def test_a_message_from_before_these_fields_decodes_as_not_known(pending: PendingCommit) -> None:
    body = json.loads(encode_pending(replace(pending, retired_writers=frozenset({"w1"}), counted=True)))
    del body["retired_writers"], body["counted"]
    decoded = decode_pending(json.dumps(body))
    assert decoded.retired_writers == frozenset() and decoded.counted is False
    assert decoded == pending


def test_a_body_that_is_not_a_pending_commit_is_invalid() -> None:
    with pytest.raises(InvalidRecordError):
        decode_pending(json.dumps({"decision": {}, "updates": []}))
