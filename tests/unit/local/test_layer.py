"""Every Lambda handler imports, loads its model and scores with only the layer's packages.

The layer (infra/build_layer.sh) carries the runtime dependencies of pyproject.toml and their
closure (infra/layer_requirements.py); boto3 and its tree come from the Lambda runtime. A child
interpreter gets an import blocker that refuses every top-level module outside the standard
library, the Lambda package and those distributions, so a handler that reaches for xgboost, scipy
or anything else training-only fails here rather than at a cold start.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[3]
TRAINING_ONLY = ("xgboost", "scipy", "sklearn", "matplotlib", "pyarrow", "moto", "yaml", "samtranslator")

CHILD = """
import importlib, json, sys
allowed = set(json.loads(sys.argv[1]))
handlers = json.loads(sys.argv[2])

import site, sysconfig
paths = sysconfig.get_paths()
installed = tuple({*site.getsitepackages(), paths["purelib"], paths["platlib"]})

class LayerOnly:
    # Refuses what is installed in site-packages but not in the layer (the stdlib stays).

    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in allowed or "." in name:
            return None
        if top.startswith("dozor_"):  # the local stack and training: not deployed
            raise ModuleNotFoundError(f"No module named {name!r} (not deployed)", name=name)
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                where = spec.origin or next(iter(spec.submodule_search_locations or []), "")
                if where.startswith(installed):
                    message = f"No module named {name!r} (not in the Lambda layer)"
                    raise ModuleNotFoundError(message, name=name)
                return spec
        return None

sys.meta_path.insert(0, LayerOnly())
for handler in handlers:
    module, _, function = handler.rpartition(".")
    assert callable(getattr(importlib.import_module(module), function)), handler

import numpy as np
from dozor.domain.fraud.model import FraudModel
from dozor.domain.parcels.model import ParcelLossModel
fraud, parcel = FraudModel.load(), ParcelLossModel.load()
scores, contributions = fraud.scores_and_contributions(np.zeros((1, fraud.trees.num_features), np.float32))
risk = parcel.risk(np.full((1, parcel.trees.num_features), np.nan, np.float32))
assert 0 <= scores[0] <= 1 and contributions.shape == (1, fraud.trees.num_features) and 0 <= risk[0] <= 1
print(json.dumps(sorted({name.partition(".")[0] for name in sys.modules})))
"""


def _layer_requirements() -> object:
    spec = importlib.util.spec_from_file_location(
        "layer_requirements", ROOT / "infra" / "layer_requirements.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def layer_distributions() -> set[str]:
    """The distributions a function finds on Lambda: the layer's closure and the runtime's boto3."""
    layer = _layer_requirements()
    import tomllib  # noqa: PLC0415 - only here

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    closure = layer.closure([Requirement(text) for text in project["dependencies"]])  # type: ignore[attr-defined]
    return set(closure) | set(layer.RUNTIME_PROVIDED)  # type: ignore[attr-defined]


def importable_names(distributions: set[str]) -> set[str]:
    """Top-level module names the given distributions install, and the Lambda package's own."""
    names = {"dozor"}
    for module, owners in metadata.packages_distributions().items():
        if any(_canonical(owner) in distributions for owner in owners):
            names.add(module)
    return names


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def template_handlers() -> list[str]:
    text = (ROOT / "template.yaml").read_text(encoding="utf-8")
    return sorted(set(re.findall(r"^\s+Handler:\s*(\S+)\s*$", text, flags=re.MULTILINE)))


def test_the_layer_carries_no_training_only_distribution() -> None:
    distributions = layer_distributions()
    assert not {_canonical(n) for n in ("xgboost", "xgboost-cpu", "scipy", "scikit-learn")} & distributions
    assert "numpy" in distributions and "boto3" in distributions


@pytest.mark.parametrize("lambda_env", [False, True], ids=["local", "lambda-with-tracing"])
def test_every_handler_imports_and_scores_with_only_the_layer(lambda_env: bool) -> None:
    handlers = template_handlers()
    assert len(handlers) >= 5, handlers
    allowed = importable_names(layer_distributions())
    assert not set(TRAINING_ONLY) & allowed
    env = {**os.environ, "PYTHONPATH": str(ROOT / "functions"), "AWS_DEFAULT_REGION": "eu-west-1"}
    if lambda_env:  # powertools turns the X-Ray tracer on (and patches botocore) inside Lambda only
        env |= {"LAMBDA_TASK_ROOT": str(ROOT / "functions"), "AWS_REGION": "eu-west-1"}
    child = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(sorted(allowed)), json.dumps(handlers)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    loaded = set(json.loads(child.stdout.strip().splitlines()[-1]))
    assert not set(TRAINING_ONLY) & loaded
    assert "numpy" in loaded
