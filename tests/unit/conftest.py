"""Fixtures of the domain unit tests: the order builder and fresh feature replays."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dozor.domain.contracts import Order
from tests.helpers.orders import FeatureReplay, build_order


@pytest.fixture(scope="session")
def make_order() -> Callable[..., Order]:
    return build_order


@pytest.fixture(scope="session")
def new_replay() -> Callable[[], FeatureReplay]:
    """A factory, so hypothesis examples each get a fresh store."""
    return FeatureReplay


@pytest.fixture
def replay() -> FeatureReplay:
    return FeatureReplay()
