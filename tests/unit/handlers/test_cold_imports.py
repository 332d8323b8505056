"""What a cold ScoreOrder container imports: nothing training-only, and nothing that only another
function or the documentation routes use.

Checkout waits on this function's cold start, so a module it imports for nothing costs every
cold container (`make bench-scoring`, `cold_init_ratio_to_boto3`). A child interpreter in Lambda's
environment does what a cold container does before its first request (import the handler, load
the packaged model) and reports the modules loaded. `tests/unit/local/test_layer.py` checks every
handler against the layer's packages; this test is about the scoring function's own imports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

CHILD = """
import json, sys
import dozor.handlers.fraud.score_order
from dozor.domain.fraud.model import FraudModel
FraudModel.load()
print(json.dumps(sorted(sys.modules)))
"""

# Each with why the scoring function must not pay for it at its cold start.
NOT_AT_SCORING_COLD_START = {
    # training and the local stack, never deployed
    "xgboost": "training",
    "scipy": "training (xgboost's)",
    "sklearn": "training",
    "matplotlib": "training reports",
    "pyarrow": "training data",
    "moto": "the local stack",
    "yaml": "the local stack (template.yaml)",
    "dozor_training": "training",
    "dozor_local": "the local stack",
    # other functions' code
    "dozor.handlers.console": "ConsoleFunction and ReviewIntakeFunction",
    "dozor.console": "the console's page",
    "dozor.handlers.parcels": "the parcel functions",
    "dozor.domain.parcels": "the parcel functions",
    "dozor.domain.fraud.reviews": "the console's review desk",
    "dozor.domain.fraud.lists": "the console's ops lists",
    "dozor.domain.feedback": "FeedbackFunction and the parcel functions (the Feedback contract's model)",
    "dozor.domain.fraud.labels": "FeedbackFunction",
    "dozor.adapters.dynamodb.labels": "FeedbackFunction",
    "aws_lambda_powertools.utilities.batch": "the queue functions",
    # the documentation routes, set up on their first request (score_order.document_api)
    "dozor.handlers.api_document": "GET /v1/openapi.json",
    "aws_lambda_powertools.event_handler.openapi.models": "the OpenAPI document's security scheme",
    "aws_lambda_powertools.event_handler.openapi.swagger_ui": "GET /v1/docs",
    # every provider of powertools' parameters utility comes with any one of them; the adapters
    # make their one GetParameter / GetSecretValue call themselves
    "aws_lambda_powertools.utilities.parameters": "nothing: adapters.ssm and adapters.secrets call boto3",
}


def _loaded_by_a_cold_container() -> set[str]:
    env = {k: v for k, v in os.environ.items() if k != "POWERTOOLS_TRACE_DISABLED"}
    env |= {
        "PYTHONPATH": str(ROOT / "functions"),
        "LAMBDA_TASK_ROOT": str(ROOT / "functions"),  # inside Lambda: the X-Ray tracer is on
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    child = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert child.returncode == 0, child.stderr[-3000:]
    return set(json.loads(child.stdout.strip().splitlines()[-1]))


def test_the_scoring_cold_start_imports_nothing_only_others_use() -> None:
    loaded = _loaded_by_a_cold_container()
    # what it does need, so that an empty or broken report cannot pass
    assert {"dozor.handlers.fraud.score_order", "dozor.domain.trees", "numpy", "pydantic"} <= loaded
    needless = {
        name: why
        for name, why in NOT_AT_SCORING_COLD_START.items()
        if any(module == name or module.startswith(name + ".") for module in loaded)
    }
    assert not needless, f"imported at the scoring function's cold start for nothing it does: {needless}"
