"""The patches to moto's per-request work (`moto_requests`): each answers exactly as plain moto."""

from __future__ import annotations

import io
from typing import Any

import pytest
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from dozor_local import moto_quirks, moto_requests


def _signed(service: str, **extra: str) -> dict[str, Any]:
    scope = f"testing/20261201/eu-central-1/{service}/aws4_request"
    return {"HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=host", **extra}


# Requests as botocore sends them to one endpoint for every service (AWS_ENDPOINT_URL), twice each
# (the second from the cache), and ones moto finds by host or path alone.
_REQUESTS: list[dict[str, Any]] = [
    _signed("dynamodb", HTTP_X_AMZ_TARGET="DynamoDB_20120810.UpdateItem"),
    _signed("dynamodb", HTTP_X_AMZ_TARGET="DynamoDBStreams_20120810.GetRecords"),
    _signed("sqs", HTTP_X_AMZ_TARGET="AmazonSQS.SendMessage"),
    _signed("sns", CONTENT_TYPE="application/x-www-form-urlencoded"),
    _signed("events", HTTP_X_AMZ_TARGET="AWSEvents.PutEvents"),
    _signed("s3", PATH_INFO="/dozor-models/model.json"),
    _signed("s3", PATH_INFO="/v20180820/accesspoint"),
    _signed("secretsmanager", HTTP_X_AMZ_TARGET="secretsmanager.GetSecretValue"),
    _signed("monitoring"),
    _signed("execute-api"),
    {"PATH_INFO": "/moto-api/reset"},
    {"HTTP_HOST": "sqs.eu-central-1.amazonaws.com"},
    {"HTTP_HOST": "dozor-models.s3.amazonaws.com"},
    {"HTTP_HOST": "nothing.example.com"},
    {"CONTENT_TYPE": "application/x-www-form-urlencoded", "body": b"Action=AssumeRoleWithWebIdentity"},
]


def _backends() -> list[Any]:
    """The backend app's service each request is dispatched to (two rounds)."""
    dispatcher = DomainDispatcherApplication(create_backend_app)
    found = []
    for _ in range(2):
        for request in _REQUESTS:
            body = request.get("body", b"")
            environ = {k: v for k, v in request.items() if k != "body"}
            environ |= {"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}
            environ.setdefault("HTTP_HOST", "127.0.0.1:5000")
            environ.setdefault("PATH_INFO", "/")
            found.append(dispatcher.get_application(environ).service)  # type: ignore[attr-defined]
    return found


@pytest.mark.parametrize("name", list(moto_requests.PATCHES))
def test_a_request_patch_dispatches_as_moto_does(name: str) -> None:
    with moto_quirks.only():
        expected = _backends()
    with moto_quirks.only(name):
        got = _backends()
    assert got == expected
    assert len(set(expected)) >= 8


def _receive_within_and_past_retention(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Bodies received from a queue with a 60 s retention, 30 s and then 61 s after sending."""
    import boto3  # noqa: PLC0415
    from moto import mock_aws  # noqa: PLC0415
    from moto.sqs import models  # noqa: PLC0415

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    rounds = []
    with mock_aws(), monkeypatch.context() as clock:
        sqs = boto3.client("sqs")
        url = sqs.create_queue(QueueName="kept", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
        sent = models.unix_time()
        for n in range(3):
            sqs.send_message(QueueUrl=url, MessageBody=f"m-{n}")
        for after in (30, 61):
            clock.setattr(models, "unix_time", lambda after=after: sent + after)
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
            rounds.append(sorted(m["Body"] for m in got.get("Messages", [])))
    return rounds


def test_receiving_judges_retention_as_moto_does(monkeypatch: pytest.MonkeyPatch) -> None:
    with moto_quirks.only():
        expected = _receive_within_and_past_retention(monkeypatch)
    with moto_quirks.only("sqs_retention"):
        got = _receive_within_and_past_retention(monkeypatch)
    assert got == expected == [["m-0", "m-1", "m-2"], []]
