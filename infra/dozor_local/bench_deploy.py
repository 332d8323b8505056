"""How long deploying template.yaml onto moto takes, cold and warm (`make bench`; not a test)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from moto import mock_aws

from dozor_local.stack import LocalStack

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


def main(warm_deploys: int = 5) -> None:
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-central-1")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "testing")
    with mock_aws():
        started = time.perf_counter()
        LocalStack.deploy(TEMPLATE, stack_name="cold")
        cold = time.perf_counter() - started
        warm = []
        for i in range(warm_deploys):
            started = time.perf_counter()
            LocalStack.deploy(TEMPLATE, stack_name=f"warm{i}")
            warm.append(time.perf_counter() - started)
    print(
        f"deploy template.yaml on moto: cold {cold:.3f} s, warm median {sorted(warm)[len(warm) // 2]:.3f} s"
    )


if __name__ == "__main__":
    main()
