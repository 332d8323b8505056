"""The lane report as files: ``lanes.json``, ``lanes.csv`` and ``lanes.html`` (inline SVG charts).

The HTML needs nothing beside it (no scripts, no images to fetch), so it can be mailed to a
merchant or opened from a bucket. Small-sample figures are shown with a dagger and greyed.
"""

from __future__ import annotations

import csv
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dozor_training.parcels.lanes_report import AREA_NAMES, AREAS, GROUPINGS, dumps

FIGURE_COLUMNS = (
    "parcels",
    "delivered",
    "lost",
    "returned",
    "open",
    "delivery_days_p50",
    "delivery_days_p90",
    "delivery_days_p99",
    "lost_share",
    "returned_share",
    "orders_labelled",
    "fraud_orders",
    "fraud_rate",
    "value_rub",
    "fraud_value_rub",
    "chargeback_rate_by_value",
    "alerts",
    "true_alerts",
    "true_alert_share",
    "small_sample",
)
KEY_COLUMNS = ("carrier", "region", "area", "week")
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#7f7f7f")
SHARES = {"lost_share", "returned_share", "fraud_rate", "chargeback_rate_by_value", "true_alert_share"}


def write_lane_report(view: Mapping[str, Any], out_dir: Path, stem: str = "lanes") -> dict[str, Path]:
    """Write `<stem>.json`, `<stem>.csv` and `<stem>.html` for a marketplace or a seller view."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {kind: out_dir / f"{stem}.{kind}" for kind in ("json", "csv", "html")}
    paths["json"].write_text(dumps(view), encoding="utf-8")
    write_csv(view, paths["csv"])
    paths["html"].write_text(render_html(view), encoding="utf-8")
    return paths


# --- CSV ----------------------------------------------------------------------------------------


def csv_rows(view: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One flat row per group: grouping, keys, then the figures.

    In a seller's view every figure comes twice: `seller_<figure>` and `marketplace_<figure>`.
    """
    groups: list[tuple[str, Mapping[str, Any]]] = [("overall", {"overall": view["overall"]})]
    groups += [(name, entry) for name in GROUPINGS for entry in view.get(name, [])]
    rows = []
    for name, entry in groups:
        row: dict[str, Any] = {"grouping": name, **{k: entry.get(k, "") for k in KEY_COLUMNS}}
        row["alerts_from"] = view.get("alerts_from", "")  # which alerts true_alert_share judges
        figures = entry["overall"] if name == "overall" else entry
        if view["view"] == "seller":
            for side in ("seller", "marketplace"):
                values = figures.get(side) or {}
                row.update({f"{side}_{c}": values.get(c, "") for c in FIGURE_COLUMNS})
        else:
            row.update({c: figures.get(c, "") for c in FIGURE_COLUMNS})
        rows.append(row)
    return rows


def write_csv(view: Mapping[str, Any], path: Path) -> None:
    rows = csv_rows(view)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


# --- SVG charts ---------------------------------------------------------------------------------


def grouped_bars(
    title: str, categories: Sequence[str], series: Mapping[str, Sequence[float | None]], *, percent: bool
) -> str:
    """Bars per category, one per series (None: no bar). Values in [0, max]; percent formats as %."""
    width, height, left, bottom, top = 760, 300, 56, 60, 30
    values = [v for vs in series.values() for v in vs if v is not None]
    peak = max(values, default=0.0) or 1.0
    slot = (width - left - 10) / max(len(categories), 1)
    bar = slot * 0.8 / max(len(series), 1)
    plot = height - bottom - top
    parts = [_svg_open(title, width, height), _text(width / 2, 18, title, anchor="middle", weight="bold")]
    for k in range(5):
        value = peak * k / 4
        y = top + plot - plot * k / 4
        parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(_text(left - 4, y + 4, _fmt(value, percent), anchor="end"))
    for c, category in enumerate(categories):
        x0 = left + c * slot + slot * 0.1
        for s, vs in enumerate(series.values()):
            v = vs[c]
            if v is None:
                continue
            h = plot * v / peak
            x = x0 + s * bar
            parts.append(
                f'<rect x="{x:.1f}" y="{top + plot - h:.1f}" width="{bar * 0.92:.1f}" height="{h:.1f}" '
                f'fill="{COLOURS[s % len(COLOURS)]}"><title>{html.escape(category)}: {_fmt(v, percent)}'
                "</title></rect>"
            )
        parts.append(_text(left + c * slot + slot / 2, height - bottom + 16, category, anchor="middle"))
    parts += _legend(list(series), left, height - 22)
    parts.append("</svg>")
    return "".join(parts)


def line_chart(
    title: str, xs: Sequence[str], series: Mapping[str, Sequence[float | None]], *, percent: bool
) -> str:
    """One line per series over `xs` (weeks); a None breaks the line."""
    width, height, left, bottom, top = 760, 300, 56, 60, 30
    values = [v for vs in series.values() for v in vs if v is not None]
    peak = max(values, default=0.0) or 1.0
    plot_w, plot_h = width - left - 20, height - bottom - top
    step = plot_w / max(len(xs) - 1, 1)
    parts = [_svg_open(title, width, height), _text(width / 2, 18, title, anchor="middle", weight="bold")]
    for k in range(5):
        y = top + plot_h - plot_h * k / 4
        parts.append(f'<line x1="{left}" x2="{width - 20}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(_text(left - 4, y + 4, _fmt(peak * k / 4, percent), anchor="end"))
    label_every = max(1, len(xs) // 8)
    for i, x in enumerate(xs):
        if i % label_every == 0:
            parts.append(_text(left + i * step, height - bottom + 16, x[5:], anchor="middle"))
    for s, (name, vs) in enumerate(series.items()):
        colour = COLOURS[s % len(COLOURS)]
        segment: list[str] = []
        for i, v in enumerate([*vs, None]):
            if v is None:
                if len(segment) > 1:
                    points = " ".join(segment)
                    parts.append(
                        f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>'
                    )
                segment = []
                continue
            cx, cy = left + i * step, top + plot_h - plot_h * v / peak
            segment.append(f"{cx:.1f},{cy:.1f}")
            parts.append(
                f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="2.5" fill="{colour}">'
                f"<title>{html.escape(name)} {html.escape(xs[i])}: {_fmt(v, percent)}</title></circle>"
            )
    parts += _legend(list(series), left, height - 22)
    parts.append("</svg>")
    return "".join(parts)


def _svg_open(title: str, width: int, height: int) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{html.escape(title)}" font-family="sans-serif" font-size="12">'
        f'<rect width="{width}" height="{height}" fill="white"/>'
    )


def _text(x: float, y: float, text: str, *, anchor: str = "start", weight: str = "normal") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-weight="{weight}">'
        f"{html.escape(text)}</text>"
    )


def _legend(names: Sequence[str], x: float, y: float) -> list[str]:
    parts, at = [], x
    for s, name in enumerate(names):
        parts.append(
            f'<rect x="{at:.1f}" y="{y - 9:.1f}" width="10" height="10" fill="{COLOURS[s % len(COLOURS)]}"/>'
        )
        parts.append(_text(at + 14, y, name))
        at += 24 + 7 * len(name)
    return parts


def _fmt(value: float | None, percent: bool) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.1f}%" if percent else f"{value:.1f}"


# --- the charts of a report ---------------------------------------------------------------------


def _figures(entry: Mapping[str, Any], seller: bool) -> Mapping[str, Any]:
    return (entry.get("seller") or {}) if seller else entry


def lost_share_chart(view: Mapping[str, Any]) -> str:
    """Lost share by area, one bar per carrier (the marketplace's, or the seller's own)."""
    seller = view["view"] == "seller"
    entries = view["by_carrier_area"]
    areas = [a for a in AREAS if any(e["area"] == a for e in entries)]
    carriers = sorted({e["carrier"] for e in entries})
    table = {(e["carrier"], e["area"]): _figures(e, seller).get("lost_share") for e in entries}
    series = {c: [table.get((c, a)) for a in areas] for c in carriers}
    who = "your parcels" if seller else "all sellers"
    return grouped_bars(
        f"Parcels lost, by carrier and destination ({who})",
        [AREA_NAMES[a].replace("rest of Russia, ", "") for a in areas],
        series,
        percent=True,
    )


def delivery_chart(view: Mapping[str, Any]) -> str:
    seller = view["view"] == "seller"
    entries = view["by_area"]
    names = [AREA_NAMES[e["area"]].replace("rest of Russia, ", "") for e in entries]
    series = {
        q: [_figures(e, seller).get(f"delivery_days_{q}") for e in entries] for q in ("p50", "p90", "p99")
    }
    return grouped_bars("Delivery time in days (order to delivery)", names, series, percent=False)


def trend_chart(
    view: Mapping[str, Any], figure: str = "lost_share", title: str = "Parcels lost, by week"
) -> str:
    seller = view["view"] == "seller"
    weeks = list(view["weeks"])
    entries = view["weekly"]
    areas = [a for a in AREAS if any(e["area"] == a for e in entries)]
    table = {(e["week"], e["area"]): _figures(e, seller).get(figure) for e in entries}
    series = {
        AREA_NAMES[a].replace("rest of Russia, ", ""): [table.get((w, a)) for w in weeks] for a in areas
    }
    return line_chart(f"{title} (week of the order)", weeks, series, percent=True)


# --- HTML ---------------------------------------------------------------------------------------

TABLE_FIGURES = (
    ("parcels", "parcels"),
    ("delivery_days_p50", "p50 d"),
    ("delivery_days_p90", "p90 d"),
    ("delivery_days_p99", "p99 d"),
    ("lost_share", "lost"),
    ("returned_share", "returned"),
    ("fraud_rate", "fraud rate"),
    ("chargeback_rate_by_value", "chargebacks by value"),
    ("alerts", "alerts"),
    ("true_alert_share", "alerts true"),
)


def _value(figures: Mapping[str, Any] | None, key: str) -> str:
    """A figure as shown: percent for shares, a dagger when the group is a small sample."""
    if figures is None:
        return "withheld"
    value = figures.get(key)
    if value is None:
        text = "–"
    elif key in SHARES:
        text = f"{100 * value:.2f}%"
    else:
        text = f"{value:g}" if isinstance(value, float) else str(value)
    return f"{text}†" if figures.get("small_sample") and key != "parcels" else text


def table(view: Mapping[str, Any], grouping: str, keys: Sequence[str]) -> str:
    seller = view["view"] == "seller"
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    suffix = "<br>you / all" if seller else ""
    head += "".join(f"<th>{html.escape(label)}{suffix}</th>" for _, label in TABLE_FIGURES)
    rows = []
    for entry in view[grouping]:
        cells = "".join(
            f"<td>{html.escape(str(entry['area_name'] if k == 'area' else entry[k]))}</td>" for k in keys
        )
        small = (entry["seller"] if seller else entry).get("small_sample")
        for key, _ in TABLE_FIGURES:
            text = (
                _value(entry["seller"], key) + " / " + _value(entry["marketplace"], key)
                if seller
                else _value(entry, key)
            )
            cells += f'<td class="small">{text}</td>' if small else f"<td>{text}</td>"
        rows.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def render_html(view: Mapping[str, Any]) -> str:
    seller = view["view"] == "seller"
    heading = (
        f"Lane reliability for seller {html.escape(view['seller_id'])}" if seller else "Lane reliability"
    )
    overall = view["overall"]
    own = overall["seller"] if seller else overall
    note = (
        f"Each figure: yours / the marketplace's. The marketplace's are withheld where fewer than "
        f"{view['min_other_sellers']} other sellers shipped on the group."
        if seller
        else "All sellers' parcels."
    )
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{heading}</title><style>",
        "body{font-family:sans-serif;margin:2em;max-width:1200px}",
        "table{border-collapse:collapse;font-size:13px}",
        "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right} th{background:#f4f4f4}",
        "td:first-child{text-align:left} .small{color:#999} figure{display:inline-block;margin:0.5em}",
        "</style></head><body>",
        f"<h1>{heading}</h1>",
        f"<p>{own['parcels']} parcels, weeks {html.escape(view['weeks'][0] if view['weeks'] else '–')} to "
        f"{html.escape(view['weeks'][-1] if view['weeks'] else '–')}. {note} "
        f"† marks figures from fewer than {view['small_sample_below']} parcels: "
        "shown, but read them with care. "
        "Lost and returned are shares of finished parcels; delivery time runs from the order to the "
        "DELIVERED scan; the fraud rate counts orders labelled fraud, chargebacks by value their amount; "
        f"alerts: {html.escape(view.get('alerts_rule', ''))}.</p>",
        f"<figure>{lost_share_chart(view)}</figure>",
        f"<figure>{delivery_chart(view)}</figure>",
        f"<figure>{trend_chart(view)}</figure>",
        f"<figure>{trend_chart(view, 'fraud_rate', 'Fraud rate, by week')}</figure>",
        "<h2>Moscow, St Petersburg and the rest of Russia by remoteness tier</h2>",
        table(view, "by_area", ["area"]),
        "<h2>By carrier and destination</h2>",
        table(view, "by_carrier_area", ["carrier", "area"]),
        "<h2>By lane (carrier × destination region)</h2>",
        table(view, "by_lane", ["carrier", "region", "area"]),
        "</body></html>",
    ]
    return "\n".join(parts)
