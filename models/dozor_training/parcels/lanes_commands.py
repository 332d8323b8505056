"""`dozor lanes report`: lane reliability for managers and merchants, from a history's files.

    dozor lanes report --orders h/orders.jsonl --labels h/labels.jsonl --shipments h/shipments.jsonl \\
        [--alerts h/alerts.jsonl] --out lanes/ [--seller S1 ...] [--publish --bucket BUCKET]

Writes ``lanes.{html,csv,json}`` (the marketplace) and ``seller-<id>.{html,csv,json}`` for each
`--seller`. From the live tables: `dozor export-history --out h/` first, with the parcel tables
(`--shipments-table`, `--alerts-table`) for shipments.jsonl and alerts.jsonl; without a shipments
file the parcel figures are empty and the carrier is ``unknown``. `--alerts` judges the true-alert
shares by the sweeper's alerts; without it, by a silence rule (the report says which). `--publish` puts the
marketplace report (`reports/lanes/latest.json`) and every seller's own view into the model bucket,
which `GET /v1/lanes` and `GET /v1/lanes/sellers/{seller_id}` serve.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from datetime import datetime
from pathlib import Path

from dozor.domain.parcels.lanes import LaneDeadlines
from dozor_training.history import HistoryError, UnsupportedFormatError
from dozor_training.parcels.lanes_html import write_lane_report
from dozor_training.parcels.lanes_report import LaneReport, all_sellers, build_report, read_rows

INPUT_ERROR = 2
SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def configure(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="lanes_command", required=True)
    report = commands.add_parser("report", help="write the lane report (HTML with charts, CSV, JSON)")
    report.add_argument("--orders", type=Path, required=True, help="orders file (.csv, .jsonl, .parquet)")
    report.add_argument("--labels", type=Path, help="labels file (fraud, legit, lost)")
    report.add_argument("--shipments", type=Path, help="shipments.jsonl (scan events) for the parcel figures")
    report.add_argument(
        "--alerts",
        type=Path,
        help="alerts.jsonl (the sweeper's alerts, as export-history writes them) for the true-alert "
        "shares (without it: a parcel silent past its lane's STALLED deadline counts as alerted)",
    )
    report.add_argument(
        "--deadlines",
        type=Path,
        help="a parcel model directory whose lanes.json judges alerts "
        "(default: deadlines learned from this history's delivered parcels)",
    )
    report.add_argument("--out", type=Path, required=True, help="directory for the report files")
    report.add_argument("--seller", action="append", default=[], help="also write this seller's own view")
    report.add_argument("--publish", action="store_true", help="put the report into the model bucket")
    report.add_argument("--bucket", default=os.environ.get("MODEL_BUCKET_NAME"), help="the model bucket")
    report.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"), help="an emulator")
    report.set_defaults(run=report_command)


def report_command(args: argparse.Namespace) -> int:
    if args.publish and not args.bucket:
        print("dozor lanes report: --publish needs --bucket (or MODEL_BUCKET_NAME)", file=sys.stderr)
        return INPUT_ERROR
    try:
        deadlines = LaneDeadlines.load(args.deadlines) if args.deadlines else None
        rows = read_rows(args.orders, args.labels, args.shipments, deadlines, args.alerts)
    except (HistoryError, UnsupportedFormatError, OSError, ValueError) as e:
        print(f"dozor lanes report: {e}", file=sys.stderr)
        return INPUT_ERROR
    report = build_report(rows, all_sellers(rows) if args.publish else args.seller)
    files = {"marketplace": {k: str(p) for k, p in write_lane_report(report.marketplace, args.out).items()}}
    for seller in args.seller:
        stem = "seller-" + SAFE_NAME.sub("_", seller)
        files[seller] = {
            k: str(p) for k, p in write_lane_report(report.sellers[seller], args.out, stem).items()
        }
    summary: dict[str, object] = {
        "files": files,
        "parcels": len(rows),
        "alerts_from": report.marketplace["alerts_from"],
        "overall": report.marketplace["overall"],
    }
    if args.publish:
        summary["published"] = publish(report, args.bucket, args.endpoint_url)
    print(json.dumps(summary, indent=2))
    return 0


def publish(report: LaneReport, bucket: str, endpoint_url: str | None = None) -> list[str]:
    """Put the report into the bucket as one generation (named by when it was made); the keys written."""
    import boto3  # noqa: PLC0415 - only --publish pays for it

    from dozor.adapters.s3_reports import S3LaneReports  # noqa: PLC0415

    generation = datetime.fromisoformat(report.marketplace["generated_at"]).strftime("%Y%m%dT%H%M%SZ")
    client = boto3.client("s3", endpoint_url=endpoint_url)
    keys = S3LaneReports(client, bucket).publish(report.marketplace, report.sellers, generation)
    return [f"s3://{bucket}/{k}" for k in keys]
