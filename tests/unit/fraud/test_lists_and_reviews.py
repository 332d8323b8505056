"""Lists and review cases in the domain: a typed value names the entity an order would, a change
is recorded before it acts, a verdict is the Feedback a chargeback would be."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dozor.domain.aggregates import Entity
from dozor.domain.errors import ConflictError, InvalidInputError, StoreUnavailableError
from dozor.domain.feedback import FeedbackKind, label_of
from dozor.domain.fraud.features import identify
from dozor.domain.fraud.lists import (
    ListedKind,
    ListEntry,
    ListKeeper,
    ListName,
    entity_of,
    parse_entity,
    shown,
)
from dozor.domain.fraud.reviews import Verdict, feedback_for
from dozor.domain.privacy import PiiHasher
from tests.helpers.orders import TEST_PII_KEY, build_order

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
HASHER = PiiHasher(TEST_PII_KEY)
SHIPPING = {
    "country": "RU",
    "region": "RU-MOW",
    "city": "Moscow",
    "postal_code": "119021",
    "address": "ul. Lva  Tolstogo 16, kv 42",
}


def test_each_typed_value_names_the_entity_the_order_touches() -> None:
    order = build_order(
        "o-1",
        T0,
        buyer="b-1",
        card="fp_9c1e",
        device="dev-1",
        email="A.Smirnova@Yandex.ru",
        shipping=SHIPPING,
    )
    touched = identify(order, HASHER)
    typed = {
        ListedKind.CARD: "fp_9c1e",
        ListedKind.DEVICE: " dev-1 ",
        ListedKind.EMAIL: "  a.smirnova@YANDEX.ru",
        ListedKind.ADDRESS: "ru|RU-MOW|moscow|119021|Ul. Lva Tolstogo 16,  kv 42",
        ListedKind.BUYER: "b-1",
    }
    for kind, value in typed.items():
        assert entity_of(kind, value, HASHER) == touched[kind.value], kind


def test_personal_values_are_keyed_and_shown_by_a_hash_prefix_only() -> None:
    card = entity_of(ListedKind.CARD, "fp_9c1e", HASHER)
    assert "fp_9c1e" not in card.pk and "fp_9c1e" not in shown(card)
    assert shown(entity_of(ListedKind.BUYER, "b-1", HASHER)) == "buyer b-1"  # an id is not personal


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (ListedKind.ADDRESS, "Moscow, Tverskaya 7"),
        (ListedKind.ADDRESS, "RU|RU-MOW|Moscow|1|"),
        (ListedKind.CARD, "  "),
    ],
)
def test_a_value_that_names_nothing_is_refused(kind: ListedKind, value: str) -> None:
    with pytest.raises(InvalidInputError):
        entity_of(kind, value, HASHER)


@given(st.sampled_from(list(ListedKind)), st.text(min_size=1, max_size=40).filter(lambda v: "#" not in v))
def test_an_entity_key_reads_back_as_the_same_entity(kind: ListedKind, value: str) -> None:
    entity = Entity(kind.value, value)
    assert parse_entity(entity.pk) == entity


@pytest.mark.parametrize("key", ["seller#s-1", "ip#abc", "card#", "card"])
def test_only_listable_keys_are_accepted(key: str) -> None:
    with pytest.raises(InvalidInputError):
        parse_entity(key)


class Records:
    def __init__(self) -> None:
        self.entries: dict[str, ListEntry] = {}
        self.changes: list[object] = []

    def current(self, entity: str) -> ListEntry | None:
        return self.entries.get(entity)

    def record(self, change: object, changes_before: int) -> ListEntry:
        self.changes.append(change)
        entry = ListEntry(change, changes_before + 1, applied=False)  # type: ignore[arg-type]
        self.entries[change.entity] = entry  # type: ignore[attr-defined]
        return entry

    def applied(self, entity: str, changes: int) -> None:
        entry = self.entries[entity]
        self.entries[entity] = ListEntry(entry.change, entry.changes, applied=True)


class Profiles:
    """The profiles port as the Features table keeps it: a later change number wins."""

    def __init__(self, fail: bool = False) -> None:
        self.status: dict[str, str | None] = {}
        self.change: dict[str, int] = {}
        self.fail = fail

    def set_list_status(self, pk: str, status: str | None, change: int | None = None) -> None:
        if self.fail:
            raise StoreUnavailableError("features table throttled")
        if change is not None:
            if self.change.get(pk, -1) >= change:
                raise ConflictError(f"a later list change of {pk} is on its profile")
            self.change[pk] = change
        self.status[pk] = status


def test_a_change_is_recorded_with_who_and_why_then_applied_and_a_later_one_knows_the_previous() -> None:
    records, profiles = Records(), Profiles()
    keeper = ListKeeper(records, profiles)
    card = entity_of(ListedKind.CARD, "fp-1", HASHER)
    first = keeper.change(card, ListName.BLOCK, by="arn:aws:iam::1:user/alice", reason="chargebacks", at=T0)
    assert first.applied and profiles.status[card.pk] == "block"
    assert (first.change.by, first.change.reason, first.change.previous) == (
        "arn:aws:iam::1:user/alice",
        "chargebacks",
        None,
    )
    second = keeper.change(card, None, by="arn:aws:iam::1:user/bob", reason="card replaced", at=T0)
    assert profiles.status[card.pk] is None
    assert (second.changes, second.change.list, second.change.previous) == (2, None, ListName.BLOCK)


def test_a_change_that_cannot_be_applied_stays_recorded_and_not_applied() -> None:
    records = Records()
    card = entity_of(ListedKind.CARD, "fp-2", HASHER)
    with pytest.raises(StoreUnavailableError):
        ListKeeper(records, Profiles(fail=True)).change(card, ListName.BLOCK, by="a", reason="r", at=T0)
    assert len(records.changes) == 1 and records.entries[card.pk].applied is False


@pytest.mark.parametrize(("verdict", "is_fraud"), [(Verdict.FRAUD, True), (Verdict.LEGIT, False)])
def test_a_verdict_is_the_feedback_that_labels_the_order(verdict: Verdict, is_fraud: bool) -> None:
    feedback = feedback_for("o-1", verdict, T0)
    assert feedback.kind in {FeedbackKind.FRAUD_CONFIRMED, FeedbackKind.LEGIT_CONFIRMED}
    label = label_of(feedback)
    assert label is not None and (label.order_id, label.is_fraud, label.reported_at) == ("o-1", is_fraud, T0)
