"""Writing history files in the formats `history` reads: CSV, JSON Lines, Parquet (``.gz`` on text).

Flat files get one column per leaf of the Order contract (``ORDER_COLUMNS``, in its field order)
with ``items`` as a JSON list (a list of structs in Parquet); timestamps are RFC 3339 in UTC.
A file is written to a temporary name and renamed into place, and gzip output has a zero mtime,
so the same rows always give the same bytes and a failed write leaves no half file behind.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import itertools
import json
import types
import typing
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel

from dozor.domain.contracts import Order
from dozor.domain.feedback import Label
from dozor_training.history import FRAUD, LABEL_COLUMNS, LEGIT, format_of, is_compressed


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model behind ``Model | None``, if the annotation is one."""
    candidates = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _order_columns() -> tuple[str, ...]:
    """The flat columns of the Order contract, in its field order: nested models become dotted names."""
    columns: list[str] = []
    for name, field in Order.model_fields.items():
        nested = _nested_model(field.annotation)
        if nested is None:
            columns.append(name)
        else:
            columns.extend(f"{name}.{child}" for child in nested.model_fields)
    return tuple(columns)


ORDER_COLUMNS = _order_columns()
# The contract nests one level deep: (field, sub-field or None) per column.
_ORDER_COLUMN_PATHS = [(top, leaf or None) for top, _, leaf in (c.partition(".") for c in ORDER_COLUMNS)]
_TIMESTAMP_COLUMNS = frozenset({"created_at", "buyer.account_created_at", "reported_at"})
_FLOAT_COLUMNS = frozenset({"amount", "score"})
_ITEM_TYPE = pa.struct(
    [("sku", pa.string()), ("category", pa.string()), ("quantity", pa.int64()), ("unit_price", pa.float64())]
)
_PARQUET_ROW_GROUP = 100_000


def _flat_cells(payload: Mapping[str, Any]) -> list[Any]:
    """An order payload's cells under ORDER_COLUMNS (None where the payload has no value)."""
    cells: list[Any] = []
    for top, leaf in _ORDER_COLUMN_PATHS:
        value = payload.get(top)
        if leaf is not None:
            value = value.get(leaf) if isinstance(value, dict) else None
        cells.append(value)
    return cells


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, datetime):
        return _rfc3339(value)
    return value


def _rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _arrow_type(column: str, sample: Any) -> pa.DataType:
    if column in _TIMESTAMP_COLUMNS:
        return pa.timestamp("us", tz="UTC")
    if column == "items":
        return pa.list_(_ITEM_TYPE)
    if column == "rules":
        return pa.list_(pa.string())
    if column in _FLOAT_COLUMNS:
        return pa.float64()
    if isinstance(sample, list):
        return pa.list_(pa.string())
    if isinstance(sample, bool):
        return pa.bool_()
    return pa.string()


def _arrow_cells(column: str, cells: list[Any]) -> list[Any]:
    if column in _TIMESTAMP_COLUMNS:
        return [datetime.fromisoformat(c) if isinstance(c, str) else c for c in cells]
    return cells


def write_rows(rows: Iterable[Sequence[Any]], columns: Sequence[str], path: Path) -> int:
    """Write rows of cells under ``columns`` in the format of ``path``; returns the row count."""
    path = Path(path)
    fmt = format_of(path)
    if fmt == "parquet":
        with _replacing(path) as partial:
            return _write_parquet(rows, columns, partial)
    count = 0
    with _text_writer(path) as f:
        if fmt == "csv":
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(columns)
            for row in rows:
                writer.writerow([_csv_cell(v) for v in row])
                count += 1
        else:
            for row in rows:
                record = {c: _json_cell(v) for c, v in zip(columns, row, strict=True)}
                f.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
                f.write("\n")
                count += 1
    return count


@contextlib.contextmanager
def _replacing(path: Path) -> Iterator[Path]:
    """A scratch path beside ``path`` that replaces it on success: the file appears whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        yield partial
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


@contextlib.contextmanager
def _text_writer(path: Path) -> Iterator[io.TextIOWrapper]:
    """UTF-8 text to ``path``, gzipped for ``.gz`` with a zero mtime so the same rows give the same bytes."""
    with _replacing(path) as partial, partial.open("wb") as raw, contextlib.ExitStack() as stack:
        binary: Any = raw  # a BufferedWriter or the GzipFile over it
        if is_compressed(path):
            binary = stack.enter_context(
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0)
            )
        text = io.TextIOWrapper(binary, encoding="utf-8", newline="")
        yield text
        text.flush()
        text.detach()  # the binary file is closed by its own context, the gzip stream first


def _json_cell(value: Any) -> Any:
    return _rfc3339(value) if isinstance(value, datetime) else value


def _write_parquet(rows: Iterable[Sequence[Any]], columns: Sequence[str], path: Path) -> int:
    count = 0
    writer: pq.ParquetWriter | None = None
    schema: pa.Schema | None = None
    iterator = iter(rows)
    try:
        while True:
            chunk = [row for _, row in zip(range(_PARQUET_ROW_GROUP), iterator, strict=False)]
            if not chunk and writer is not None:
                break
            cells = list(zip(*chunk, strict=True)) if chunk else [() for _ in columns]
            if schema is None:
                samples = [next((v for v in column if v is not None), None) for column in cells]
                schema = pa.schema([(c, _arrow_type(c, s)) for c, s in zip(columns, samples, strict=True)])
                writer = pq.ParquetWriter(path, schema)
            arrays = [
                pa.array(_arrow_cells(c, list(values)), type=schema.field(c).type)
                for c, values in zip(columns, cells, strict=True)
            ]
            assert writer is not None
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            count += len(chunk)
            if not chunk:
                break
    finally:
        if writer is not None:
            writer.close()
    return count


def write_orders(orders: Iterable[Mapping[str, Any]], path: Path) -> Path:
    """Write contract payloads: one JSON object a line, or flat dotted columns in CSV / Parquet."""
    path = Path(path)
    if format_of(path) == "jsonl":
        _write_jsonl_payloads(orders, path)
    else:
        write_rows((_flat_cells(order) for order in orders), ORDER_COLUMNS, path)
    return path


def _write_jsonl_payloads(orders: Iterable[Mapping[str, Any]], path: Path) -> None:
    with _text_writer(path) as f:
        for order in orders:
            f.write(json.dumps(order, ensure_ascii=False, separators=(",", ":"), default=_json_default))
            f.write("\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return _rfc3339(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_labels(labels: Iterable[Label | Mapping[str, Any]], path: Path) -> Path:
    """Write labels as ``order_id, label (fraud|legit), reported_at`` rows.

    Mappings may carry more columns (the simulator adds ``pattern``); the first row decides which.
    """
    iterator = iter(labels)
    first = next(iterator, None)
    extra: tuple[str, ...] = ()
    if isinstance(first, Mapping):
        extra = tuple(k for k in first if k not in LABEL_COLUMNS)
    columns = (*LABEL_COLUMNS, *extra)

    def cells(label: Label | Mapping[str, Any]) -> list[Any]:
        if isinstance(label, Label):
            return [
                label.order_id,
                FRAUD if label.is_fraud else LEGIT,
                label.reported_at,
                *[None for _ in extra],
            ]
        return [label.get(c) for c in columns]

    head = [] if first is None else [first]
    write_rows((cells(label) for label in itertools.chain(head, iterator)), columns, path)
    return Path(path)
