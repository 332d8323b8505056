"""The demo's lane report: a simulated history through the files `dozor simulate` writes, then
`dozor lanes report` on them (its own module: `parcels` may not import `history_commands`, which
imports the parcel simulator)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dozor_training.fraud.simulator import SimulatedOrder
from dozor_training.history_commands import write_simulated_history
from dozor_training.parcels.lanes_html import write_lane_report
from dozor_training.parcels.lanes_report import build_report, read_rows


def write_simulated_lane_report(
    history: Sequence[SimulatedOrder],
    seed: int,
    out_dir: Path,
    alerts: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, str]:
    """Write lanes.html, lanes.csv and lanes.json (the marketplace's) for a simulated history; with
    the alerts the sweeper raised on its parcels, the true-alert shares judge those."""
    with tempfile.TemporaryDirectory() as tmp:
        files = write_simulated_history(history, Path(tmp), "jsonl", seed)
        alerts_path = None
        if alerts is not None:
            alerts_path = Path(tmp) / "alerts.jsonl"
            alerts_path.write_text("".join(json.dumps(a) + "\n" for a in alerts), encoding="utf-8")
        rows = read_rows(files["orders"], files["labels"], files["shipments"], alerts_path=alerts_path)
    report = build_report(rows)
    return {kind: str(path) for kind, path in write_lane_report(report.marketplace, out_dir).items()}
