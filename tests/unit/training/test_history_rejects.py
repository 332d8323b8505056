"""Real histories: a bounded number of poison rows is rejected to a quarantine file, not the whole file.

The poison is what real exports hold: dates in year 1 and 9999, a date that is not one, negative
amounts, missing ids, wrong types, a duplicated order id, a ragged CSV record.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dozor_training.cli import main
from dozor_training.history import STRICT, HistoryError, InvalidBound, open_orders
from dozor_training.history_rejects import QUARANTINE_COLUMNS, quarantine_path_beside
from dozor_training.history_writer import write_orders

T0 = datetime(2026, 10, 1, tzinfo=UTC)
GOOD_ROWS = 40


def order(i: int, **fields: Any) -> dict[str, Any]:
    return {
        "order_id": f"o{i}",
        "created_at": (T0 + timedelta(minutes=i)).isoformat().replace("+00:00", "Z"),
        "buyer": {"id": f"b{i % 7}"},
        "seller": {"id": f"s{i % 3}"},
        "amount": 100.0 + i,
        "currency": "RUB",
        **fields,
    }


# Each poison row, the field its problem names (as the file names it).
POISON: list[tuple[dict[str, Any], str]] = [
    (order(901, created_at="0001-01-01T00:00:00+05:00"), "created_at"),
    (order(902, created_at="9999-12-31T23:59:59Z"), "created_at"),
    (order(903, created_at="yesterday"), "created_at"),
    (order(904, amount=-250.0), "amount"),
    ({**order(905), "buyer": {"id": ""}}, "buyer.id"),
    ({k: v for k, v in order(906).items() if k != "seller"}, "seller.id"),
    (order(907, amount="lots"), "amount"),
    (order(3, created_at=order(50)["created_at"]), "order_id"),  # o3 again: a duplicate
]


def poisoned_history(path: Path) -> tuple[Path, dict[int, str]]:
    """GOOD_ROWS good orders with the POISON rows spread among them; {line: field} of the poison."""
    rows: list[dict[str, Any]] = []
    expected: dict[int, str] = {}
    poison = iter(POISON)
    for i in range(GOOD_ROWS):
        rows.append(order(i))
        if i % 5 == 4:
            bad, field = next(poison)
            rows.append(bad)
            if field == "seller.id" and path.suffix == ".jsonl":
                field = "seller"  # a JSON line names the missing object; a flat file its id column
            expected[len(rows) + (1 if path.suffix == ".csv" else 0)] = field  # CSV: header is line 1
    if path.suffix == ".parquet":  # as a warehouse export holds them: text cells, even bad dates
        flat = write_orders(rows, path.with_suffix(".csv"))
        with flat.open(encoding="utf-8", newline="") as f:
            records = [{k: v or None for k, v in r.items()} for r in csv.DictReader(f)]
        pq.write_table(pa.Table.from_pylist(records), path)
        return path, expected
    return write_orders(rows, path), expected


def quarantined(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("text", ["0", "25", "0.5%", "100%", " 3 "])
def test_a_bound_is_a_count_or_a_share(text: str) -> None:
    bound = InvalidBound.parse(text)
    assert str(bound) == text.strip()
    assert bound.allowed(1000) == (int(float(text.strip()[:-1]) * 10) if "%" in text else int(text))


@pytest.mark.parametrize("text", ["-1", "lots", "5%%", "101%", "1.5"])
def test_a_bad_bound_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a bound on invalid rows"):
        InvalidBound.parse(text)


def test_by_default_one_poison_row_refuses_the_file_and_every_bad_row_is_listed(tmp_path: Path) -> None:
    path, expected = poisoned_history(tmp_path / "orders.jsonl")

    with pytest.raises(HistoryError) as error:
        open_orders(path).validate()

    assert {(b.line, b.field) for b in error.value.bad_rows} == set(expected.items())


@pytest.mark.parametrize("ext", ["jsonl", "csv", "parquet"])
def test_within_the_bound_poison_rows_are_rejected_and_the_good_ones_read(tmp_path: Path, ext: str) -> None:
    path, expected = poisoned_history(tmp_path / f"orders.{ext}")
    history = open_orders(path, InvalidBound.parse(str(len(POISON))))

    read = [o.order_id for o in history.iter_orders()]

    assert read == [f"o{i}" for i in range(GOOD_ROWS)]  # the first o3 stays, its duplicate goes
    assert history.quarantine is not None
    assert history.quarantine.rows_read == GOOD_ROWS + len(POISON)
    assert history.quarantine.rejected_rows == len(POISON)
    assert {(b.line, b.field) for b in history.quarantine.rejected} == set(expected.items())


def test_the_quarantine_file_lists_line_field_and_reason(tmp_path: Path) -> None:
    path, expected = poisoned_history(tmp_path / "orders.jsonl")
    history = open_orders(path, InvalidBound.parse("20%"))
    history.validate()
    assert history.quarantine is not None

    written = history.quarantine.written_to(tmp_path / "quarantine.csv")

    assert written.file == tmp_path / "quarantine.csv"
    rows = quarantined(tmp_path / "quarantine.csv")
    assert tuple(rows[0]) == QUARANTINE_COLUMNS
    assert {(int(r["line"]), r["field"]) for r in rows} == set(expected.items())
    reasons = {r["field"]: r["reason"] for r in rows}
    assert "year" in reasons["created_at"] or "datetime" in reasons["created_at"]
    assert "greater than or equal to 0" in reasons["amount"] or "number" in reasons["amount"]
    assert "duplicate order_id 'o3'" in reasons["order_id"]


@pytest.mark.parametrize("bound", ["7", "15%"])  # 8 poison rows of 48: one over, and 7 allowed
def test_over_the_bound_the_file_is_refused_naming_the_first_rejected_rows(
    tmp_path: Path, bound: str
) -> None:
    path, expected = poisoned_history(tmp_path / "orders.jsonl")

    with pytest.raises(HistoryError) as error:
        open_orders(path, InvalidBound.parse(bound)).validate()

    message = str(error.value)
    assert f"more than --max-invalid {bound} allows (7)" in message
    first = min(expected)
    assert f"line {first}: {expected[first]}:" in message.splitlines()[1]


def test_a_ragged_csv_record_is_quarantined_under_a_bound_and_refused_without(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    header = "order_id,created_at,buyer.id,seller.id,amount,currency"
    rows = [f"o{i},2026-10-01T10:0{i}:00Z,b1,s1,100,RUB" for i in range(5)]
    path.write_text("\n".join([header, *rows[:2], "o9,2026-10-01T11:00:00Z,b1", *rows[2:]]) + "\n")

    with pytest.raises(HistoryError, match="line 4: \\(row\\): 3 cells for 6 columns"):
        open_orders(path, STRICT)
    history = open_orders(path, InvalidBound(rows=1))

    assert len(list(history.iter_orders())) == 5
    assert history.quarantine is not None
    assert [(b.line, b.field) for b in history.quarantine.rejected] == [(4, "(row)")]


def test_score_batch_scores_the_good_rows_and_quarantines_the_rest_beside_its_output(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path, expected = poisoned_history(tmp_path / "orders.jsonl")
    out = tmp_path / "decisions.jsonl"

    status = main(["score-batch", "--orders", str(path), "--out", str(out), "--max-invalid", "10"])
    summary = json.loads(capsys.readouterr().out)

    assert status == 0
    assert summary["orders"] == GOOD_ROWS
    assert len(out.read_text().splitlines()) == GOOD_ROWS
    beside = quarantine_path_beside(out)
    assert beside == tmp_path / "decisions.quarantine.csv"
    assert summary["rejected"]["rejected_rows"] == len(POISON)
    assert summary["rejected"]["file"] == str(beside)
    assert {int(r["line"]) for r in quarantined(beside)} == set(expected)


def test_score_batch_over_the_bound_writes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path, _ = poisoned_history(tmp_path / "orders.jsonl")
    out = tmp_path / "decisions.csv"

    status = main(["score-batch", "--orders", str(path), "--out", str(out), "--max-invalid", "2"])

    assert status == 2
    assert "more than --max-invalid 2 allows" in capsys.readouterr().err
    assert not out.exists()
    assert not quarantine_path_beside(out).exists()
