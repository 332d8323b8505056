"""The checks on a request body before it is parsed: nesting depth without parsing, bytes, media type."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dozor.handlers.http_guards import is_json, json_depth, unreadable_body

JSON = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(), children, max_size=3),
    max_leaves=20,
)


def depth_of(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    return 0


@given(JSON)
def test_depth_without_parsing_equals_the_parsed_depth(value: object) -> None:
    assert json_depth(json.dumps(value)) == depth_of(value)
    assert json_depth(json.dumps(value, ensure_ascii=False, indent=1)) == depth_of(value)


def test_brackets_inside_strings_and_escaped_quotes_do_not_count() -> None:
    assert json_depth('{"a": "[[[{{{", "b": "\\"[[["}') == 1
    assert json_depth('"unterminated [[[') == 0


def _scan_seconds(texts: list[str]) -> float:
    started = time.perf_counter()
    for text in texts:
        json_depth(text)
    return time.perf_counter() - started


@pytest.mark.parametrize("unit", ['"\\"', "[", '"', "\\"])
def test_the_scan_stays_linear_on_pathological_text(unit: str) -> None:
    # One 64 KiB text against ten texts a tenth as long, in the same run (a ratio, not a wall
    # time): linear work makes them equal, quadratic work makes the long one ten times slower
    long_text, short_texts = [unit * 64_000], [unit * 6_400] * 10
    _scan_seconds(short_texts)  # warm-up
    ratio = min(_scan_seconds(long_text) for _ in range(3)) / min(
        _scan_seconds(short_texts) for _ in range(3)
    )
    assert ratio < 4, f"{unit!r}: 10x the text took {ratio:.1f}x the time"


def test_only_json_media_types_pass() -> None:
    assert is_json("application/json") and is_json("application/problem+json")
    assert not is_json("multipart/form-data") and not is_json("text/json") and not is_json("text/plain")


def test_no_body_and_a_json_body_pass_and_a_missing_media_type_is_taken_as_json() -> None:
    assert unreadable_body({"body": None}, 100) is None
    assert unreadable_body({"body": "{}", "headers": {}}, 100) is None
    assert (
        unreadable_body({"body": "{}", "headers": {"Content-Type": "text/plain"}}, 100)["statusCode"] == 415
    )
    assert unreadable_body({"body": "é" * 60, "headers": {}}, 100)["statusCode"] == 413
