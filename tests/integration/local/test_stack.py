"""The local stack: template.yaml's resources on moto, in-process and over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from moto.server import ThreadedMotoServer

from dozor_local.intrinsics import UnresolvableError
from dozor_local.stack import LocalStack

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = ROOT / "template.yaml"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-central-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def deployed(aws_env: None) -> Iterator[LocalStack]:
    with mock_aws():
        yield LocalStack.deploy(TEMPLATE)


def _key_schema(table: dict[str, object]) -> dict[str, str]:
    return {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]}  # type: ignore[attr-defined]


def test_tables_have_their_keys_ttl_recovery_and_encryption(deployed: LocalStack) -> None:
    ddb = deployed.client("dynamodb")

    for logical_id, keys in {
        "FeaturesTable": {"pk": "HASH", "sk": "RANGE"},
        "DecisionsTable": {"order_id": "HASH"},
    }.items():
        name = deployed.physical_id(logical_id)
        table = ddb.describe_table(TableName=name)["Table"]
        ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        backups = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]

        assert _key_schema(table) == keys
        assert {a["AttributeType"] for a in table["AttributeDefinitions"]} == {"S"}
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        assert table["SSEDescription"]["Status"] == "ENABLED"
        assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
        assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
        assert table["TableArn"] == deployed.attribute(logical_id, "Arn")


def test_order_events_queue_redrives_to_its_dlq_after_three_receives(deployed: LocalStack) -> None:
    sqs = deployed.client("sqs")
    queue, dlq = deployed.queue_url("OrderEventsQueue"), deployed.queue_url("OrderEventsDLQ")
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]

    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": deployed.queue_arn("OrderEventsDLQ"),
        "maxReceiveCount": 3,
    }
    assert attributes["VisibilityTimeout"] == str(6 * deployed.function("OrderEventsFunction").timeout)
    assert attributes["SqsManagedSseEnabled"] == "true"

    sqs.send_message(QueueUrl=queue, MessageBody="poison")
    for _ in range(3):  # three failed deliveries; a zero visibility timeout makes each retry immediate
        assert sqs.receive_message(QueueUrl=queue, VisibilityTimeout=0)["Messages"]
    assert "Messages" not in sqs.receive_message(QueueUrl=queue)
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=dlq)["Messages"]] == ["poison"]


def test_review_queue_has_its_own_dlq(deployed: LocalStack) -> None:
    sqs = deployed.client("sqs")
    url = deployed.queue_url("ReviewQueue")
    redrive = json.loads(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"][
            "RedrivePolicy"
        ]
    )

    assert redrive["deadLetterTargetArn"] == deployed.queue_arn("ReviewDLQ")


def test_the_hash_key_secret_is_generated_from_its_template_properties(deployed: LocalStack) -> None:
    secret = deployed.client("secretsmanager").get_secret_value(
        SecretId=deployed.physical_id("HashKeySecret")
    )

    assert len(secret["SecretString"]) == 64
    assert secret["SecretString"].isalnum()  # ExcludePunctuation


def test_functions_come_with_handler_limits_and_event_sources(deployed: LocalStack) -> None:
    score, events = deployed.function("ScoreOrderFunction"), deployed.function("OrderEventsFunction")
    (sqs_event,) = events.events_of_type("SQS")

    assert (score.handler, score.timeout, score.memory, score.runtime, score.architectures) == (
        "dozor.handlers.fraud.score_order.lambda_handler",
        10,
        1024,
        "python3.12",
        ("arm64",),
    )
    assert (events.handler, events.timeout) == ("dozor.handlers.fraud.order_events.lambda_handler", 60)
    assert (sqs_event.queue, sqs_event.batch_size, sqs_event.batching_window) == ("OrderEventsQueue", 10, 1)
    assert sqs_event.function_response_types == ("ReportBatchItemFailures",)
    assert {(e.method, e.path) for e in score.events_of_type("HttpApi")} == {
        ("POST", "/v1/orders/score"),
        ("GET", "/v1/orders/{order_id}/decision"),
        ("GET", "/v1/openapi.json"),
        ("GET", "/v1/docs"),
        (None, None),  # $default: any other route, answered 404 in the API's error body
    }


def test_function_environment_points_at_the_deployed_resources(deployed: LocalStack) -> None:
    for logical_id in ("ScoreOrderFunction", "OrderEventsFunction"):
        env = deployed.function(logical_id).env

        assert deployed.client("dynamodb").describe_table(TableName=env["FEATURES_TABLE_NAME"])
        assert deployed.client("dynamodb").describe_table(TableName=env["DECISIONS_TABLE_NAME"])
        assert deployed.client("sqs").get_queue_attributes(QueueUrl=env["REVIEW_QUEUE_URL"])
        assert deployed.client("secretsmanager").describe_secret(SecretId=env["HASH_KEY_SECRET_ARN"])
        assert env["REVIEW_QUEUE_URL"] == deployed.queue_url("ReviewQueue")
        assert (env["POWERTOOLS_SERVICE_NAME"], env["POWERTOOLS_METRICS_NAMESPACE"], env["LOG_LEVEL"]) == (
            "dozor",
            "Dozor",
            "INFO",
        )


def test_env_for_adds_what_the_lambda_runtime_sets(deployed: LocalStack) -> None:
    spec = deployed.function("ScoreOrderFunction")
    env = deployed.env_for("ScoreOrderFunction")

    assert env.items() >= spec.env.items()
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == spec.name
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "1024"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-central-1"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.12"
    assert env["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert "AWS_ENDPOINT_URL" not in env  # in-process moto needs none


def test_alarms_watch_the_dlqs_and_the_functions(deployed: LocalStack) -> None:
    everything = deployed.client("cloudwatch").describe_alarms()["MetricAlarms"]
    # Metric-math alarms (the degraded share) watch a ratio, not one resource.
    alarms = [a for a in everything if a.get("Dimensions")]
    # An alarm on one of Dozor's own metrics names the dimension powertools gives every metric it
    # publishes (the service), or it would watch a metric nobody publishes.
    own = [a for a in alarms if a["Namespace"] == "Dozor"]
    assert own, "the sweeper's poisoned parcels are alarmed on"
    assert {(d["Name"], d["Value"]) for a in own for d in a["Dimensions"]} == {("service", "dozor")}
    watched = {(d["Name"], d["Value"]) for a in alarms if a not in own for d in a["Dimensions"]}

    # Every dead-letter queue and every function has an alarm, whatever the template grows.
    dlqs = [i for i, r in deployed.resources.items() if r.type == "AWS::SQS::Queue" and i.endswith("DLQ")]
    assert len(dlqs) >= 3
    assert watched == {("QueueName", deployed.attribute(i, "QueueName")) for i in dlqs} | {
        ("FunctionName", spec.name) for spec in deployed.functions.values()
    }
    assert all(a["Threshold"] == 0 and a["ComparisonOperator"] == "GreaterThanThreshold" for a in alarms)
    assert all(a["AlarmActions"] == [] for a in everything)  # no AlarmTopicArn given
    assert [a["Threshold"] for a in everything if not a.get("Dimensions")] == [0.05]


def test_outputs_resolve_to_the_local_resources(deployed: LocalStack) -> None:
    assert deployed.outputs["OrderEventsQueueUrl"] == deployed.queue_url("OrderEventsQueue")
    assert deployed.outputs["DecisionsTableName"] == deployed.physical_id("DecisionsTable")
    assert deployed.outputs["ApiUrl"].startswith("https://")


def test_parameters_override_defaults_and_conditions_follow(aws_env: None) -> None:
    topic = "arn:aws:sns:eu-central-1:123456789012:ops-paging"
    with mock_aws():
        stack = LocalStack.deploy(TEMPLATE, parameters={"LogLevel": "DEBUG", "AlarmTopicArn": topic})
        alarms = stack.client("cloudwatch").describe_alarms()["MetricAlarms"]

        assert stack.function("OrderEventsFunction").env["LOG_LEVEL"] == "DEBUG"
        assert {tuple(a["AlarmActions"]) for a in alarms} == {(topic,)}
        with pytest.raises(ValueError, match="LogLevl"):
            LocalStack.deploy(TEMPLATE, parameters={"LogLevl": "DEBUG"})


def test_stacks_in_one_backend_are_independent(aws_env: None) -> None:
    # (how fast a warm deploy is belongs to `make bench`: dozor_local.bench_deploy)
    with mock_aws():
        first = LocalStack.deploy(TEMPLATE, stack_name="alpha")
        second = LocalStack.deploy(TEMPLATE, stack_name="beta")

        assert first.physical_id("DecisionsTable") != second.physical_id("DecisionsTable")
        assert second.physical_id("DecisionsTable").startswith("beta-DecisionsTable-")
        # What one stack stores, the other does not see
        ddb = boto3.client("dynamodb")
        ddb.put_item(TableName=first.physical_id("DecisionsTable"), Item={"order_id": {"S": "o-alpha"}})
        assert ddb.scan(TableName=second.physical_id("DecisionsTable"))["Count"] == 0
        assert ddb.scan(TableName=first.physical_id("DecisionsTable"))["Count"] == 1


def test_deploys_the_same_on_a_moto_server(aws_env: None) -> None:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"

        stack = LocalStack.deploy(TEMPLATE, endpoint_url=endpoint)
        env = stack.env_for("OrderEventsFunction")
        table = boto3.client("dynamodb", endpoint_url=endpoint).describe_table(
            TableName=env["FEATURES_TABLE_NAME"]
        )

        assert stack.queue_url("OrderEventsQueue").startswith(endpoint + "/")
        assert env["REVIEW_QUEUE_URL"].startswith(endpoint + "/")
        assert env["AWS_ENDPOINT_URL"] == endpoint
        assert _key_schema(table["Table"]) == {"pk": "HASH", "sk": "RANGE"}
    finally:
        server.stop()


def test_types_without_a_native_creator_go_through_moto_cloudformation(aws_env: None, tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(
        """
Transform: AWS::Serverless-2016-10-31
Resources:
  Inbox:
    Type: AWS::SQS::Queue
  OrderBusRule:
    Type: AWS::Events::Rule
    Properties:
      EventPattern: {source: [marketplace.orders]}
      Targets:
        - Id: inbox
          Arn: !GetAtt Inbox.Arn
  Consumer:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      CodeUri: src/
      Handler: app.handler
      Environment:
        Variables:
          RULE_NAME: !Ref OrderBusRule
          RULE_ARN: !GetAtt OrderBusRule.Arn
          INBOX: !Ref Inbox
"""
    )
    with mock_aws():
        stack = LocalStack.deploy(template)
        env = stack.function("Consumer").env
        rule = stack.client("events").describe_rule(Name=env["RULE_NAME"])

        assert stack.resource("OrderBusRule").created_by == "cloudformation"
        assert env["RULE_ARN"] == rule["Arn"]
        assert env["INBOX"] == stack.queue_url("Inbox")


def test_a_reference_to_a_resource_that_does_not_exist_is_an_error(aws_env: None, tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(
        """
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy: {deadLetterTargetArn: !GetAtt Missing.Arn, maxReceiveCount: 3}
"""
    )
    with mock_aws(), pytest.raises(UnresolvableError, match="Missing"):
        LocalStack.deploy(template)
