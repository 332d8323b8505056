"""The model registry on moto: publish, roll forward, roll back, shadow, refusals, fallbacks.

Models are published with the `dozor publish` command and served by the real handlers, with the
stack's bucket and parameters (template.yaml) and the registry cache made to expire at once.
"""

from __future__ import annotations

import io
import json
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from moto.server import ThreadedMotoServer

from dozor.domain.fraud.model import PACKAGED_MODEL_DIR, FraudModel
from dozor.handlers.fraud import order_events, score_order
from dozor.handlers.fraud.wiring import dependencies
from dozor.handlers.wiring import logger
from dozor_local.stack import LocalStack
from dozor_training.cli import main
from tests.helpers.aws_stack import Stack, api_event, make_order, sqs_event

PACKAGED_VERSION = FraudModel.load().version


def artifact(root: Path, version: str, **changes: Any) -> Path:
    """A copy of the packaged model under another version (the booster may stay the same)."""
    directory = root / version
    shutil.copytree(PACKAGED_MODEL_DIR, directory, dirs_exist_ok=True)
    metadata = json.loads((directory / "metadata.json").read_text())
    metadata.update(version=version, **changes)
    (directory / "metadata.json").write_text(json.dumps(metadata))
    return directory


def stranger(order_id: str, n: int) -> dict[str, Any]:
    """An order touching no entity any other order touched: its features are those of a first order."""
    order = make_order(order_id, buyer_id=f"b-{n}", card=f"card-{n}")
    order["seller"]["id"] = f"s-{n}"
    order["ip"] = f"95.165.10.{n}"
    order["shipping"]["address"] = f"ul. Tverskaya 7, kv {n}"
    return order


def publish(*args: str | Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any] | str]:
    capsys.readouterr()
    status = main(["publish", *map(str, args)])
    out, err = capsys.readouterr()
    return status, json.loads(out) if status == 0 else err


def score(stack: Stack, order: dict[str, Any]) -> dict[str, Any]:
    response = score_order.lambda_handler(api_event("POST", "/v1/orders/score", order), stack.context)
    assert response["statusCode"] == 200
    return dict(json.loads(response["body"]))


def records(text: str) -> list[dict[str, Any]]:
    """The JSON lines a handler printed (structured logs and EMF metric blobs)."""
    lines = [line for line in text.splitlines() if line.startswith("{")]
    return [json.loads(line) for line in lines]


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """What the functions log (the powertools handler keeps the stdout it found at import)."""
    handler = logger.registered_handler
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield stream
    handler.setStream(previous)


def logged(stream: io.StringIO) -> list[dict[str, Any]]:
    text = stream.getvalue()
    stream.seek(0)
    stream.truncate()
    return records(text)


@pytest.fixture
def registry(stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Stack:
    """The stack with the functions reading the registry on every invocation."""
    monkeypatch.setenv("MODEL_REFRESH_SECONDS", "0")
    monkeypatch.setenv("MODEL_CACHE_DIR", str(tmp_path / "function-tmp"))
    dependencies.cache_clear()
    return stack


def test_publish_rolls_forward_and_back_without_redeploy(registry: Stack, tmp_path: Path, capsys) -> None:
    # Given two trained versions
    v1, v2 = artifact(tmp_path, "fraud-test-v1"), artifact(tmp_path, "fraud-test-v2")
    assert score(registry, make_order("o-0", buyer_id="b-0"))["model_version"] == PACKAGED_VERSION

    # When v1 is published, decisions are made by v1
    status, published = publish(v1, capsys=capsys)
    assert status == 0 and published == {
        "role": "active",
        "version": "fraud-test-v1",
        "uploaded": True,
        "parameter_revision": 2,
    }
    assert score(registry, make_order("o-1", buyer_id="b-1"))["model_version"] == "fraud-test-v1"

    # When v2 is published, the next decisions carry v2
    assert publish(v2, capsys=capsys)[0] == 0
    assert score(registry, make_order("o-2", buyer_id="b-2"))["model_version"] == "fraud-test-v2"

    # When v1 is published again (the rollback), nothing is uploaded or downloaded again
    status, published = publish("--version", "fraud-test-v1", capsys=capsys)
    assert status == 0 and published["uploaded"] is False
    registry.calls.clear()
    assert score(registry, make_order("o-3", buyer_id="b-3"))["model_version"] == "fraud-test-v1"
    assert ("s3", "GetObject") not in registry.calls
    # The SQS consumer follows the same pointer
    result = order_events.lambda_handler(
        sqs_event([json.dumps(make_order("o-4", buyer_id="b-4"))]), registry.context
    )
    assert result["batchItemFailures"] == []
    assert dependencies().store.get_decision("o-4").model_version == "fraud-test-v1"

    # And the registry shows where it stands and how it got there
    capsys.readouterr()
    assert main(["registry", "status"]) == 0
    status_line = json.loads(capsys.readouterr().out)
    assert status_line == {
        "active": "fraud-test-v1",
        "shadow": "none",
        "versions": ["fraud-test-v1", "fraud-test-v2"],
    }
    assert main(["registry", "history"]) == 0
    active = [json.loads(x)["version"] for x in capsys.readouterr().out.splitlines() if '"active"' in x]
    assert active == ["packaged", "fraud-test-v1", "fraud-test-v2", "fraud-test-v1"]


def retrained(root: Path, version: str, trees: int) -> Path:
    """An artifact with other model bytes: the packaged booster cut down to its first `trees` trees."""
    import xgboost as xgb  # noqa: PLC0415 - training-only library, here to make a second model

    directory = artifact(root, version)
    from dozor_training.fitting import export_booster  # noqa: PLC0415 - training-only, as above

    booster = xgb.Booster(model_file=str(directory / "model.ubj"))
    export_booster(booster[:trees], directory, np.zeros((1, booster.num_features()), dtype=np.float32))
    return directory


def test_rollback_switches_between_different_models_and_back_to_the_packaged_one(
    registry: Stack, tmp_path: Path, capsys
) -> None:
    # Given the packaged model's score for a first-time order, and a smaller model with other bytes
    packaged = score(registry, stranger("o-10", 10))
    small = retrained(tmp_path, "fraud-test-small", trees=3)
    assert (small / "model.ubj").read_bytes() != (PACKAGED_MODEL_DIR / "model.ubj").read_bytes()
    full = artifact(tmp_path, "fraud-test-full")

    # When the small model is published, an order with the same features scores differently
    assert publish(small, capsys=capsys)[0] == 0
    by_small = score(registry, stranger("o-11", 11))
    assert by_small["model_version"] == "fraud-test-small"
    assert by_small["score"] != packaged["score"]

    # When the full model is published, and then the small one again (the rollback)
    assert publish(full, capsys=capsys)[0] == 0
    assert score(registry, stranger("o-12", 12))["score"] == packaged["score"]
    assert publish("--version", "fraud-test-small", capsys=capsys)[0] == 0
    # Then the small model's score comes back exactly
    again = score(registry, stranger("o-13", 13))
    assert (again["model_version"], again["score"]) == ("fraud-test-small", by_small["score"])

    # And rolling back to the model packaged with the code restores its decisions
    status, published = publish("--version", "packaged", capsys=capsys)
    assert status == 0 and published["uploaded"] is False
    home = score(registry, stranger("o-14", 14))
    assert (home["model_version"], home["score"]) == (PACKAGED_VERSION, packaged["score"])


def test_the_pointer_is_read_once_per_refresh_interval_not_per_order(
    stack: Stack, tmp_path: Path, capsys
) -> None:
    # Given the template's default refresh interval
    score(stack, make_order("o-1", buyer_id="b-1"))  # cold start: reads the pointers
    assert publish(artifact(tmp_path, "fraud-test-v1"), capsys=capsys)[0] == 0
    stack.calls.clear()
    # When more orders come within the interval
    decisions = [score(stack, make_order(f"o-{i}", buyer_id=f"b-{i}")) for i in range(2, 4)]
    # Then SSM is not asked again, and the cached version keeps serving until the interval passes
    assert not [call for call in stack.calls if call[0] in {"ssm", "s3"}]
    assert {d["model_version"] for d in decisions} == {PACKAGED_VERSION}


def test_shadow_scores_the_same_orders_but_never_decides(
    registry: Stack, tmp_path: Path, capsys, logs: io.StringIO
) -> None:
    # Given v1 active, and a shadow whose calibration says 0.9 for every order (it would decline all)
    assert publish(artifact(tmp_path, "fraud-test-v1"), capsys=capsys)[0] == 0
    shadow = artifact(tmp_path, "fraud-test-shadow", calibration={"x": [0.0, 1.0], "y": [0.9, 0.9]})
    without_shadow = score(registry, stranger("o-1", 1))

    # When the shadow is published and an order like the first one is scored
    status, published = publish(shadow, "--shadow", capsys=capsys)
    assert status == 0 and published["role"] == "shadow"
    capsys.readouterr()
    logged(logs)
    with_shadow = score(registry, stranger("o-2", 2))
    metrics = records(capsys.readouterr().out)
    lines = logged(logs)

    # Then the decision is the active model's, exactly as without a shadow
    ignore = {"order_id", "decided_at"}
    assert {k: v for k, v in with_shadow.items() if k not in ignore} == {
        k: v for k, v in without_shadow.items() if k not in ignore
    }
    assert with_shadow["model_version"] == "fraud-test-v1"
    assert with_shadow["decision"] != "DECLINE"
    # And the shadow's verdict is logged and measured
    line = next(r for r in lines if r.get("message") == "shadow score")
    assert line["shadow_version"] == "fraud-test-shadow"
    assert line["shadow_score"] == pytest.approx(0.9)
    assert line["shadow_decision"] == "DECLINE"
    assert (line["score"], line["decision"]) == (with_shadow["score"], with_shadow["decision"])
    emf = next(r for r in metrics if "_aws" in r)
    assert emf["ShadowDecisionDiffers"] == [1.0]  # EMF: one value per shadow-scored order
    assert emf["ShadowScore"] == [pytest.approx(0.9)]

    # When shadowing is cleared, orders are scored by the active model alone
    status, published = publish("--shadow", "--clear", capsys=capsys)
    assert status == 0 and published["version"] == "none"
    score(registry, make_order("o-3", buyer_id="b-3"))
    assert not [r for r in logged(logs) if r.get("message") == "shadow score"]


def test_an_artifact_for_other_features_is_refused(registry: Stack, tmp_path: Path, capsys) -> None:
    names = json.loads((PACKAGED_MODEL_DIR / "metadata.json").read_text())["feature_names"]
    stale = artifact(tmp_path, "fraud-test-stale", feature_names=names[:-1])

    status, error = publish(stale, capsys=capsys)

    assert status == 1 and "retrain" in str(error)
    s3 = boto3.client("s3")
    assert "Contents" not in s3.list_objects_v2(Bucket=registry.table("ModelBucket"))
    assert score(registry, make_order("o-1"))["model_version"] == PACKAGED_VERSION


def test_a_version_cannot_be_overwritten_with_other_bytes(registry: Stack, tmp_path: Path, capsys) -> None:
    v1 = artifact(tmp_path, "fraud-test-v1")
    assert publish(v1, capsys=capsys)[0] == 0
    assert publish(artifact(tmp_path, "fraud-test-v2"), capsys=capsys)[0] == 0
    # The same version, retrained: different thresholds under the old name
    tampered = artifact(tmp_path / "again", "fraud-test-v1", thresholds={"review": 0.01, "decline": 0.02})

    status, error = publish(tampered, capsys=capsys)

    assert status == 1 and "immutable" in str(error)
    # The active pointer did not move, and publishing the original again is still fine
    assert score(registry, make_order("o-1"))["model_version"] == "fraud-test-v2"
    status, published = publish(v1, capsys=capsys)
    assert status == 0 and published["uploaded"] is False
    stored = boto3.client("s3").get_object(
        Bucket=registry.table("ModelBucket"), Key="fraud/fraud-test-v1/metadata.json"
    )
    assert json.loads(stored["Body"].read())["thresholds"] != {"review": 0.01, "decline": 0.02}


def test_rollback_to_a_version_never_published_is_refused(registry: Stack, capsys) -> None:
    status, error = publish("--version", "fraud-test-nope", capsys=capsys)
    assert status == 1 and "fraud-test-nope" in str(error)
    capsys.readouterr()
    assert main(["registry", "status"]) == 0
    assert json.loads(capsys.readouterr().out)["active"] == "packaged"


def test_unreadable_registry_at_cold_start_serves_the_packaged_model(
    registry: Stack, logs: io.StringIO
) -> None:
    # Given a function whose parameter cannot be read (deleted, or no permission)
    boto3.client("ssm").delete_parameter(Name=registry.local.physical_id("ActiveModelParameter"))
    # When an order comes to a fresh container
    decision = score(registry, make_order("o-1"))
    # Then checkout gets a decision from the packaged model, and the fallback is logged
    assert decision["model_version"] == PACKAGED_VERSION
    warning = next(r for r in logged(logs) if r.get("level") == "WARNING")
    assert warning["cold_start"] is True and "ParameterNotFound" in warning["error"]


def test_a_failed_refresh_keeps_the_model_already_serving(
    registry: Stack, tmp_path: Path, capsys, logs: io.StringIO
) -> None:
    assert publish(artifact(tmp_path, "fraud-test-v1"), capsys=capsys)[0] == 0
    assert score(registry, make_order("o-1", buyer_id="b-1"))["model_version"] == "fraud-test-v1"
    # The pointer names a version whose files are gone, then the parameter itself is gone
    boto3.client("ssm").put_parameter(
        Name=registry.local.physical_id("ActiveModelParameter"), Value="fraud-test-gone", Overwrite=True
    )
    assert score(registry, make_order("o-2", buyer_id="b-2"))["model_version"] == "fraud-test-v1"
    boto3.client("ssm").delete_parameter(Name=registry.local.physical_id("ActiveModelParameter"))
    assert score(registry, make_order("o-3", buyer_id="b-3"))["model_version"] == "fraud-test-v1"
    assert (
        Counter(r.get("message") for r in logged(logs))[
            "model registry unusable; keeping the models already loaded"
        ]
        == 2
    )


def test_publish_reaches_an_emulator_through_endpoint_url(tmp_path: Path, monkeypatch, capsys) -> None:
    # Given the stack on a moto server (as `dozor` users run it), and no registry variables set
    for name in ("MODEL_BUCKET_NAME", "ACTIVE_MODEL_PARAMETER", "SHADOW_MODEL_PARAMETER", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        local = LocalStack.deploy(endpoint_url=endpoint)
        where = [
            "--endpoint-url",
            endpoint,
            "--bucket",
            local.outputs["ModelBucketName"],
            "--active-parameter",
            local.outputs["ActiveModelParameterName"],
            "--shadow-parameter",
            local.outputs["ShadowModelParameterName"],
        ]
        # When a model is published as the shadow through the flags
        status, published = publish(artifact(tmp_path, "fraud-test-v1"), "--shadow", *where, capsys=capsys)
        # Then it is in that emulator's bucket and named by its shadow parameter
        assert status == 0 and published["uploaded"] is True
        assert main(["registry", "status", *where]) == 0
        assert json.loads(capsys.readouterr().out) == {
            "active": "packaged",
            "shadow": "fraud-test-v1",
            "versions": ["fraud-test-v1"],
        }
    finally:
        server.stop()
