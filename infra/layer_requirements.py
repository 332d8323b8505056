"""Print the Lambda layer's requirements: pinned, hashed, for python3.12 on arm64.

The layer carries the runtime dependencies of pyproject.toml and everything they need, at the
versions of requirements/dev.lock (with its hashes, so pip installs exactly the reviewed files),
minus what the Lambda Python runtime already ships (boto3 and its dependencies). The dependency
closure is read from the metadata of the development virtualenv, whose versions are the lock's.

Neither xgboost nor scipy is a runtime dependency any more: serving walks the trees with NumPy
(`dozor.domain.trees`, from the `trees.npz` of each artifact), and xgboost is in the dev extra.

    python infra/layer_requirements.py > build/layer-requirements.txt
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent

# The python3.12 runtime ships boto3 and its dependency tree, and the layer takes it from there on
# purpose: a pinned copy would add ~30 MB (botocore's service models) to a 68 MB layer, past its
# 80 MB budget, and a second copy in /opt/python would shadow the runtime's and could pair a newer
# urllib3 with the runtime's botocore. The tests run against the lock's boto3; the APIs serving
# calls (DynamoDB, SQS, SNS, SSM, S3 GetObject, Secrets Manager) are years older than any runtime's.
RUNTIME_PROVIDED = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3"}
)
# Declared dependencies that serving can do without. Empty: xgboost (and scipy with it) left the
# runtime dependencies instead (see the module docstring).
NOT_NEEDED: frozenset[str] = frozenset()

# PEP 508 marker values on the python3.12 arm64 Lambda runtime.
LAMBDA_ENVIRONMENT: dict[str, str] = {
    "implementation_name": "cpython",
    "implementation_version": "3.12.0",
    "platform_release": "",
    "platform_version": "",
    "platform_python_implementation": "CPython",
    "python_version": "3.12",
    "python_full_version": "3.12.0",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "aarch64",
    "os_name": "posix",
}


def _applies(requirement: Requirement, extras: frozenset[str]) -> bool:
    if requirement.marker is None:
        return True
    marker = requirement.marker
    return any(marker.evaluate({**LAMBDA_ENVIRONMENT, "extra": extra}) for extra in extras or {""})


def closure(roots: list[Requirement]) -> dict[str, str]:
    """Canonical name -> installed version of every distribution the roots need on Lambda."""
    excluded = RUNTIME_PROVIDED | NOT_NEEDED
    found: dict[str, str] = {}
    pending = [(root, frozenset(root.extras)) for root in roots]
    while pending:
        requirement, extras = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in excluded or name in found:
            continue
        distribution = metadata.distribution(name)
        found[name] = distribution.version
        for text in distribution.requires or []:
            child = Requirement(text)
            if _applies(child, extras):
                pending.append((child, frozenset(child.extras)))
    return found


def locked_blocks(lock: Path) -> dict[str, str]:
    """Canonical name -> the `name==version \\ --hash=...` block of the lock file."""
    blocks: dict[str, str] = {}
    for block in re.split(r"\n(?=\S)", lock.read_text(encoding="utf-8")):
        head = re.match(r"([A-Za-z0-9_.\-]+)==(\S+)", block)
        if head:
            lines = [line for line in block.splitlines() if not line.strip().startswith("#")]
            blocks[canonicalize_name(head.group(1))] = "\n".join(lines).rstrip(" \\")
    return blocks


def main() -> int:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    roots = [Requirement(text) for text in project["dependencies"]]
    needed = closure(roots)
    locked = locked_blocks(ROOT / "requirements" / "dev.lock")
    problems = []
    for name, version in sorted(needed.items()):
        block = locked.get(name)
        if block is None or f"=={version}" not in block.splitlines()[0]:
            locked_as = block.splitlines()[0] if block else "nothing"
            problems.append(f"{name}=={version} is installed but the lock has {locked_as}")
            continue
        print(block)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        print("run `make install` so the virtualenv matches requirements/dev.lock", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
