"""The patches to moto's per-request work (`moto_requests`): each answers exactly as plain moto."""

from __future__ import annotations

import io
import json
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


_DYNAMODB_CALLS: list[tuple[str, dict[str, Any], dict[str, str]]] = [
    (
        "CreateTable",
        {
            "TableName": "t",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
        },
        {},
    ),
    ("PutItem", {"TableName": "t", "Item": {"pk": {"S": "a"}, "n": {"N": "1"}}}, {}),
    (
        "UpdateItem",
        {
            "TableName": "t",
            "Key": {"pk": {"S": "a"}},
            "UpdateExpression": "ADD n :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
            "ReturnValues": "ALL_NEW",
        },
        {},
    ),
    (
        "UpdateItem",
        {
            "TableName": "t",
            "Key": {"pk": {"S": "a"}},
            "UpdateExpression": "ADD n :one",
            "ConditionExpression": "attribute_not_exists(pk)",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        },
        {},
    ),
    ("GetItem", {"TableName": "missing", "Key": {"pk": {"S": "a"}}}, {}),
    ("GetItem", {"TableName": "t", "Key": {"pk": {"S": "a"}}}, {"HTTP_ORIGIN": "http://127.0.0.1:3000"}),
    ("Scan", {"TableName": "t"}, {"REQUEST_METHOD": "GET"}),
    ("NoSuchAction", {}, {}),
]
_VOLATILE_HEADERS = {"date", "x-amzn-requestid", "x-amz-crc32"}


def _dynamodb_over_wsgi() -> list[Any]:
    """Status, headers (but the request id, date and checksum) and body of each raw request, as
    moto's server app answers them."""
    dispatcher = DomainDispatcherApplication(create_backend_app)
    answers = []
    for target, body, extra in _DYNAMODB_CALLS:
        raw = json.dumps(body).encode()
        environ = _signed("dynamodb", HTTP_X_AMZ_TARGET=f"DynamoDB_20120810.{target}")
        environ |= {"REQUEST_METHOD": "POST", "PATH_INFO": "/", "HTTP_HOST": "127.0.0.1:5000"}
        environ |= {"CONTENT_TYPE": "application/x-amz-json-1.0", "CONTENT_LENGTH": str(len(raw))}
        environ |= {"wsgi.input": io.BytesIO(raw), "wsgi.url_scheme": "http", "SERVER_NAME": "127.0.0.1"}
        environ |= {"SERVER_PORT": "5000", **extra}
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], *_: Any) -> None:
            started[:] = [status, headers]  # noqa: B023 - called before the loop moves on

        try:
            payload = b"".join(dispatcher(environ, start_response))
        except Exception as error:  # the server answers 500 for it
            answers.append(("raised", type(error).__name__))
            continue
        kept = sorted((k, v) for k, v in started[1] if k.lower() not in _VOLATILE_HEADERS)
        if target == "CreateTable":  # its answer holds the table's creation time
            kept, payload = [(k, v) for k, v in kept if k != "Content-Length"], b""
        answers.append((started[0], kept, payload))
    return answers


def test_dynamodb_answers_directly_as_through_flask(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto import mock_aws  # noqa: PLC0415

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with moto_quirks.only(), mock_aws():
        expected = _dynamodb_over_wsgi()
    with moto_quirks.only("direct_dynamodb"), mock_aws():
        got = _dynamodb_over_wsgi()
    assert got == expected
    statuses = [answer[0].split()[0] for answer in expected]
    assert statuses.count("200") >= 4 and statuses.count("400") >= 2  # the refusals ran too
    assert expected[-1] == ("raised", "OperationNotFoundError")
    assert all(("Access-Control-Allow-Origin", "*") in headers for _, headers, _ in expected[:5])


def _in_process_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3 on moto's in-process mock: a region, dummy credentials, no endpoint of a server."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


def _receive_within_and_past_retention(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Bodies received from a queue with a 60 s retention, 30 s and then 61 s after sending."""
    import boto3  # noqa: PLC0415
    from moto import mock_aws  # noqa: PLC0415
    from moto.sqs import models  # noqa: PLC0415

    _in_process_aws(monkeypatch)
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


_COUNTS = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
_COUNTS += ["ApproximateNumberOfMessagesDelayed"]


def _counts_as_the_clock_moves(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """A queue's three counts and what a receive gets, as received and delayed messages come due."""
    import boto3  # noqa: PLC0415
    from moto import mock_aws  # noqa: PLC0415
    from moto.sqs import models  # noqa: PLC0415

    _in_process_aws(monkeypatch)
    seen: list[Any] = []
    with mock_aws(), monkeypatch.context() as clock:
        start = models.unix_time_millis()
        clock.setattr(models, "unix_time_millis", lambda: start)
        sqs = boto3.client("sqs")
        url = sqs.create_queue(QueueName="scans")["QueueUrl"]
        for n in range(5):
            sqs.send_message(QueueUrl=url, MessageBody=f"m-{n}")
        sqs.send_message(QueueUrl=url, MessageBody="late", DelaySeconds=30)
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=20)
        for after_ms in (0, 20_000, 20_001, 29_999, 30_000):
            clock.setattr(models, "unix_time_millis", lambda after_ms=after_ms: start + after_ms)
            counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=_COUNTS)["Attributes"]
            seen.append({name: int(counts[name]) for name in _COUNTS})
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=5)
        seen.append(sorted(m["Body"] for m in got["Messages"]))
        seen.append(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=_COUNTS)["Attributes"])
    return seen


def test_queue_counts_follow_the_clock_as_moto_does(monkeypatch: pytest.MonkeyPatch) -> None:
    with moto_quirks.only():
        expected = _counts_as_the_clock_moves(monkeypatch)
    with moto_quirks.only("sqs_queue_counts"):
        got = _counts_as_the_clock_moves(monkeypatch)
    assert got == expected
    # (visible, in flight, delayed): the received two come back after 20 s, the late one at 30 s
    timeline = [(3, 2, 1), (3, 2, 1), (5, 0, 1), (5, 0, 1), (6, 0, 0)]
    assert [tuple(counts.values()) for counts in expected[:5]] == timeline
    assert len(expected[5]) == 6


# What moto draws at random in an answer, and its timestamps: the rest must match byte for byte.
_DRAWN = {"MessageId", "ReceiptHandle", "SenderId", "EventId", "Version", "LastModifiedDate"}
_DRAWN |= {"SentTimestamp", "ApproximateFirstReceiveTimestamp", "CreatedTimestamp", "ARN", "Id"}
_DRAWN |= {"LastModifiedTimestamp", "VersionId", "CreatedDate", "RequestId", "EventBusArn", "SequenceNumber"}


def _masked(answer: Any) -> Any:
    if isinstance(answer, dict):
        return {k: "<drawn>" if k in _DRAWN else _masked(v) for k, v in answer.items()}
    if isinstance(answer, list):
        return [_masked(v) for v in answer]
    return answer


def _service_answers(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The answers of SQS, SNS, EventBridge, SSM and Secrets Manager to what the stack asks of
    them, as botocore parses them (without what moto draws)."""
    import boto3  # noqa: PLC0415
    from botocore.exceptions import ClientError  # noqa: PLC0415
    from moto import mock_aws  # noqa: PLC0415

    _in_process_aws(monkeypatch)
    answers: list[Any] = []

    def answer(call: Any, **request: Any) -> Any:
        try:
            result = call(**request)
        except ClientError as error:
            answers.append({"error": error.response["Error"]})
            return {}
        result.pop("ResponseMetadata", None)
        answers.append(_masked(result))
        return result

    with mock_aws():
        sqs, sns = boto3.client("sqs"), boto3.client("sns")
        events, ssm = boto3.client("events"), boto3.client("ssm")
        secrets = boto3.client("secretsmanager")
        url = answer(sqs.create_queue, QueueName="orders", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
        fifo = answer(sqs.create_queue, QueueName="o.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        attributes = {"kind": {"DataType": "String", "StringValue": "scan"}}
        answer(sqs.send_message, QueueUrl=url, MessageBody="one", MessageAttributes=attributes)
        answer(
            sqs.send_message_batch,
            QueueUrl=url,
            Entries=[{"Id": str(n), "MessageBody": f"m{n}"} for n in range(4)],
        )
        answer(
            sqs.send_message, QueueUrl=fifo, MessageBody="f", MessageGroupId="g", MessageDeduplicationId="d"
        )
        answer(sqs.send_message, QueueUrl=url, MessageBody="later", DelaySeconds=60)
        answer(sqs.send_message, QueueUrl=url, MessageBody="")  # refused
        received = answer(
            sqs.receive_message,
            QueueUrl=url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            AttributeNames=["ApproximateReceiveCount"],
        )
        handles = [m["ReceiptHandle"] for m in received.get("Messages", [])]
        answer(sqs.get_queue_attributes, QueueUrl=url, AttributeNames=["All"])
        answer(sqs.get_queue_attributes, QueueUrl=fifo, AttributeNames=["ApproximateNumberOfMessages"])
        answer(sqs.change_message_visibility, QueueUrl=url, ReceiptHandle=handles[0], VisibilityTimeout=0)
        answer(
            sqs.delete_message_batch,
            QueueUrl=url,
            Entries=[{"Id": str(n), "ReceiptHandle": h} for n, h in enumerate(handles)]
            + [{"Id": "x", "ReceiptHandle": "no"}],
        )
        answer(sqs.get_queue_url, QueueName="missing")
        topic = answer(sns.create_topic, Name="alerts")["TopicArn"]
        answer(sns.subscribe, TopicArn=topic, Protocol="sqs", Endpoint=url.replace("http", "arn"))
        answer(
            sns.publish,
            TopicArn=topic,
            Message="lost",
            MessageAttributes={"t": {"DataType": "String", "StringValue": "v"}},
        )
        answer(sns.list_topics)
        answer(events.create_event_bus, Name="dozor")
        answer(
            events.put_events,
            Entries=[{"Source": "dozor", "DetailType": "d", "Detail": "{}", "EventBusName": "dozor"}],
        )
        answer(ssm.put_parameter, Name="/dozor/model", Value="v1", Type="String")
        answer(ssm.get_parameter, Name="/dozor/model")
        answer(ssm.get_parameter, Name="/dozor/missing")
        answer(secrets.create_secret, Name="hash-key", SecretString="k")
        answer(secrets.get_secret_value, SecretId="hash-key")
    return answers


@pytest.mark.parametrize(
    "name", ["sqs_queue_counts", "serializer_dict_values", "attribute_names", "random_strings"]
)
def test_a_rendering_patch_answers_as_moto_does(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with moto_quirks.only():
        expected = _service_answers(monkeypatch)
    with moto_quirks.only(name):
        got = _service_answers(monkeypatch)
    assert got == expected
    assert sum(1 for a in expected if "error" in a) >= 3  # the refusals ran too
    assert any(a.get("Messages") for a in expected)


def test_drawn_strings_keep_their_alphabet_and_length() -> None:
    from moto.moto_api._internal import mock_random  # noqa: PLC0415
    from moto.sqs import models  # noqa: PLC0415

    with moto_quirks.only("random_strings"):
        handles = {models.generate_receipt_handle() for _ in range(50)}
        ids = {mock_random.get_random_string(length=52) for _ in range(50)}
        lower = mock_random.get_random_string(length=12, include_digits=False, lower_case=True)
    assert len(handles) == 50 and all(len(h) == 185 and h.isalpha() and h.islower() for h in handles)
    assert len(ids) == 50 and all(len(i) == 52 and i.isalnum() for i in ids)
    assert len(lower) == 12 and lower.isalpha() and lower.islower()
