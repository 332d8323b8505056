"""History files: an engineer's own orders and labels, read for training and backtests.

Orders and labels come as CSV, JSON Lines or Parquet, told apart by the file name's extension
(``.csv``, ``.jsonl`` / ``.ndjson`` / ``.json`` holding one object a line, ``.parquet``; ``.csv.gz``
and ``.jsonl.gz`` too). Orders follow the Order contract; in flat files (CSV, Parquet) a nested
field is a dotted column (``buyer.id``, ``payment.card_fingerprint``, ``shipping.region``) and
``items`` is one column holding a JSON list (Parquet may also hold a list of structs, and nested
struct columns are read as their dotted names). An empty cell or a null is an absent field.

A million orders must fit in a few GB, and a validated `Order` costs several KB, so an
`OrderHistory` keeps the rows compact (the JSON Lines bytes, or a pyarrow table of the flat
columns), reads only `order_id` and `created_at` up front, and validates each row into an `Order`
as it is yielded in time order. Bad rows are collected with their line numbers and reported
together in one `HistoryError`, so a file is fixed in one round instead of one error at a time;
under a bound (`history_rejects.InvalidBound`) up to that many are rejected instead, and the
history's `quarantine` lists them.
"""

from __future__ import annotations

import abc
import csv
import functools
import gzip
import io
import json
import mmap
import os
import typing
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, ValidationError

from dozor.domain.contracts import Id, Order
from dozor.domain.feedback import Label, Loss
from dozor_training.history_rejects import (
    MAX_BAD_ROWS,
    MAX_LISTED,
    STRICT,
    BadRow,
    Collector,
    HistoryError,
    InvalidBound,
    Quarantine,
)

__all__ = [
    "FRAUD",
    "LABEL_COLUMNS",
    "LEGIT",
    "LOST",
    "MAX_BAD_ROWS",
    "MAX_LISTED",
    "MISSING_CREATED_AT",
    "REQUIRED_ORDER_COLUMNS",
    "STRICT",
    "BadRow",
    "HistoryError",
    "InvalidBound",
    "OrderHistory",
    "Quarantine",
    "UnsupportedFormatError",
    "format_of",
    "is_compressed",
    "open_orders",
    "read_labels",
    "read_losses",
]

Format = Literal["csv", "jsonl", "parquet"]

REQUIRED_ORDER_COLUMNS = ("order_id", "created_at", "buyer.id", "seller.id", "amount", "currency")
LABEL_COLUMNS = ("order_id", "label", "reported_at")
FRAUD, LEGIT, LOST = "fraud", "legit", "lost"

MISSING_CREATED_AT = np.iinfo(np.int64).min  # `OrderHistory.created_at` of a row without a valid one

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_CHUNK = 8192  # rows a flat-file history turns into Python objects at a time
_NOT_AN_OBJECT = "(row)"  # the field of an error about the whole row (not JSON, not an object)


class UnsupportedFormatError(ValueError):
    """The file name's extension names no history format."""


def format_of(path: Path) -> Format:
    """The history format a file name announces: csv, jsonl or parquet (``.gz`` allowed on text)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
        if suffixes and suffixes[-1] == ".parquet":
            raise UnsupportedFormatError(f"{path}: Parquet compresses itself; drop the .gz")
    last = suffixes[-1] if suffixes else ""
    if last == ".csv":
        return "csv"
    if last in {".jsonl", ".ndjson", ".json"}:
        return "jsonl"
    if last == ".parquet":
        return "parquet"
    raise UnsupportedFormatError(
        f"{path}: unknown history format {last or '(no extension)'!r}; "
        "use .csv, .jsonl or .parquet (.csv.gz and .jsonl.gz too)"
    )


def is_compressed(path: Path) -> bool:
    return path.suffix.lower() == ".gz"


# --- errors -------------------------------------------------------------------------------------


def _problems(line: int, error: ValidationError, flat: bool) -> list[BadRow]:
    """One BadRow per pydantic error, with the field named as the file names it."""
    rows = []
    for e in error.errors(include_url=False):
        loc = [str(part) for part in e["loc"]]
        # A flat file has no `buyer` column: a missing buyer is a missing `buyer.id`.
        if flat and e["type"] == "missing" and loc in (["buyer"], ["seller"]):
            loc.append("id")
        rows.append(BadRow(line, ".".join(loc) or _NOT_AN_OBJECT, e["msg"]))
    return rows


# --- flat rows ----------------------------------------------------------------------------------


class _Unflattener:
    """Turns a row of flat dotted cells into a contract payload; nulls and empty cells are absent."""

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self.plan = [tuple(name.split(".")) for name in columns]
        parents = {parts[:depth] for parts in self.plan for depth in range(1, len(parts))}
        clashes = [name for name in columns if tuple(name.split(".")) in parents]
        if clashes:  # `buyer` and `buyer.id` both: is buyer a value or an object?
            header = _header_line(path)
            raise HistoryError(
                path, [BadRow(header, c, "a column and dotted columns under it") for c in clashes]
            )

    def payloads(self, columns: Sequence[list[Any]], n: int) -> tuple[list[dict[str, Any]], dict[int, str]]:
        """The payloads of ``n`` rows given column by column, and the rows whose items are not JSON.

        Column by column, not row by row: half the interpreter work for the same dicts.
        """
        out: list[dict[str, Any]] = [{} for _ in range(n)]
        bad_items: dict[int, str] = {}
        for parts, cells in zip(self.plan, columns, strict=True):
            values = self._items(cells, bad_items) if parts == ("items",) else cells
            if len(parts) == 1:
                (name,) = parts
                for payload, value in zip(out, values, strict=True):
                    if value is not None and value != "":
                        payload[name] = value
                continue
            for payload, value in zip(out, values, strict=True):
                if value is None or value == "":
                    continue
                node = payload
                for part in parts[:-1]:
                    child = node.get(part)
                    if child is None:
                        child = node[part] = {}
                    node = child
                node[parts[-1]] = value
        return out, bad_items

    @staticmethod
    def _items(cells: list[Any], bad_items: dict[int, str]) -> list[Any]:
        values = []
        for row, cell in enumerate(cells):
            try:
                values.append(_items(cell))
            except ValueError as e:
                values.append(None)
                bad_items[row] = f"Invalid JSON: {e}"
        return values


def _items(value: Any) -> Any:
    """An items cell: a JSON list (CSV) or a list of structs (Parquet); nulls inside are absent."""
    if value is None or value == "":
        return None
    if isinstance(value, str | bytes):
        value = json.loads(value)
    if isinstance(value, list):
        return [
            {k: v for k, v in item.items() if v is not None} if isinstance(item, dict) else item
            for item in value
        ]
    return value


# --- the time-order pre-pass --------------------------------------------------------------------


class _Stamp(BaseModel):
    """What sorting a history needs of each row, validated exactly as the Order contract does."""

    model_config = ConfigDict(extra="ignore")

    order_id: Id
    created_at: AwareDatetime


def _micros(t: datetime) -> int:
    return (t - _EPOCH) // _MICROSECOND


class _Index:
    """The pre-pass: created_at of every row, and the rows that cannot be placed in time order."""

    def __init__(self, path: Path, bound: InvalidBound, earlier: Sequence[BadRow] = ()) -> None:
        self.path = path
        self.bound = bound
        self.created: list[int] = []
        self.usable: list[bool] = []
        self.first_line: dict[str, int] = {}
        self.bad = Collector(path, earlier, bound)
        self.unindexed = len({b.line for b in earlier})  # rows read but not placed (ragged CSV)

    def add(self, line: int, stamp: _Stamp | None, problems: Callable[[], list[BadRow]]) -> None:
        """Record one row; ``problems`` (all of the row's) is asked for only when its stamp is bad."""
        if stamp is None:
            self.created.append(MISSING_CREATED_AT)
            self.usable.append(False)
            self.bad.add(problems())
            return
        self.created.append(_micros(stamp.created_at))
        first = self.first_line.setdefault(stamp.order_id, line)
        self.usable.append(first == line)
        if first != line:
            where = f"row {first}" if self.path.suffix.lower() == ".parquet" else f"line {first}"
            message = f"duplicate order_id {stamp.order_id!r} (first on {where})"
            self.bad.add([BadRow(line, "order_id", message)])


# --- OrderHistory -------------------------------------------------------------------------------


class OrderHistory(abc.ABC):
    """The orders of one file, held compactly; `iter_orders` validates them in time order."""

    def __init__(self, path: Path, index: _Index) -> None:
        self.path = path
        # int64 epoch microseconds, in file order; MISSING_CREATED_AT where the row has none
        self.created_at = np.asarray(index.created, dtype=np.int64)
        self._usable = np.asarray(index.usable, dtype=bool)
        self._prepass_bad = index.bad.rows
        self.max_invalid = index.bound
        self.rows_read = len(self.created_at) + index.unindexed
        # The rows rejected under `max_invalid`, known once `iter_orders` has run to its end.
        self.quarantine: Quarantine | None = None

    def __len__(self) -> int:
        return len(self.created_at)

    @abc.abstractmethod
    def _orders_at(self, rows: np.ndarray) -> Iterator[tuple[int, Order | list[BadRow]]]:
        """(line, Order) for each good row at the positions ``rows``, (line, problems) for a bad one."""

    def time_order(self) -> np.ndarray:
        """Row positions sorted by created_at (stable: ties keep file order), bad rows left out."""
        usable = np.flatnonzero(self._usable)
        return usable[np.argsort(self.created_at[usable], kind="stable")]

    def iter_orders(self) -> Iterator[Order]:
        """Every order in created_at order; after the last, HistoryError if any row was bad, or
        under a bound if more rows were bad than it allows (else `quarantine` lists them)."""
        bad = Collector(self.path, self._prepass_bad, self.max_invalid)
        bad.raise_if_stopped()
        for _, result in self._orders_at(self.time_order()):
            if isinstance(result, Order):
                yield result
            else:
                bad.add(result)
        if self.max_invalid.strict:
            bad.raise_if_any()
        elif len(bad.bad_lines) > self.max_invalid.allowed(self.rows_read):
            raise HistoryError(self.path, bad.rows, bound=self.max_invalid, rows_read=self.rows_read)
        self.quarantine = Quarantine(self.path, self.rows_read, self.max_invalid, sorted(bad.rows))

    def validate(self) -> None:
        """Validate every row without keeping them: HistoryError lists the bad ones."""
        for _ in self.iter_orders():
            pass


class _JsonLinesHistory(OrderHistory):
    """A JSON Lines file: the bytes (memory-mapped when not compressed) and each line's span."""

    def __init__(self, path: Path, bound: InvalidBound = STRICT) -> None:
        self._data, self._mapped = _load_bytes(path)
        index = _Index(path, bound)
        starts: list[int] = []
        ends: list[int] = []
        lines: list[int] = []
        data, size, pos, line = self._data, len(self._data), 0, 0
        while pos < size:
            end = data.find(b"\n", pos)
            end = size if end < 0 else end
            line += 1
            raw = data[pos:end]
            pos = end + 1
            if not raw.strip():
                continue  # blank lines (a trailing newline, a gap) are not rows
            starts.append(pos - len(raw) - 1)
            ends.append(pos - 1)
            lines.append(line)
            try:
                stamp: _Stamp | None = _Stamp.model_validate_json(raw)
            except ValidationError:
                stamp = None
            index.add(line, stamp, functools.partial(_json_problems, line, raw))
        self._starts = np.asarray(starts, dtype=np.int64)
        self._ends = np.asarray(ends, dtype=np.int64)
        self._lines = np.asarray(lines, dtype=np.int64)
        super().__init__(path, index)

    def _orders_at(self, rows: np.ndarray) -> Iterator[tuple[int, Order | list[BadRow]]]:
        data, starts, ends, lines = self._data, self._starts, self._ends, self._lines
        for r in rows.tolist():
            line = int(lines[r])
            try:
                yield line, Order.model_validate_json(data[int(starts[r]) : int(ends[r])])
            except ValidationError as e:
                yield line, _problems(line, e, flat=False)


class _TableHistory(OrderHistory):
    """A CSV or Parquet file as a pyarrow table of its flat columns, plus each row's line number."""

    def __init__(
        self,
        path: Path,
        table: pa.Table,
        lines: np.ndarray,
        bound: InvalidBound = STRICT,
        ragged: Sequence[BadRow] = (),
    ) -> None:
        _require_columns(path, table.column_names, REQUIRED_ORDER_COLUMNS, header_line=_header_line(path))
        self._table = table
        self._lines = lines
        self._unflatten = _Unflattener(path, table.column_names)
        index = _Index(path, bound, ragged)
        ids = _py_values(table.column("order_id"))
        created = _py_values(table.column("created_at"))
        for r, (order_id, created_at) in enumerate(zip(ids, created, strict=True)):
            try:
                stamp: _Stamp | None = _Stamp(order_id=order_id, created_at=created_at)
            except ValidationError:
                stamp = None
            index.add(int(lines[r]), stamp, functools.partial(self._problems_of, r))
        del ids, created
        super().__init__(path, index)

    def _problems_of(self, row: int) -> list[BadRow]:
        _, result = next(self._orders_at(np.array([row], dtype=np.int64)))
        return result if isinstance(result, list) else []

    def _orders_at(self, rows: np.ndarray) -> Iterator[tuple[int, Order | list[BadRow]]]:
        for first in range(0, len(rows), _CHUNK):
            chunk = rows[first : first + _CHUNK]
            taken = self._table.take(pa.array(chunk))
            payloads, bad_items = self._unflatten.payloads([_py_values(c) for c in taken.columns], len(chunk))
            for k, (r, payload) in enumerate(zip(chunk.tolist(), payloads, strict=True)):
                line = int(self._lines[r])
                if k in bad_items:
                    yield line, [BadRow(line, "items", bad_items[k])]
                    continue
                try:
                    yield line, Order.model_validate(payload)
                except ValidationError as e:
                    yield line, _problems(line, e, flat=True)


def _py_values(column: pa.ChunkedArray) -> list[Any]:
    """A column's values as Python objects; aware timestamps built directly (pyarrow's way is slow)."""
    kind = column.type
    if pa.types.is_timestamp(kind) and kind.tz is not None:
        micros = column.cast(pa.timestamp("us", tz=kind.tz)).cast(pa.int64()).to_pylist()
        return [None if m is None else _EPOCH + m * _MICROSECOND for m in micros]
    values: list[Any] = column.to_pylist()
    return values


def _json_problems(line: int, raw: bytes) -> list[BadRow]:
    try:
        Order.model_validate_json(raw)
    except ValidationError as e:
        return _problems(line, e, flat=False)
    return []


def _header_line(path: Path) -> int:
    return 1 if format_of(path) == "csv" else 0


def _require_columns(path: Path, columns: Sequence[str], required: Sequence[str], header_line: int) -> None:
    missing = [c for c in required if c not in columns]
    if missing:
        raise HistoryError(path, [BadRow(header_line, c, "required column is missing") for c in missing])


def _load_bytes(path: Path) -> tuple[bytes | mmap.mmap, Any]:
    if is_compressed(path):
        with gzip.open(path, "rb") as f:
            return f.read(), None
    with path.open("rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return b"", None
        # Mapped, not read: the pages are the page cache's, so a big file costs no private memory.
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        return mapped, mapped


def open_orders(path: Path, max_invalid: InvalidBound = STRICT) -> OrderHistory:
    """Open an orders file (format from its extension) and index it by created_at.

    With a bound, up to that many bad rows are rejected rather than refusing the file.
    """
    path = Path(path)
    fmt = format_of(path)
    if fmt == "jsonl":
        return _JsonLinesHistory(path, max_invalid)
    if fmt == "parquet":
        return _TableHistory(path, *_read_parquet_table(path), max_invalid)
    table, lines, ragged = _read_csv_rows(path)
    if ragged and max_invalid.strict:
        raise HistoryError(path, ragged)
    return _TableHistory(path, table, lines, max_invalid, ragged)


# --- flat file reading --------------------------------------------------------------------------


def _open_text(path: Path) -> io.TextIOBase:
    if is_compressed(path):
        return typing.cast(io.TextIOBase, gzip.open(path, "rt", encoding="utf-8-sig", newline=""))
    return typing.cast(io.TextIOBase, path.open("r", encoding="utf-8-sig", newline=""))


def _read_csv_table(path: Path) -> tuple[pa.Table, np.ndarray]:
    """All cells as strings (empty ones null), with the file line each record starts on."""
    table, lines, ragged = _read_csv_rows(path)
    if ragged:
        raise HistoryError(path, ragged)
    return table, lines


def _read_csv_rows(path: Path) -> tuple[pa.Table, np.ndarray, list[BadRow]]:
    """`_read_csv_table`, and the records whose cells do not match the header, left out of it."""
    with _open_text(path) as f:
        reader = csv.reader(f)
        header = [name.strip() for name in next(reader, [])]
        if not header or not any(header):
            raise HistoryError(path, [BadRow(1, _NOT_AN_OBJECT, "no header row")])
        repeated = sorted({name for name in header if header.count(name) > 1})
        if repeated:
            raise HistoryError(path, [BadRow(1, name, "column appears more than once") for name in repeated])
        batches: list[pa.RecordBatch] = []
        columns: list[list[str | None]] = [[] for _ in header]
        lines: list[int] = []
        bad: list[BadRow] = []
        previous_end = reader.line_num
        for record in reader:
            start, previous_end = previous_end + 1, reader.line_num
            if not record or not any(cell.strip() for cell in record):
                continue
            if len(record) != len(header):
                bad.append(BadRow(start, _NOT_AN_OBJECT, f"{len(record)} cells for {len(header)} columns"))
                continue
            lines.append(start)
            for column, cell in zip(columns, record, strict=True):
                column.append(cell if cell.strip() else None)
            if len(columns[0]) >= 65536:
                batches.append(_string_batch(header, columns))
                columns = [[] for _ in header]
        batches.append(_string_batch(header, columns))
    return pa.Table.from_batches(batches), np.asarray(lines, dtype=np.int64), bad


def _string_batch(header: Sequence[str], columns: Sequence[list[str | None]]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array(c, type=pa.string()) for c in columns], names=list(header))


def _read_parquet_table(path: Path) -> tuple[pa.Table, np.ndarray]:
    """The table with struct columns flattened to dotted names; a row's "line" is its 1-based number."""
    table = pq.read_table(path)
    while any(pa.types.is_struct(field.type) for field in table.schema):
        table = table.flatten()
    # Warehouses keep ids as integers; the contract's ids (and card BINs, postal codes) are text.
    # An integer amount reads the same either way.
    for i, field in enumerate(table.schema):
        if pa.types.is_integer(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(pa.string()))
    return table, np.arange(1, table.num_rows + 1, dtype=np.int64)


def _flat_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Every row of a (small) file with its line number: JSON objects as they are, flat rows unflattened."""
    fmt = format_of(path)
    if fmt == "jsonl":
        data, closer = _load_bytes(path)
        try:
            for number, raw in enumerate(bytes(data).split(b"\n"), start=1):
                if raw.strip():
                    yield number, _json_object(path, number, raw)
        finally:
            if closer is not None:
                closer.close()
        return
    table, lines = _read_csv_table(path) if fmt == "csv" else _read_parquet_table(path)
    for line, record in zip(lines.tolist(), table.to_pylist(), strict=True):
        yield line, {k: v for k, v in record.items() if v is not None}


def _json_object(path: Path, line: int, raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError as e:
        raise HistoryError(path, [BadRow(line, _NOT_AN_OBJECT, f"Invalid JSON: {e}")]) from e
    if not isinstance(value, dict):
        raise HistoryError(path, [BadRow(line, _NOT_AN_OBJECT, "a line must be a JSON object")])
    return value


# --- labels -------------------------------------------------------------------------------------


def _label_word(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


class _LabelRow(BaseModel):
    model_config = ConfigDict(extra="ignore")

    order_id: Id
    # "lost": the order's parcel was lost (carrier's final status or the buyer's claim). It is not
    # a fraud verdict; it feeds the loss-rate features of the seller, address and buyer.
    label: Annotated[Literal["fraud", "legit", "lost"], BeforeValidator(_label_word)]
    reported_at: AwareDatetime


def _label_rows(path: Path) -> list[_LabelRow]:
    path = Path(path)
    if format_of(path) != "jsonl":
        table, _ = _read_csv_table(path) if format_of(path) == "csv" else _read_parquet_table(path)
        _require_columns(path, table.column_names, LABEL_COLUMNS, header_line=_header_line(path))
    bad = Collector(path)
    rows: list[_LabelRow] = []
    for line, record in _flat_records(path):
        try:
            rows.append(_LabelRow.model_validate(record))
        except ValidationError as e:
            bad.add(_problems(line, e, flat=False))
    bad.raise_if_any()
    return rows


def read_labels(path: Path) -> list[Label]:
    """One Label per order: fraud wins over legit, dated by the earliest report of the winning label.

    Sorted by (reported_at, order_id). Raises HistoryError listing the bad rows. ``lost`` rows are
    parcel outcomes, not verdicts: `read_losses` reads them.
    """
    merged: dict[str, Label] = {}
    for row in _label_rows(path):
        if row.label == LOST:
            continue
        label = Label(row.order_id, row.label == FRAUD, row.reported_at)
        known = merged.get(row.order_id)
        if known is None or (label.is_fraud, known.reported_at) > (known.is_fraud, label.reported_at):
            merged[row.order_id] = label
    return sorted(merged.values(), key=lambda label: (label.reported_at, label.order_id))


def read_losses(path: Path) -> list[Loss]:
    """The ``lost`` rows of a labels file: one Loss per order, dated by its earliest report."""
    earliest: dict[str, Loss] = {}
    for row in _label_rows(path):
        known = earliest.get(row.order_id)
        if row.label == LOST and (known is None or row.reported_at < known.reported_at):
            earliest[row.order_id] = Loss(row.order_id, row.reported_at)
    return sorted(earliest.values(), key=lambda loss: (loss.reported_at, loss.order_id))
