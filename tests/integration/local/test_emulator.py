"""The emulator's server: connections kept open answer as Werkzeug's own server does, and the meter
counts what it served."""

from __future__ import annotations

import io
import json
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from dozor_local import emulator

_REGION = "eu-central-1"


@contextmanager
def _emulator(*, keep_alive: bool, dynamodb_url: str | None = None) -> Iterator[tuple[str, list[int]]]:
    """A running emulator's URL, and the client ports of the connections it accepted."""
    server = emulator.make_emulator("127.0.0.1", 0, keep_alive=keep_alive, dynamodb_url=dynamodb_url)
    accepted: list[int] = []
    handler = server.RequestHandlerClass

    class Counting(handler):  # type: ignore[misc, valid-type]
        def setup(self) -> None:
            accepted.append(self.client_address[1])
            super().setup()

    server.RequestHandlerClass = Counting
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield url, accepted
    finally:
        urllib.request.urlopen(urllib.request.Request(url + "/moto-api/reset", method="POST")).read()
        server.shutdown()
        server.server_close()
        thread.join(5)


def _client(service: str, url: str, app_id: str | None = None) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=_REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}, user_agent_appid=app_id),
    )


_VOLATILE = {"ResponseMetadata", "LastModified", "MessageId", "ReceiptHandle", "CreationDateTime"}
_VOLATILE |= {"TableArn", "TableId", "CreationDate", "SequenceNumber", "Date", "date"}


def _stable(value: Any, url: str) -> Any:
    """An answer without what differs from run to run (request ids, times, the server's port)."""
    if isinstance(value, dict):
        return {k: _stable(v, url) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [_stable(v, url) for v in value]
    if isinstance(value, str):
        return value.replace(url, "<url>")
    if hasattr(value, "read"):
        return value.read()
    return value


def _answers(url: str) -> list[Any]:
    """Every answer (or error code and status) of a fixed run over DynamoDB, SQS, SNS and S3,
    including refusals, HEAD requests and uploads that ask for 100-continue."""
    ddb, sqs, sns, s3 = (_client(s, url) for s in ("dynamodb", "sqs", "sns", "s3"))
    answers: list[Any] = []

    def answer(call: Any, **request: Any) -> Any:
        try:
            result = call(**request)
        except ClientError as error:
            result = {
                "error": error.response["Error"]["Code"],
                "status": error.response["ResponseMetadata"]["HTTPStatusCode"],
            }
        else:
            result = {"status": result["ResponseMetadata"]["HTTPStatusCode"], **result}
        answers.append(_stable(result, url))
        return result

    key = [{"AttributeName": "pk", "KeyType": "HASH"}]
    answer(
        ddb.create_table,
        TableName="t",
        KeySchema=key,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for n in range(3):
        answer(ddb.put_item, TableName="t", Item={"pk": {"S": f"k{n}"}, "n": {"N": str(n)}})
    answer(ddb.get_item, TableName="t", Key={"pk": {"S": "k1"}})
    answer(
        ddb.update_item,
        TableName="t",
        Key={"pk": {"S": "k1"}},
        UpdateExpression="ADD n :one",
        ConditionExpression="attribute_not_exists(pk)",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )
    answer(ddb.describe_table, TableName="missing")
    queue = answer(sqs.create_queue, QueueName="q")["QueueUrl"]
    answer(sqs.send_message, QueueUrl=queue, MessageBody=json.dumps({"order": 1}))
    received = answer(sqs.receive_message, QueueUrl=queue, MaxNumberOfMessages=10)
    for message in received.get("Messages", []):
        answer(sqs.delete_message, QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    topic = answer(sns.create_topic, Name="alerts")["TopicArn"]
    answer(sns.publish, TopicArn=topic, Message="hello")
    answer(sns.publish, TopicArn=topic + "-nope", Message="hello")
    answer(s3.create_bucket, Bucket="dozor-models", CreateBucketConfiguration={"LocationConstraint": _REGION})
    answer(s3.put_object, Bucket="dozor-models", Key="small", Body=b"x" * 10)
    answer(s3.put_object, Bucket="dozor-models", Key="large", Body=io.BytesIO(b"y" * (2 * 1024 * 1024)))
    answer(s3.head_object, Bucket="dozor-models", Key="large")
    answer(s3.head_object, Bucket="dozor-models", Key="absent")
    answer(s3.get_object, Bucket="dozor-models", Key="small")
    answer(s3.get_object, Bucket="dozor-models", Key="absent")
    answer(s3.list_objects_v2, Bucket="dozor-models")
    return answers


def test_connections_kept_open_answer_as_werkzeugs_server() -> None:
    with _emulator(keep_alive=False) as (url, _):
        expected = _answers(url)
    with _emulator(keep_alive=True) as (url, accepted):
        got = _answers(url)
        connections = len(accepted)
    assert got == expected
    assert sum(1 for a in expected if "error" in a) == 5  # the refusals ran too
    assert expected[-1]["KeyCount"] == 2
    # Four clients, each on one connection for all its calls (Werkzeug's server: one per call).
    assert connections <= 4 < len(expected)


def test_dynamodb_forwarded_to_its_own_emulator_answers_the_same() -> None:
    with _emulator(keep_alive=True) as (url, _):
        expected = _answers(url)
    with (
        _emulator(keep_alive=True) as (dynamodb_url, dynamodb_accepted),
        _emulator(keep_alive=True, dynamodb_url=dynamodb_url) as (url, _),
    ):
        got = _answers(url)
        _served(url, "DELETE")  # both count afresh
        table = _client("dynamodb", url, app_id="ShipmentEventsFunction")
        table.put_item(TableName="t", Item={"pk": {"S": "k9"}})
        _client("sqs", url).list_queues()
        merged, theirs = _served(url, query="?by=caller"), _served(dynamodb_url, query="?by=caller")
    assert got == expected
    assert dynamodb_accepted  # the main emulator forwarded to the DynamoDB one over its own connection
    # Counted once, where it was served, with its caller: the main one adds that count to its own.
    assert {who: {op: n for op, (n, _) in ops.items()} for who, ops in theirs.items()} == {
        "ShipmentEventsFunction": {"DynamoDB.PutItem": 1}
    }
    assert {who: {op: n for op, (n, _) in ops.items()} for who, ops in merged.items()} == {
        "ShipmentEventsFunction": {"DynamoDB.PutItem": 1},
        "client": {"AmazonSQS.ListQueues": 1},
    }


def test_only_dynamodb_is_forwarded() -> None:
    dynamodb = {"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.TransactWriteItems"}
    streams = {"HTTP_X_AMZ_TARGET": "DynamoDBStreams_20120810.GetRecords"}
    others = [{"HTTP_X_AMZ_TARGET": "AmazonSQS.SendMessage"}, {"HTTP_X_AMZ_TARGET": "AWSEvents.PutEvents"}]
    others += [{"CONTENT_TYPE": "application/x-www-form-urlencoded"}, {}]
    assert emulator.DynamoDBPeer.serves(dynamodb) and emulator.DynamoDBPeer.serves(streams)
    assert not any(emulator.DynamoDBPeer.serves(environ) for environ in others)


def _served(url: str, method: str = "GET", query: str = "") -> Any:
    with urllib.request.urlopen(
        urllib.request.Request(url + emulator.REQUESTS_PATH + query, method=method)
    ) as r:
        return json.load(r)


@pytest.mark.parametrize("keep_alive", [True, False])
def test_the_meter_counts_requests_per_operation(keep_alive: bool) -> None:
    with _emulator(keep_alive=keep_alive) as (url, _):
        sqs, sns = _client("sqs", url), _client("sns", url)
        queue = sqs.create_queue(QueueName="q")["QueueUrl"]
        _served(url, "DELETE")
        for n in range(3):
            sqs.send_message(QueueUrl=queue, MessageBody=str(n))
        sns.create_topic(Name="t")
        served = _served(url)
    assert served.keys() == {"AmazonSQS.SendMessage", "query.CreateTopic"}
    assert served["AmazonSQS.SendMessage"][0] == 3
    assert served["query.CreateTopic"][0] == 1
    assert served["AmazonSQS.SendMessage"][1] > 0  # CPU ms


def test_the_meter_names_each_caller_by_its_sdk_app_id() -> None:
    with _emulator(keep_alive=True) as (url, _):
        plain, scoring = _client("sqs", url), _client("sqs", url, app_id="ScoreOrderFunction")
        queue = plain.create_queue(QueueName="q")["QueueUrl"]
        _served(url, "DELETE")
        scoring.send_message(QueueUrl=queue, MessageBody="a")
        scoring.send_message(QueueUrl=queue, MessageBody="b")
        plain.receive_message(QueueUrl=queue)
        by_caller, merged = _served(url, query="?by=caller"), _served(url)
    assert {who: {op: n for op, (n, _) in ops.items()} for who, ops in by_caller.items()} == {
        "ScoreOrderFunction": {"AmazonSQS.SendMessage": 2},
        "client": {"AmazonSQS.ReceiveMessage": 1},
    }
    assert {op: n for op, (n, _) in merged.items()} == {
        "AmazonSQS.SendMessage": 2,
        "AmazonSQS.ReceiveMessage": 1,
    }


def test_operation_names_the_protocols() -> None:
    json_target = {"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.UpdateItem"}
    form = b"Action=Publish&TopicArn=arn"
    query: dict[str, Any] = {
        "CONTENT_TYPE": "application/x-www-form-urlencoded; charset=utf-8",
        "CONTENT_LENGTH": str(len(form)),
        "wsgi.input": io.BytesIO(form),
    }
    rest = {
        "REQUEST_METHOD": "PUT",
        "HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=testing/20261201/eu-central-1/s3/aws4_request",
    }
    assert emulator.operation(json_target) == "DynamoDB.UpdateItem"
    assert emulator.operation(query) == "query.Publish"
    assert query["wsgi.input"].read() == form  # the body is still there for moto
    assert emulator.operation(rest) == "s3.PUT"
