"""Bad rows of a history file: how they are reported, how many may be set aside, where they go.

A real export has a few rows no contract accepts (a date in year 9999, a negative amount, an
order without its buyer). By default one such row refuses the whole file, listed with every
other bad row so it is fixed in one round. With a bound (``--max-invalid 25`` rows or ``0.5%`` of
them) up to that many rows are rejected instead: left out of training or scoring and written to a
quarantine file (line, field, reason) for someone to fix at the source. Past the bound the file
is still refused, naming the first rejected rows: a history that broken is the wrong file.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

MAX_LISTED = 20  # bad rows an error message lists before "and N more"
MAX_BAD_ROWS = 1000  # without a bound, a file this broken is the wrong file: stop reading it
QUARANTINE_COLUMNS = ("line", "field", "reason")


class BadRow(NamedTuple):
    line: int  # 1-based line of the file (CSV: the header is line 1); Parquet: 1-based row, 0 the schema
    field: str  # as named in the file: a column, or a dotted path inside a JSON line
    message: str


@dataclass(frozen=True)
class InvalidBound:
    """How many rows of a history may be rejected before the file is refused: a count or a share."""

    rows: int = 0
    share: float | None = None  # of the rows read, in [0, 1]; when set, ``rows`` is ignored

    @classmethod
    def parse(cls, text: str) -> InvalidBound:
        """``25`` (rows) or ``0.5%`` (of the rows read); ValueError on anything else."""
        value = text.strip()
        try:
            if value.endswith("%"):
                share = float(value[:-1]) / 100
                if not 0.0 <= share <= 1.0:
                    raise ValueError
                return cls(share=share)
            rows = int(value)
            if rows < 0:
                raise ValueError
        except ValueError:
            message = f"not a bound on invalid rows: {text!r} (a count like 25 or a share like 0.5%)"
            raise ValueError(message) from None
        return cls(rows=rows)

    @property
    def strict(self) -> bool:
        return self.share is None and self.rows == 0

    def allowed(self, rows_read: int) -> int:
        """Rows that may be rejected out of ``rows_read``."""
        return self.rows if self.share is None else math.floor(self.share * rows_read + 1e-9)

    def stop_at(self) -> int | None:
        """Bad rows at which reading may stop because the file is refused whatever follows."""
        if self.share is not None:
            return None  # the share is of the whole file: it is known only at its end
        return max(MAX_BAD_ROWS, self.rows + 1)

    def __str__(self) -> str:
        return f"{self.share * 100:g}%" if self.share is not None else str(self.rows)


STRICT = InvalidBound()


class HistoryError(ValueError):
    """A history file with bad rows; ``str()`` lists the first ones with their line numbers."""

    def __init__(
        self,
        path: Path,
        bad_rows: Sequence[BadRow],
        total_bad: int | None = None,
        *,
        stopped: bool = False,
        bound: InvalidBound | None = None,
        rows_read: int | None = None,
    ) -> None:
        self.path = path
        self.bad_rows = list(bad_rows)
        self.total_bad = len(self.bad_rows) if total_bad is None else total_bad
        self.stopped = stopped  # reading stopped early: later rows were not checked
        self.bound = bound  # set when rows were rejected, but more than the bound allows
        self.rows_read = rows_read
        super().__init__(self._describe())

    def _describe(self) -> str:
        unit = "row" if path_is_parquet(self.path) else "line"
        shown = sorted(self.bad_rows)[:MAX_LISTED]
        head = f"{self.path}: {self.total_bad} problem{'s' if self.total_bad != 1 else ''}"
        if self.bound is not None and not self.bound.strict:
            lines_bad = len({b.line for b in self.bad_rows})
            of = f" of {self.rows_read:,} read" if self.rows_read is not None else ""
            allowed = self.bound.allowed(self.rows_read or 0)
            head += (
                f" in {lines_bad:,} rows{of}, more than --max-invalid {self.bound} allows ({allowed:,}); "
                "the first rejected"
            )
        if self.stopped:
            head += f" (stopped after {(self.bound or STRICT).stop_at():,} bad rows)"
        lines = [f"{head}:"]
        # Line 0 is a Parquet file's schema: it has no header line.
        lines += [f"  {f'{unit} {b.line}' if b.line else 'schema'}: {b.field}: {b.message}" for b in shown]
        if self.total_bad > len(shown):
            lines.append(f"  and {self.total_bad - len(shown)} more")
        return "\n".join(lines)


def path_is_parquet(path: Path) -> bool:
    return path.suffix.lower() == ".parquet"


class Collector:
    """Bad rows of one pass over a file; raises once so many rows are bad that the file is refused."""

    def __init__(self, path: Path, earlier: Sequence[BadRow] = (), bound: InvalidBound | None = None) -> None:
        self.path = path
        self.bound = bound or STRICT
        self.stop_at = self.bound.stop_at()
        self.rows: list[BadRow] = list(earlier)
        self.bad_lines = {b.line for b in earlier}

    def add(self, rows: Iterable[BadRow]) -> None:
        for row in rows:
            if self.stop_at is None or len(self.rows) < self.stop_at:
                self.rows.append(row)
            self.bad_lines.add(row.line)
        self.raise_if_stopped()

    def raise_if_stopped(self) -> None:
        if self.stop_at is not None and len(self.bad_lines) >= self.stop_at:
            raise HistoryError(self.path, self.rows, len(self.rows), stopped=True, bound=self.bound)

    def raise_if_any(self) -> None:
        if self.rows:
            raise HistoryError(self.path, self.rows)


@dataclass(frozen=True)
class Quarantine:
    """The rows of one history file set aside under a bound, and where they were written."""

    source: Path
    rows_read: int
    bound: InvalidBound
    rejected: Sequence[BadRow]  # one per problem, sorted by line; a row may have several
    file: Path | None = None

    @property
    def rejected_rows(self) -> int:
        return len({b.line for b in self.rejected})

    def written_to(self, path: Path) -> Quarantine:
        """Write the quarantine file (nothing when no row was rejected); the same, with ``file`` set."""
        if not self.rejected:
            return self
        return Quarantine(
            self.source, self.rows_read, self.bound, self.rejected, write_quarantine(self.rejected, path)
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": str(self.source),
            "rows_read": self.rows_read,
            "rejected_rows": self.rejected_rows,
            "problems": len(self.rejected),
            "max_invalid": str(self.bound),
            "file": str(self.file) if self.file else None,
        }

    def summary(self) -> str:
        """One sentence for the training report."""
        share = self.rejected_rows / self.rows_read if self.rows_read else 0.0
        where = f", listed with line, field and reason in `{self.file.name}`" if self.file else ""
        return (
            f"{self.rejected_rows:,} of {self.rows_read:,} rows of `{self.source.name}` ({share:.2%}) were "
            f"rejected and left out (--max-invalid {self.bound}){where}."
        )


def write_quarantine(rejected: Iterable[BadRow], path: Path) -> Path:
    """The rejected rows as CSV: line, field, reason (one row per problem)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(QUARANTINE_COLUMNS)
        writer.writerows(sorted(rejected))
    return path


def quarantine_path_beside(output: Path) -> Path:
    """Where a file's rejected rows go: beside it, ``decisions.csv`` -> ``decisions.quarantine.csv``."""
    name = output.name
    for suffix in (".csv.gz", ".jsonl.gz", ".csv", ".jsonl", ".ndjson", ".json", ".parquet"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return output.with_name(f"{name}.quarantine.csv")
