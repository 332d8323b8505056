"""The demo's short HTML report: headline figures and a few charts, as inline SVG (no plotting library)."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dozor_training.fraud.simulator import SimulatedOrder

_COLOURS = {
    "APPROVE": "#4c9a2a",
    "REVIEW": "#e0a100",
    "DECLINE": "#c0392b",
    "fraud": "#c0392b",
    "legit": "#4c78a8",
}


def bar_chart(
    title: str, bars: Sequence[tuple[str, float]], *, unit: str = "", colours: dict[str, str] | None = None
) -> str:
    """Horizontal bars with their values, as an SVG element."""
    width, row, left = 560, 28, 190
    height = row * len(bars) + 40
    top = max((v for _, v in bars), default=0) or 1
    parts = [f'<svg width="{width}" height="{height}" role="img" aria-label="{html.escape(title)}">']
    parts.append(f'<text x="0" y="16" font-weight="bold">{html.escape(title)}</text>')
    for n, (label, value) in enumerate(bars):
        y = 28 + n * row
        length = max(0.0, value) / top * (width - left - 90)
        colour = (colours or _COLOURS).get(label, "#4c78a8")
        parts.append(f'<text x="0" y="{y + 15}">{html.escape(label)}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{length:.1f}" height="{row - 8}" fill="{colour}"/>')
        parts.append(f'<text x="{left + length + 6:.1f}" y="{y + 15}">{value:,.0f}{unit}</text>')
    parts.append("</svg>")
    return "".join(parts)


def histogram(title: str, series: Mapping[str, Sequence[float]], *, bins: Any, xlabel: str) -> str:
    """Overlaid histograms (share of each series per bin), as an SVG element."""
    width, height, pad = 560, 220, 36
    edges = np.asarray(bins, dtype=float)
    shares = {}
    for name, values in series.items():
        counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
        shares[name] = counts / max(counts.sum(), 1)
    top = max((float(s.max()) for s in shares.values() if s.size), default=1.0) or 1.0
    step = (width - 2 * pad) / (len(edges) - 1)
    parts = [f'<svg width="{width}" height="{height + 40}" role="img" aria-label="{html.escape(title)}">']
    parts.append(f'<text x="0" y="16" font-weight="bold">{html.escape(title)}</text>')
    for k, (name, share) in enumerate(shares.items()):
        colour = _COLOURS.get(name, "#888")
        for i, value in enumerate(share):
            bar = value / top * (height - 40)
            x = pad + i * step + k * step / len(shares)
            parts.append(
                f'<rect x="{x:.1f}" y="{height - bar:.1f}" width="{step / len(shares) - 1:.1f}" '
                f'height="{bar:.1f}" fill="{colour}" opacity="0.85"/>'
            )
        parts.append(
            f'<text x="{width - 120}" y="{34 + 16 * k}" fill="{colour}">■ {html.escape(name)}</text>'
        )
    for i in range(0, len(edges), max(1, (len(edges) - 1) // 5)):
        parts.append(
            f'<text x="{pad + i * step - 8:.1f}" y="{height + 16}" font-size="11">{edges[i]:g}</text>'
        )
    parts.append(f'<text x="{width / 2 - 40}" y="{height + 34}" font-size="12">{html.escape(xlabel)}</text>')
    parts.append("</svg>")
    return "".join(parts)


_PARCEL_RULES = (
    ("Dozor (STALLED or LIKELY_LOST)", "dozor_stalled_or_likely_lost"),
    ("STALLED (lane deadline)", "stalled"),
    ("LIKELY_LOST (loss model)", "likely_lost"),
    ("baseline: no scan for 30 days", "baseline_no_scan_30_days"),
)


def parcel_table(parcels: Mapping[str, Any]) -> str:
    """Each alerting rule against the simulator's truth, as an HTML table."""
    rows = []
    for label, key in _PARCEL_RULES:
        m = parcels[key]
        cells = (
            label,
            f"{m['alerted']:,}",
            f"{m['precision']:.2f}",
            f"{m['recall']:.2f}",
            "-" if m["median_lead_days"] is None else f"{m['median_lead_days']:.1f}",
            f"{m['false_alerts_per_1000_delivered']:.1f}",
        )
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "alerting rule",
            "parcels alerted",
            "precision",
            "recall",
            "median lead (days)",
            "false alerts / 1,000 delivered",
        )
    )
    return (
        f"<h2>Parcel alerts</h2><p>{parcels['parcels_judged']:,} parcels whose outcome was known by "
        f"the end of the run ({html.escape(json.dumps(parcels['outcomes']))}); lead time is how long "
        "before the loss became certain (carrier's LOST scan or the buyer's claim) the first alert "
        f"came.</p><table><tr>{head}</tr>{''.join(rows)}</table>"
    )


def write_report(
    path: Path,
    summary: dict[str, Any],
    history: list[SimulatedOrder],
    decisions: dict[str, dict[str, Any]],
    latencies: list[float],
) -> None:
    """report.html: the summary, decisions by type, scores against the truth, money, API latency."""
    truth = {s.order["order_id"]: s.is_fraud for s in history}
    scores: dict[str, list[float]] = {"legit": [], "fraud": []}
    for order_id, decision in decisions.items():
        scores["fraud" if truth.get(order_id) else "legit"].append(float(decision["score"]))
    money = summary["money_rub"]
    charts = [
        bar_chart("Decisions by type", sorted(summary["decisions"].items())),
        histogram(
            "Fraud score, by the simulator's truth", scores, bins=np.linspace(0, 1, 21), xlabel="score"
        ),
        bar_chart(
            "Loss under each policy (RUB)",
            [
                ("approve everything", money["loss_if_approving_everything"]),
                ("rules only", money["loss_with_rules_only"]),
                ("Dozor", money["loss_with_dozor"]),
            ],
            colours={"approve everything": "#c0392b", "rules only": "#e0a100", "Dozor": "#4c9a2a"},
        ),
    ]
    if latencies:
        edges = np.linspace(0, float(np.percentile(latencies, 99.5)) * 1.05, 26)
        charts.append(
            histogram("HTTP API latency (ms)", {"checkout calls": latencies}, bins=edges, xlabel="ms")
        )
    parcels = summary.get("parcel_alerts")
    if parcels:
        charts.append(bar_chart("Parcel alerts raised, by type", sorted(parcels["raised_by_type"].items())))
    if summary.get("dlq_depths"):
        charts.append(bar_chart("Messages in each DLQ", sorted(summary["dlq_depths"].items())))
    body = "\n".join(f"<figure>{chart}</figure>" for chart in charts)
    if parcels:
        body += "\n" + parcel_table(parcels)
    headline = html.escape(json.dumps(summary, indent=2))
    path.write_text(
        f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Dozor demo report</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;color:#222}}
figure{{display:inline-block;margin:1em;vertical-align:top}} svg{{font-size:13px}}
pre{{background:#f5f5f5;padding:1em;font-size:12px;overflow:auto}}
table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:4px}}</style></head>
<body><h1>Dozor demo: {summary["orders"]:,} simulated orders through the local stack</h1>
<p>Fraud precision {summary["fraud"]["precision"]}, recall {summary["fraud"]["recall"]};
saved {money["saved_vs_approve_all"]:,} RUB against approving everything and
{money["saved_vs_rules_only"]:,} RUB against the rules alone. HTTP API p50
{summary["http_api"]["p50_ms"]} ms, p99 {summary["http_api"]["p99_ms"]} ms.</p>
{body}
<h2>summary.json</h2><pre>{headline}</pre></body></html>
""",
        encoding="utf-8",
    )
