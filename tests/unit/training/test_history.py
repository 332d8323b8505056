"""History files: orders and labels in CSV, JSON Lines and Parquet, read back exactly, in time
order, with every bad row reported by line number and field."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dozor.domain.contracts import Order
from dozor.domain.feedback import Label, Loss
from dozor_training.fraud.simulator import SimulatedOrder, SimulationConfig, simulate
from dozor_training.history import (
    MAX_LISTED,
    BadRow,
    HistoryError,
    UnsupportedFormatError,
    format_of,
    open_orders,
    read_labels,
    read_losses,
)
from dozor_training.history_writer import ORDER_COLUMNS, write_labels, write_orders, write_rows

FORMATS = ["jsonl", "csv", "parquet", "csv.gz", "jsonl.gz"]
T0 = datetime(2026, 10, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def simulated() -> list[SimulatedOrder]:
    return simulate(SimulationConfig(days=1, seed=3, orders_per_day=150, fraud_rate=0.05))


def payload(order_id: str, minutes: int = 0, **fields: Any) -> dict[str, Any]:
    """A minimal valid order payload (the six required fields) plus ``fields``."""
    return {
        "order_id": order_id,
        "created_at": (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z"),
        "buyer": {"id": f"b-{order_id}"},
        "seller": {"id": "s-1"},
        "amount": 1500.0,
        "currency": "RUB",
        **fields,
    }


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    lines = [",".join(header), *(",".join(row) for row in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def problems(error: pytest.ExceptionInfo[HistoryError]) -> set[tuple[int, str]]:
    return {(b.line, b.field) for b in error.value.bad_rows}


# --- round trips --------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", FORMATS)
def test_orders_round_trip_through_every_format(
    simulated: list[SimulatedOrder], tmp_path: Path, ext: str
) -> None:
    path = write_orders((s.order for s in simulated), tmp_path / f"orders.{ext}")

    history = open_orders(path)

    assert len(history) == len(simulated)
    assert list(history.iter_orders()) == [Order.model_validate(s.order) for s in simulated]


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_flat_files_have_dotted_columns_and_a_json_items_column(
    simulated: list[SimulatedOrder], tmp_path: Path, ext: str
) -> None:
    path = write_orders((s.order for s in simulated), tmp_path / f"orders.{ext}")

    if ext == "csv":
        header = path.read_text(encoding="utf-8").splitlines()[0].split(",")
    else:
        header = pq.read_schema(path).names
    assert header == list(ORDER_COLUMNS)
    assert {"buyer.id", "seller.id", "payment.card_fingerprint", "shipping.region", "items"} <= set(header)


@pytest.mark.parametrize("ext", ["jsonl", "csv", "parquet"])
def test_unsorted_files_are_read_in_time_order_ties_in_file_order(tmp_path: Path, ext: str) -> None:
    minutes = [5, 1, 3, 1, 0, 3]
    orders = [payload(f"o{i}", m) for i, m in enumerate(minutes)]
    path = write_orders(orders, tmp_path / f"orders.{ext}")

    read = [o.order_id for o in open_orders(path).iter_orders()]

    assert read == ["o4", "o1", "o3", "o2", "o5", "o0"]


def test_created_at_is_epoch_microseconds_in_file_order(tmp_path: Path) -> None:
    path = write_orders([payload("a", 2), payload("b", 0)], tmp_path / "orders.jsonl")

    history = open_orders(path)

    start = int(T0.timestamp()) * 1_000_000
    assert history.created_at.tolist() == [start + 120_000_000, start]


def test_missing_optional_columns_are_absent_fields(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "orders.csv",
        ["order_id", "created_at", "buyer.id", "seller.id", "amount", "currency"],
        [["o1", "2026-10-01T10:00:00+03:00", "b1", "s1", "990.5", "CNY"]],
    )

    (order,) = open_orders(path).iter_orders()

    assert order.created_at == datetime(2026, 10, 1, 7, tzinfo=UTC)
    assert (order.amount, order.currency, order.buyer.id, order.seller.id) == (990.5, "CNY", "b1", "s1")
    assert order.payment is None and order.shipping is None and order.ip is None and order.items == []
    assert order.buyer.email is None and order.buyer.account_created_at is None


def test_empty_cells_are_absent_and_dotted_columns_nest(tmp_path: Path) -> None:
    header = ["order_id", "created_at", "buyer.id", "buyer.email", "seller.id", "amount", "currency"]
    header += ["payment.method", "payment.card_fingerprint", "shipping.region", "items"]
    items = '"[{""sku"":""x-1"",""quantity"":2,""unit_price"":100.0}]"'
    path = write_csv(
        tmp_path / "orders.csv",
        header,
        [
            [
                "o1",
                "2026-10-01T10:00:00Z",
                "b1",
                "a@b.ru",
                "s1",
                "200",
                "RUB",
                "card",
                "fp-1",
                "RU-MOW",
                items,
            ],
            ["o2", "2026-10-01T11:00:00Z", "b2", "", "s1", "200", "RUB", "sbp", "", "", ""],
        ],
    )

    first, second = open_orders(path).iter_orders()

    assert first.buyer.email == "a@b.ru"
    assert first.payment is not None and first.payment.card_fingerprint == "fp-1"
    assert first.shipping is not None and first.shipping.region == "RU-MOW"
    assert [(i.sku, i.quantity, i.unit_price) for i in first.items] == [("x-1", 2, 100.0)]
    assert second.buyer.email is None and second.shipping is None and second.items == []
    assert second.payment is not None and second.payment.method == "sbp"
    assert second.payment.card_fingerprint is None


def test_parquet_with_struct_columns_typed_timestamps_and_integer_ids_is_read(tmp_path: Path) -> None:
    table = pa.table(
        {
            "order_id": pa.array([1, 2], type=pa.int64()),
            "created_at": pa.array([T0 + timedelta(hours=1), T0], type=pa.timestamp("ms", tz="UTC")),
            "buyer": pa.array([{"id": 7, "email": None}, {"id": 8, "email": "x@y.ru"}]),
            "seller": pa.array([{"id": "s1"}, {"id": "s1"}]),
            "amount": [100.0, 250.0],
            "currency": ["RUB", "USD"],
            "items": pa.array([[{"sku": "k", "quantity": None}], []]),
        }
    )
    pq.write_table(table, tmp_path / "orders.parquet")

    first, second = open_orders(tmp_path / "orders.parquet").iter_orders()

    assert (first.order_id, first.buyer.id, first.buyer.email, first.currency) == ("2", "8", "x@y.ru", "USD")
    assert second.created_at == T0 + timedelta(hours=1) and second.buyer.email is None
    assert [(i.sku, i.quantity) for i in second.items] == [("k", 1)]


def test_format_comes_from_the_extension() -> None:
    assert format_of(Path("x/orders.CSV")) == "csv"
    assert format_of(Path("orders.jsonl.gz")) == "jsonl"
    assert format_of(Path("orders.json")) == "jsonl"
    assert format_of(Path("orders.parquet")) == "parquet"
    with pytest.raises(UnsupportedFormatError):
        format_of(Path("orders.xlsx"))
    with pytest.raises(UnsupportedFormatError):
        open_orders(Path("orders.txt"))


# --- bad rows -----------------------------------------------------------------------------------


def test_bad_csv_rows_are_reported_with_line_and_column(tmp_path: Path) -> None:
    header = ["order_id", "created_at", "buyer.id", "seller.id", "amount", "currency"]
    path = write_csv(
        tmp_path / "orders.csv",
        header,
        [
            ["o1", "2026-10-01T10:00:00Z", "b1", "s1", "100", "RUB"],  # line 2: fine
            ["o2", "2026-10-01T10:00:00Z", "b1", "s1", "lots", "RUB"],  # 3: bad amount
            ["o3", "2026-10-01T10:00:00", "b1", "s1", "100", "RUB"],  # 4: naive timestamp
            ["o4", "2026-10-01T10:00:00Z", "b1", "s1", "100", "XYZ"],  # 5: bad currency
            ["o1", "2026-10-01T11:00:00Z", "b1", "s1", "100", "RUB"],  # 6: duplicate order_id
            ["o6", "2026-10-01T10:00:00Z", "", "s1", "-5", "RUB"],  # 7: no buyer, negative amount
        ],
    )

    with pytest.raises(HistoryError) as error:
        list(open_orders(path).iter_orders())

    assert problems(error) == {
        (3, "amount"),
        (4, "created_at"),
        (5, "currency"),
        (6, "order_id"),
        (7, "buyer.id"),
        (7, "amount"),
    }
    message = str(error.value)
    assert "line 4: created_at: Input should have timezone info" in message
    assert "line 6: order_id: duplicate order_id 'o1' (first on line 2)" in message


def test_unreadable_items_and_ragged_csv_rows_are_reported(tmp_path: Path) -> None:
    header = ["order_id", "created_at", "buyer.id", "seller.id", "amount", "currency", "items"]
    good = ["2026-10-01T10:00:00Z", "b1", "s1", "100", "RUB"]
    items_path = write_csv(tmp_path / "items.csv", header, [["o1", *good, "[{oops"], ["o2", *good, "[]"]])
    ragged_path = write_csv(tmp_path / "ragged.csv", header, [["o1", *good, "[]"], ["o2", *good]])

    with pytest.raises(HistoryError) as items_error:
        open_orders(items_path).validate()
    with pytest.raises(HistoryError) as ragged_error:
        open_orders(ragged_path)

    assert problems(items_error) == {(2, "items")}
    assert "Invalid JSON" in str(items_error.value)
    assert problems(ragged_error) == {(3, "(row)")}


def test_a_missing_required_column_is_reported_on_the_header_line(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "orders.csv",
        ["order_id", "created_at", "buyer.id", "amount", "currency"],
        [["o1", "2026-10-01T10:00:00Z", "b1", "100", "RUB"]],
    )

    with pytest.raises(HistoryError) as error:
        open_orders(path)

    assert error.value.bad_rows == [BadRow(1, "seller.id", "required column is missing")]


def test_a_parquet_file_missing_a_required_column_names_it_in_the_schema(tmp_path: Path) -> None:
    pq.write_table(
        pa.table({"order_id": ["o1"], "created_at": ["2026-10-01T10:00:00Z"]}), tmp_path / "o.parquet"
    )

    with pytest.raises(HistoryError) as error:
        open_orders(tmp_path / "o.parquet")

    assert problems(error) == {(0, "buyer.id"), (0, "seller.id"), (0, "amount"), (0, "currency")}
    assert "schema: seller.id: required column is missing" in str(error.value)


def test_bad_json_lines_are_reported_with_their_line_numbers(tmp_path: Path) -> None:
    lines = [
        json.dumps(payload("o1")),
        "",  # a blank line still counts as a line of the file
        json.dumps(payload("o2", amount="lots")),
        "{not json",
        json.dumps(payload("o4", created_at="2026-10-01T10:00:00")),
        json.dumps({**payload("o5"), "buyer": {}}),
        json.dumps(payload("o1", 9)),
    ]
    path = tmp_path / "orders.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    with pytest.raises(HistoryError) as error:
        open_orders(path).validate()

    assert problems(error) == {
        (3, "amount"),
        (4, "(row)"),
        (5, "created_at"),
        (6, "buyer.id"),
        (7, "order_id"),
    }


def test_bad_parquet_rows_are_reported_by_row_number(tmp_path: Path) -> None:
    rows = [payload("o1"), payload("o2"), payload("o3", currency="XYZ"), payload("o1", 5)]
    path = write_orders(rows, tmp_path / "orders.parquet")

    with pytest.raises(HistoryError) as error:
        open_orders(path).validate()

    assert problems(error) == {(3, "currency"), (4, "order_id")}
    assert "row 3: currency:" in str(error.value)


def test_good_orders_are_yielded_before_the_error_is_raised(tmp_path: Path) -> None:
    path = write_orders(
        [payload("o1"), payload("o2", 1, currency="XYZ"), payload("o3", 2)], tmp_path / "o.jsonl"
    )
    seen = []

    with pytest.raises(HistoryError):
        for order in open_orders(path).iter_orders():
            seen.append(order.order_id)

    assert seen == ["o1", "o3"]


def test_a_long_list_of_bad_rows_is_cut_with_a_count(tmp_path: Path) -> None:
    orders = [payload(f"o{i}", i, currency="XYZ") for i in range(30)]
    path = write_orders(orders, tmp_path / "orders.jsonl")

    with pytest.raises(HistoryError) as error:
        open_orders(path).validate()

    message = str(error.value)
    assert error.value.total_bad == 30
    assert message.count("currency:") == MAX_LISTED
    assert message.endswith(f"and {30 - MAX_LISTED} more")
    assert "line 1: currency" in message


# --- labels -------------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", ["jsonl", "csv", "parquet"])
def test_labels_merge_fraud_wins_dated_by_its_earliest_report(tmp_path: Path, ext: str) -> None:
    day = timedelta(days=1)
    rows = [
        {"order_id": "a", "label": "legit", "reported_at": T0 + day},
        {"order_id": "a", "label": "fraud", "reported_at": T0 + 5 * day},
        {"order_id": "a", "label": "fraud", "reported_at": T0 + 3 * day},
        {"order_id": "b", "label": "legit", "reported_at": T0 + 4 * day},
        {"order_id": "b", "label": "LEGIT", "reported_at": T0 + 2 * day},
    ]
    path = write_labels(rows, tmp_path / f"labels.{ext}")

    labels = read_labels(path)

    assert labels == [Label("b", False, T0 + 2 * day), Label("a", True, T0 + 3 * day)]


@pytest.mark.parametrize("ext", ["csv", "jsonl", "parquet"])
def test_lost_rows_are_parcel_losses_not_verdicts(tmp_path: Path, ext: str) -> None:
    day = timedelta(days=1)
    rows = [
        {"order_id": "a", "label": "fraud", "reported_at": T0 + day},
        {"order_id": "b", "label": "lost", "reported_at": T0 + 9 * day},
        {"order_id": "b", "label": "Lost", "reported_at": T0 + 6 * day},  # the buyer's claim came first
        {"order_id": "a", "label": "lost", "reported_at": T0 + 2 * day},
    ]
    path = write_labels(rows, tmp_path / f"labels.{ext}")

    assert read_labels(path) == [Label("a", True, T0 + day)]
    assert read_losses(path) == [Loss("a", T0 + 2 * day), Loss("b", T0 + 6 * day)]


def test_labels_round_trip_from_label_objects(tmp_path: Path) -> None:
    labels = [Label("a", True, T0), Label("b", False, T0 + timedelta(hours=1))]

    assert read_labels(write_labels(labels, tmp_path / "labels.csv")) == labels


def test_bad_label_rows_are_reported(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "labels.csv",
        ["order_id", "label", "reported_at"],
        [
            ["a", "fraud", "2026-10-02T00:00:00Z"],
            ["b", "maybe", "2026-10-02T00:00:00Z"],
            ["c", "legit", "yesterday"],
            ["", "legit", "2026-10-02T00:00:00Z"],
        ],
    )

    with pytest.raises(HistoryError) as error:
        read_labels(path)

    assert problems(error) == {(3, "label"), (4, "reported_at"), (5, "order_id")}


def test_a_labels_file_without_a_label_column_is_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "labels.csv", ["order_id", "reported_at"], [["a", "2026-10-02T00:00:00Z"]])

    with pytest.raises(HistoryError) as error:
        read_labels(path)

    assert problems(error) == {(1, "label")}


# --- writing ------------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", ["jsonl", "csv", "parquet"])
def test_writing_is_deterministic_and_atomic(tmp_path: Path, ext: str) -> None:
    orders = [payload(f"o{i}", i) for i in range(5)]
    first = write_orders(orders, tmp_path / "a" / f"orders.{ext}").read_bytes()
    second = write_orders(orders, tmp_path / "b" / f"orders.{ext}").read_bytes()

    def failing() -> Any:
        yield ["o1", 0.5]
        raise RuntimeError("the scorer died")

    with pytest.raises(RuntimeError):
        write_rows(failing(), ["order_id", "score"], tmp_path / "c" / f"out.{ext}")

    assert first == second
    assert list((tmp_path / "c").iterdir()) == []


def test_shuffled_rows_validate_like_sorted_ones(simulated: list[SimulatedOrder], tmp_path: Path) -> None:
    shuffled = [s.order for s in simulated]
    random.Random(1).shuffle(shuffled)
    path = write_orders(shuffled, tmp_path / "orders.csv")

    ids = [o.order_id for o in open_orders(path).iter_orders()]

    assert ids == [s.order["order_id"] for s in simulated]
