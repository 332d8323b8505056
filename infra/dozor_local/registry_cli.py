"""`dozor publish` and `dozor registry`: put trained models into the registry, roll forward and back.

    dozor publish models/artifacts/fraud-20261125-1a2b3c4d            # upload, validate, make active
    dozor publish models/artifacts/fraud-20261126-5e6f7a8b --shadow   # score alongside, never act
    dozor publish --version fraud-20261125-1a2b3c4d                   # rollback: point at an old one
    dozor publish --shadow --clear                                    # stop shadowing
    dozor registry status | history

Where the registry is: `--bucket`, `--active-parameter`, `--shadow-parameter` (defaults: the
MODEL_BUCKET_NAME, ACTIVE_MODEL_PARAMETER and SHADOW_MODEL_PARAMETER variables, i.e. the stack
outputs ModelBucketName, ActiveModelParameterName, ShadowModelParameterName), `--endpoint-url` for
an emulator (default AWS_ENDPOINT_URL), `--region` (default AWS_DEFAULT_REGION). The functions pick
a new version up within their MODEL_REFRESH_SECONDS (120 by default), without a redeploy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any


def _registry_options(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    parser.add_argument("--bucket", default=env("MODEL_BUCKET_NAME"), help="model bucket (MODEL_BUCKET_NAME)")
    parser.add_argument(
        "--active-parameter",
        default=env("ACTIVE_MODEL_PARAMETER"),
        help="SSM parameter naming the active version (ACTIVE_MODEL_PARAMETER)",
    )
    parser.add_argument(
        "--shadow-parameter",
        default=env("SHADOW_MODEL_PARAMETER"),
        help="SSM parameter naming the shadow version (SHADOW_MODEL_PARAMETER)",
    )
    parser.add_argument("--endpoint-url", default=env("AWS_ENDPOINT_URL"), help="an emulator's endpoint")
    parser.add_argument("--region", default=env("AWS_DEFAULT_REGION") or env("AWS_REGION"))


def configure_publish(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "directory", nargs="?", type=Path, help="artifact directory (model.ubj, metadata.json)"
    )
    parser.add_argument("--version", help="point at a version published before (rollback), or 'packaged'")
    parser.add_argument(
        "--shadow", action="store_true", help="make it the shadow model instead of the active one"
    )
    parser.add_argument("--clear", action="store_true", help="with --shadow: stop shadowing")
    _registry_options(parser)
    parser.set_defaults(run=_run_publish)


def configure_registry(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=["status", "history"])
    _registry_options(parser)
    parser.set_defaults(run=_run_registry)


def _registry(args: argparse.Namespace) -> Any:
    import boto3  # noqa: PLC0415 - only for the registry commands

    from dozor.adapters.registry import ModelRegistry  # noqa: PLC0415
    from dozor.adapters.s3 import S3ModelArtifacts  # noqa: PLC0415
    from dozor.adapters.ssm import SsmModelPointers  # noqa: PLC0415

    missing = [
        flag
        for flag, value in (("--bucket", args.bucket), ("--active-parameter", args.active_parameter))
        if not value
    ]
    if missing:
        raise SystemExit(
            f"dozor: say where the registry is: {', '.join(missing)} (or the environment variables)"
        )
    session = boto3.Session(region_name=args.region)
    artifacts = S3ModelArtifacts(session.client("s3", endpoint_url=args.endpoint_url), args.bucket)
    pointers = SsmModelPointers(
        session.client("ssm", endpoint_url=args.endpoint_url),
        args.active_parameter,
        args.shadow_parameter,
        max_age=0,  # a person asking wants the value now, not a cached one
    )
    return ModelRegistry(artifacts, pointers)


def _run_publish(args: argparse.Namespace) -> int:
    from dozor.domain.errors import DozorError  # noqa: PLC0415
    from dozor.domain.fraud.registry import ModelRole  # noqa: PLC0415

    role = ModelRole.SHADOW if args.shadow else ModelRole.ACTIVE
    chosen = [bool(args.directory), bool(args.version), bool(args.clear)]
    if sum(chosen) != 1:
        print("dozor publish: give exactly one of DIR, --version V, --shadow --clear", file=sys.stderr)
        return 2
    if args.clear and not args.shadow:
        print("dozor publish: --clear stops shadowing and needs --shadow", file=sys.stderr)
        return 2
    registry = _registry(args)
    try:
        if args.directory:
            published = registry.publish(args.directory, role)
        elif args.version:
            published = registry.point(args.version, role)
        else:
            published = registry.clear_shadow()
    except DozorError as error:
        print(f"dozor publish: {error}", file=sys.stderr)
        return 1
    print(
        json.dumps(
            {
                "role": str(published.role),
                "version": published.version,
                "uploaded": published.uploaded,
                "parameter_revision": published.revision,
            }
        )
    )
    return 0


def _run_registry(args: argparse.Namespace) -> int:
    from dozor.domain.errors import DozorError  # noqa: PLC0415

    registry = _registry(args)
    try:
        if args.what == "status":
            status = registry.status()
            print(json.dumps({"active": status.active, "shadow": status.shadow, "versions": status.versions}))
        else:
            for change in registry.history():
                print(
                    json.dumps(
                        {
                            "role": str(change.role),
                            "revision": change.revision,
                            "version": change.version,
                            "changed_at": change.changed_at.isoformat() if change.changed_at else None,
                        }
                    )
                )
    except DozorError as error:
        print(f"dozor registry: {error}", file=sys.stderr)
        return 1
    return 0
