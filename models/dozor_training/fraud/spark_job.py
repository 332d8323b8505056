"""The entry point of the Spark training job on AWS (EMR Serverless; see infra/spark/README.md).

    spark_job.py --orders s3://B/histories/2026-12/orders.jsonl --labels s3://B/histories/2026-12/labels.jsonl
                 --out s3://B/models/2026-12-01/ [any further `dozor train` option]

Copies the history from S3 to the driver's disk, runs ``dozor train --engine spark`` on it (the
entity kernels and the fit as Spark jobs on the cluster), and copies the artifact directory
(model.ubj, trees.npz, metadata.json, report, card) back to ``--out``, from where
``dozor publish`` takes it (README: "From the job to the registry").
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import boto3

from dozor_training.cli import main as dozor


def _split(url: str) -> tuple[str, str]:
    if not url.startswith("s3://"):
        raise SystemExit(f"spark_job: not an s3:// URL: {url}")
    bucket, _, key = url[5:].partition("/")
    return bucket, key


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="spark_job.py")
    for name in ("--orders", "--labels", "--out"):
        parser.add_argument(name, required=True, help="an s3:// URL")
    args, rest = parser.parse_known_args(argv)
    s3 = boto3.client("s3")
    with tempfile.TemporaryDirectory(prefix="dozor-job-") as tmp:
        local = Path(tmp)
        inputs = {}
        for name in ("orders", "labels"):
            bucket, key = _split(getattr(args, name))
            inputs[name] = local / Path(key).name  # keeps the extension: it names the format
            s3.download_file(bucket, key, str(inputs[name]))
        model = local / "model"
        code = dozor(
            [
                "train",
                "--engine",
                "spark",
                "--orders",
                str(inputs["orders"]),
                "--labels",
                str(inputs["labels"]),
                "--out",
                str(model),
                *rest,
            ]
        )
        if code != 0:
            return code
        bucket, prefix = _split(args.out.rstrip("/") + "/")
        for path in sorted(p for p in model.rglob("*") if p.is_file()):
            s3.upload_file(str(path), bucket, prefix + path.relative_to(model).as_posix())
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
