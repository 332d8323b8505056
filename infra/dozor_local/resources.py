"""Create one template resource through the AWS API, from its (already resolved) Properties.

Each creator maps CloudFormation properties to the service's API the way CloudFormation does, and
returns what `Ref` and `Fn::GetAtt` give for the resource. Creating the data-plane resources
directly keeps a local deploy at a few milliseconds; moto's CloudFormation (seconds to import) is
only the fallback for types without a creator here.

Some types have no local counterpart worth creating (Lambda functions: the local stack runs the
handlers in-process; IAM: moto does not enforce it; APIs: handlers are called directly). They are
"virtual": nothing is created, but `Ref` / `Fn::GetAtt` give realistic values, so alarms and
outputs that mention them still resolve.
"""

from __future__ import annotations

import functools
import json
import secrets
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.loaders
import botocore.session


@dataclass(frozen=True)
class Created:
    """What a resource is once it exists: its `Ref` value and its `Fn::GetAtt` attributes."""

    ref: str
    attributes: Mapping[str, str] = field(default_factory=dict)


@functools.cache
def _shared_loader() -> Any:
    return botocore.loaders.create_loader()


def fresh_session() -> boto3.Session:
    """A boto3 session configured from the environment, as `boto3.client()` would be.

    Sessions share one botocore data loader: service models and the endpoint catalogue are read
    once per process rather than once per deploy (moto resets boto3's default session at every
    `mock_aws()`, which otherwise costs ~0.4 s of JSON parsing per deploy).
    """
    core = botocore.session.get_session()
    core.register_component("data_loader", _shared_loader())
    return boto3.Session(botocore_session=core)


@dataclass
class DeployContext:
    """Where resources are created: one boto3 session and endpoint, one region and account."""

    session: boto3.Session
    endpoint_url: str | None
    region: str
    account_id: str
    stack_name: str
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(
                service, region_name=self.region, endpoint_url=self.endpoint_url
            )
        return self._clients[service]

    def generated_name(self, logical_id: str, *, max_length: int = 128, lower: bool = False) -> str:
        """A physical name the way CloudFormation makes one: stack-LogicalId-RANDOMSUFFIX."""
        suffix = random_suffix()
        prefix = f"{self.stack_name}-{logical_id}"[: max_length - len(suffix) - 1]
        name = f"{prefix}-{suffix}"
        return name.lower() if lower else name

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        where = self.region if region else ""
        owner = self.account_id if account else ""
        return f"arn:aws:{service}:{where}:{owner}:{resource}"


def random_suffix(length: int = 12) -> str:
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(length))


Creator = Callable[[DeployContext, str, dict[str, Any]], Created]

#: Resource type -> creator. Add an entry to support a new type natively.
CREATORS: dict[str, Creator] = {}

#: Types with nothing to create locally; their Ref / GetAtt are synthesised (see module docstring).
VIRTUAL: dict[str, Creator] = {}

#: Types that are ignored entirely (permissions and plumbing that moto neither needs nor enforces).
IGNORED_PREFIXES: tuple[str, ...] = (
    "AWS::Lambda::",
    "AWS::IAM::",
    "AWS::ApiGateway::",
    "AWS::ApiGatewayV2::",
    "AWS::Logs::",
    "AWS::SQS::QueuePolicy",
    "AWS::SNS::TopicPolicy",
    "AWS::S3::BucketPolicy",
    "AWS::Scheduler::",
    "AWS::CodeDeploy::",
)


def is_ignored(resource_type: str, properties: Mapping[str, Any]) -> bool:
    """True for resources with no local effect (nothing runs on a schedule in the local stack)."""
    if resource_type == "AWS::Events::Rule":
        return "ScheduleExpression" in properties and "EventPattern" not in properties
    return resource_type.startswith(IGNORED_PREFIXES)


def creates(resource_type: str, registry: dict[str, Creator] = CREATORS) -> Callable[[Creator], Creator]:
    def register(creator: Creator) -> Creator:
        registry[resource_type] = creator
        return creator

    return register


def _tags(properties: Mapping[str, Any]) -> list[dict[str, str]]:
    return [{"Key": str(t["Key"]), "Value": str(t["Value"])} for t in properties.get("Tags", [])]


def _pick(properties: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {key: properties[key] for key in keys if key in properties}


def _api_bool(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


# --- DynamoDB ---------------------------------------------------------------------------------


_INDEX_KEYS = ("IndexName", "KeySchema", "Projection", "ProvisionedThroughput", "OnDemandThroughput")


@creates("AWS::DynamoDB::Table")
def _table(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    ddb = ctx.client("dynamodb")
    name = props.get("TableName") or ctx.generated_name(logical_id, max_length=255)
    request: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
        **_pick(
            props, "ProvisionedThroughput", "StreamSpecification", "TableClass", "DeletionProtectionEnabled"
        ),
    }
    for index_kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if props.get(index_kind):
            request[index_kind] = [_pick(index, *_INDEX_KEYS) for index in props[index_kind]]
    sse = props.get("SSESpecification")
    if sse:  # CloudFormation says SSEEnabled where the API says Enabled
        request["SSESpecification"] = {
            "Enabled": str(sse.get("SSEEnabled", False)).lower() == "true",
            **_pick(sse, "SSEType", "KMSMasterKeyId"),
        }
    if props.get("Tags"):
        request["Tags"] = _tags(props)
    table = ddb.create_table(**request)["TableDescription"]

    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        ddb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]}
        )
    pitr = props.get("PointInTimeRecoverySpecification", {})
    if pitr.get("PointInTimeRecoveryEnabled"):
        ddb.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
    attributes = {"Arn": table["TableArn"]}
    if "LatestStreamArn" in table:
        attributes["StreamArn"] = table["LatestStreamArn"]
    return Created(ref=name, attributes=attributes)


# --- SQS --------------------------------------------------------------------------------------

_QUEUE_ATTRIBUTES = (
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "DelaySeconds",
    "FifoQueue",
    "FifoThroughputLimit",
    "KmsDataKeyReusePeriodSeconds",
    "KmsMasterKeyId",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "SqsManagedSseEnabled",
    "VisibilityTimeout",
)


@creates("AWS::SQS::Queue")
def _queue(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    sqs = ctx.client("sqs")
    fifo = str(props.get("FifoQueue", "false")).lower() == "true"
    name = props.get("QueueName") or ctx.generated_name(logical_id, max_length=75 if fifo else 80)
    if fifo and not name.endswith(".fifo"):
        name += ".fifo"
    attributes = {key: _api_bool(props[key]) for key in _QUEUE_ATTRIBUTES if key in props}
    for policy in ("RedrivePolicy", "RedriveAllowPolicy"):
        if policy in props:
            value = props[policy]
            attributes[policy] = value if isinstance(value, str) else json.dumps(value)
    request: dict[str, Any] = {"QueueName": name, "Attributes": attributes}
    if props.get("Tags"):
        request["tags"] = {t["Key"]: t["Value"] for t in _tags(props)}
    url = sqs.create_queue(**request)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return Created(ref=url, attributes={"Arn": arn, "QueueName": name, "QueueUrl": url})


# --- SNS --------------------------------------------------------------------------------------


@creates("AWS::SNS::Topic")
def _topic(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    sns = ctx.client("sns")
    fifo = str(props.get("FifoTopic", "false")).lower() == "true"
    name = props.get("TopicName") or ctx.generated_name(logical_id, max_length=251 if fifo else 256)
    if fifo and not name.endswith(".fifo"):
        name += ".fifo"
    attributes = {
        key: _api_bool(props[key])
        for key in (
            "DisplayName",
            "KmsMasterKeyId",
            "FifoTopic",
            "ContentBasedDeduplication",
            "TracingConfig",
        )
        if key in props
    }
    request: dict[str, Any] = {"Name": name, "Attributes": attributes}
    if props.get("Tags"):
        request["Tags"] = _tags(props)
    arn = sns.create_topic(**request)["TopicArn"]
    for subscription in props.get("Subscription", []):
        sns.subscribe(TopicArn=arn, Protocol=subscription["Protocol"], Endpoint=subscription["Endpoint"])
    return Created(ref=arn, attributes={"TopicArn": arn, "TopicName": name})


@creates("AWS::SNS::Subscription")
def _subscription(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    attributes: dict[str, str] = {}
    for key in ("RawMessageDelivery", "FilterPolicyScope"):
        if key in props:
            attributes[key] = _api_bool(props[key])
    for key in ("FilterPolicy", "RedrivePolicy", "DeliveryPolicy"):
        if key in props:
            attributes[key] = props[key] if isinstance(props[key], str) else json.dumps(props[key])
    arn = ctx.client("sns").subscribe(
        TopicArn=props["TopicArn"],
        Protocol=props["Protocol"],
        Endpoint=props["Endpoint"],
        Attributes=attributes,
        ReturnSubscriptionArn=True,
    )["SubscriptionArn"]
    return Created(ref=arn, attributes={"Arn": arn})


# --- S3, SSM, Secrets Manager -----------------------------------------------------------------


@creates("AWS::S3::Bucket")
def _bucket(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    s3 = ctx.client("s3")
    name = props.get("BucketName") or ctx.generated_name(logical_id, max_length=63, lower=True)
    request: dict[str, Any] = {"Bucket": name}
    if ctx.region != "us-east-1":
        request["CreateBucketConfiguration"] = {"LocationConstraint": ctx.region}
    s3.create_bucket(**request)
    versioning = props.get("VersioningConfiguration")
    if versioning:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": versioning["Status"]})
    encryption = props.get("BucketEncryption")
    if encryption:  # CloudFormation says ServerSideEncryptionByDefault where the API says Apply...
        rules = [
            {
                "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
                **_pick(rule, "BucketKeyEnabled"),
            }
            for rule in encryption["ServerSideEncryptionConfiguration"]
        ]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    public_access = props.get("PublicAccessBlockConfiguration")
    if public_access:
        s3.put_public_access_block(
            Bucket=name,
            PublicAccessBlockConfiguration={k: str(v).lower() == "true" for k, v in public_access.items()},
        )
    return Created(
        ref=name,
        attributes={
            "Arn": f"arn:aws:s3:::{name}",
            "DomainName": f"{name}.s3.amazonaws.com",
            "RegionalDomainName": f"{name}.s3.{ctx.region}.amazonaws.com",
        },
    )


@creates("AWS::SSM::Parameter")
def _parameter(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    name = props.get("Name") or ctx.generated_name(logical_id, max_length=2048)
    request = {"Name": name, "Value": str(props["Value"]), "Type": props.get("Type", "String")}
    request.update(_pick(props, "Description", "AllowedPattern", "Tier", "DataType"))
    ctx.client("ssm").put_parameter(**request)
    return Created(ref=name, attributes={"Type": request["Type"], "Value": request["Value"]})


_PASSWORD_OPTIONS = (
    "ExcludeCharacters",
    "ExcludeLowercase",
    "ExcludeNumbers",
    "ExcludePunctuation",
    "ExcludeUppercase",
    "IncludeSpace",
    "PasswordLength",
    "RequireEachIncludedType",
)


@creates("AWS::SecretsManager::Secret")
def _secret(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    """Moto's CloudFormation has no secrets, and GenerateSecretString is CloudFormation-side logic."""
    client = ctx.client("secretsmanager")
    name = props.get("Name") or f"{logical_id}-{random_suffix()}"
    if "SecretString" in props:
        value = str(props["SecretString"])
    else:
        generate = props.get("GenerateSecretString", {})
        options = _pick(generate, *_PASSWORD_OPTIONS)
        if "PasswordLength" in options:
            options["PasswordLength"] = int(options["PasswordLength"])
        password = client.get_random_password(**options)["RandomPassword"]
        if "SecretStringTemplate" in generate:
            document = json.loads(generate["SecretStringTemplate"])
            document[generate["GenerateStringKey"]] = password
            value = json.dumps(document)
        else:
            value = password
    request: dict[str, Any] = {"Name": name, "SecretString": value, **_pick(props, "Description", "KmsKeyId")}
    if props.get("Tags"):
        request["Tags"] = _tags(props)
    arn = client.create_secret(**request)["ARN"]
    return Created(ref=arn, attributes={"Id": arn})


# --- CloudWatch -------------------------------------------------------------------------------

_ALARM_KEYS = (
    "ActionsEnabled",
    "AlarmActions",
    "AlarmDescription",
    "ComparisonOperator",
    "DatapointsToAlarm",
    "Dimensions",
    "EvaluateLowSampleCountPercentile",
    "EvaluationPeriods",
    "ExtendedStatistic",
    "InsufficientDataActions",
    "MetricName",
    "Metrics",
    "Namespace",
    "OKActions",
    "Period",
    "Statistic",
    "Threshold",
    "ThresholdMetricId",
    "TreatMissingData",
    "Unit",
)


@creates("AWS::CloudWatch::Alarm")
def _alarm(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    """Moto's CloudFormation has no alarms; put_metric_alarm takes the same fields."""
    name = props.get("AlarmName") or ctx.generated_name(logical_id, max_length=255)
    request = {"AlarmName": name, **_pick(props, *_ALARM_KEYS)}
    for key in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
        if key in request:
            request[key] = int(request[key])
    if "Threshold" in request:
        request["Threshold"] = float(request["Threshold"])
    if "ActionsEnabled" in request:
        request["ActionsEnabled"] = str(request["ActionsEnabled"]).lower() == "true"
    ctx.client("cloudwatch").put_metric_alarm(**request)
    return Created(ref=name, attributes={"Arn": ctx.arn("cloudwatch", f"alarm:{name}")})


# --- EventBridge ------------------------------------------------------------------------------


@creates("AWS::Events::EventBus")
def _event_bus(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    name = props.get("Name") or ctx.generated_name(logical_id, max_length=256)
    request: dict[str, Any] = {"Name": name}
    if props.get("Tags"):
        request["Tags"] = _tags(props)
    arn = ctx.client("events").create_event_bus(**request)["EventBusArn"]
    return Created(ref=name, attributes={"Arn": arn, "Name": name})


# --- Virtual: nothing to create, realistic Ref / GetAtt --------------------------------------


@creates("AWS::Lambda::Function", VIRTUAL)
def _function(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    name = props.get("FunctionName") or ctx.generated_name(logical_id, max_length=64)
    return Created(ref=name, attributes={"Arn": ctx.arn("lambda", f"function:{name}")})


@creates("AWS::Lambda::LayerVersion", VIRTUAL)
def _layer(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    name = props.get("LayerName") or logical_id
    return Created(ref=ctx.arn("lambda", f"layer:{name}:1"))


@creates("AWS::IAM::Role", VIRTUAL)
def _role(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    name = props.get("RoleName") or ctx.generated_name(logical_id, max_length=64)
    return Created(
        ref=name,
        attributes={"Arn": ctx.arn("iam", f"role/{name}", region=False), "RoleId": f"AROA{name[-12:]}"},
    )


@creates("AWS::ApiGatewayV2::Api", VIRTUAL)
def _http_api(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    api_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(10))
    return Created(
        ref=api_id,
        attributes={
            "ApiId": api_id,
            "ApiEndpoint": f"https://{api_id}.execute-api.{ctx.region}.amazonaws.com",
        },
    )
