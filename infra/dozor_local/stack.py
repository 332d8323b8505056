"""Build the resources of template.yaml on whatever AWS endpoint boto3 points at (moto, in practice).

    with mock_aws():
        stack = LocalStack.deploy()                  # template.yaml at the repository root
        stack.queue_url("OrderEventsQueue")
        spec = stack.function("OrderEventsFunction")  # handler, env (resolved), timeout, events...

How: the SAM transform runs offline (`sam.translate`, cached), then every resource of the
translated template is created in dependency order, its intrinsics resolved against the
resources already made. Data-plane types are created through their own APIs
(`resources.CREATORS`); Lambda, IAM and API Gateway resources are virtual (the handlers run
in-process); any other type goes to moto's CloudFormation in one stack at the end. Works the same
under `moto.mock_aws` and against a `moto.server.ThreadedMotoServer` (pass `endpoint_url`, or set
AWS_ENDPOINT_URL).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import boto3

from dozor_local import moto_quirks
from dozor_local import resources as res
from dozor_local.intrinsics import Resolver, UnresolvableError, attribute_references, references
from dozor_local.sam import load_template, translate

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TEMPLATE = REPO_ROOT / "template.yaml"
DEFAULT_REGION = "eu-central-1"
DEFAULT_STACK_NAME = "dozor-local"

CreatedBy = Literal["api", "cloudformation", "virtual"]


@dataclass(frozen=True)
class Resource:
    """A resource of the deployed stack: what `Ref` and `Fn::GetAtt` return for it."""

    logical_id: str
    type: str
    ref: str
    attributes: Mapping[str, str]
    created_by: CreatedBy


@dataclass(frozen=True)
class EventSource:
    """One entry of a function's `Events` in the SAM template."""

    name: str
    type: str  # SQS, HttpApi, SNS, Schedule, ...
    source: str | None = None  # logical id of the queue / topic / table / bucket behind the event
    batch_size: int | None = None
    batching_window: int | None = None  # MaximumBatchingWindowInSeconds
    function_response_types: tuple[str, ...] = ()
    path: str | None = None
    method: str | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)

    @property
    def queue(self) -> str | None:
        """Logical id of the SQS queue, for SQS events."""
        return self.source if self.type == "SQS" else None


@dataclass(frozen=True)
class FunctionSpec:
    """A Lambda function as the template defines it, with its environment resolved."""

    logical_id: str
    name: str
    arn: str
    handler: str
    runtime: str
    architectures: tuple[str, ...]
    timeout: int
    memory: int
    env: Mapping[str, str]
    events: tuple[EventSource, ...]

    def events_of_type(self, event_type: str) -> list[EventSource]:
        return [event for event in self.events if event.type == event_type]


class LocalStack:
    """The resources of one deployed template; build it with `LocalStack.deploy`."""

    def __init__(
        self,
        *,
        template_path: Path,
        stack_name: str,
        context: res.DeployContext,
        resources: Mapping[str, Resource],
        functions: Mapping[str, FunctionSpec],
        outputs: Mapping[str, str],
    ) -> None:
        self.template_path = template_path
        self.stack_name = stack_name
        self.region = context.region
        self.account_id = context.account_id
        self.endpoint_url = context.endpoint_url
        self.resources = resources
        self.functions = functions
        self.outputs = outputs
        self._context = context

    @classmethod
    def deploy(
        cls,
        template_path: str | os.PathLike[str] = DEFAULT_TEMPLATE,
        *,
        stack_name: str = DEFAULT_STACK_NAME,
        parameters: Mapping[str, str] | None = None,
        session: boto3.Session | None = None,
        endpoint_url: str | None = None,
    ) -> LocalStack:
        """Create every resource of the template; parameters override the template's defaults."""
        moto_quirks.install()
        return _Deployer(
            Path(template_path),
            stack_name=stack_name,
            parameters=parameters or {},
            session=session,
            endpoint_url=endpoint_url,
        ).run()

    def function(self, logical_id: str) -> FunctionSpec:
        try:
            return self.functions[logical_id]
        except KeyError:
            known = sorted(self.functions)
            raise KeyError(f"no function {logical_id!r} in {self.template_path.name}; have {known}") from None

    def resource(self, logical_id: str) -> Resource:
        try:
            return self.resources[logical_id]
        except KeyError:
            raise KeyError(f"{logical_id!r} was not created by the local stack") from None

    def physical_id(self, logical_id: str) -> str:
        """What `Ref` gives: a table or bucket name, a queue URL, a topic or secret ARN."""
        return self.resource(logical_id).ref

    def attribute(self, logical_id: str, name: str) -> str:
        """What `Fn::GetAtt logical_id.name` gives."""
        resource = self.resource(logical_id)
        try:
            return resource.attributes[name]
        except KeyError:
            raise KeyError(f"{logical_id} ({resource.type}) has no attribute {name!r}") from None

    def queue_url(self, logical_id: str) -> str:
        return self.attribute(logical_id, "QueueUrl")

    def queue_arn(self, logical_id: str) -> str:
        return self.attribute(logical_id, "Arn")

    def env_for(self, logical_id: str) -> dict[str, str]:
        """The whole environment Lambda gives the function: its template variables plus the runtime's."""
        spec = self.function(logical_id)
        runtime = {
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(spec.timeout),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": time.strftime("%Y/%m/%d/[$LATEST]") + res.random_suffix(32).lower(),
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_SAM_LOCAL": "true",
            "_HANDLER": spec.handler,
        }
        if self.endpoint_url:
            runtime["AWS_ENDPOINT_URL"] = self.endpoint_url
        # No X-Ray daemon locally: tracing off unless the template insists.
        return {"POWERTOOLS_TRACE_DISABLED": "true", **spec.env, **runtime}

    def client(self, service: str) -> Any:
        """A boto3 client on the stack's session, endpoint and region."""
        return self._context.client(service)


class _Deployer:
    def __init__(
        self,
        template_path: Path,
        *,
        stack_name: str,
        parameters: Mapping[str, str],
        session: boto3.Session | None,
        endpoint_url: str | None,
    ) -> None:
        self.template_path = template_path
        self.sam_template = load_template(template_path)
        session = session or res.fresh_session()
        region = session.region_name or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
        declared = self.sam_template.get("Parameters", {})
        unknown = set(parameters) - set(declared)
        if unknown:
            raise ValueError(f"unknown template parameters: {sorted(unknown)}")
        self.parameters = {
            name: str(parameters.get(name, spec.get("Default", ""))) for name, spec in declared.items()
        }
        self.template = translate(self.sam_template, region=region, parameters=self.parameters)
        self.context = res.DeployContext(
            session=session, endpoint_url=endpoint_url, region=region, account_id="", stack_name=stack_name
        )
        self.context.account_id = self.context.client("sts").get_caller_identity()["Account"]
        self.pseudo = {
            "AWS::Region": region,
            "AWS::AccountId": self.context.account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack_name,
            "AWS::StackId": self.context.arn("cloudformation", f"stack/{stack_name}/local"),
            "AWS::NotificationARNs": "",
        }
        self.created: dict[str, Resource] = {}

    # --- resolution ---------------------------------------------------------------------------

    def resolver(self, passthrough: frozenset[str] = frozenset()) -> Resolver:
        return Resolver(
            parameters=self.parameters,
            pseudo=self.pseudo,
            ref=lambda name: self._lookup(name).ref,
            get_att=self._get_att,
            conditions=self.template.get("Conditions"),
            mappings=self.template.get("Mappings"),
            passthrough=passthrough,
        )

    def _lookup(self, logical_id: str) -> Resource:
        if logical_id in self.created:
            return self.created[logical_id]
        declared = self.template["Resources"].get(logical_id)
        if declared is None:
            raise UnresolvableError(f"{logical_id!r} is neither a parameter nor a resource of the template")
        raise UnresolvableError(f"{logical_id} ({declared['Type']}) is not created by the local stack")

    def _get_att(self, logical_id: str, attribute: str) -> str:
        resource = self._lookup(logical_id)
        if attribute not in resource.attributes:
            raise UnresolvableError(f"Fn::GetAtt {logical_id}.{attribute}: not available locally")
        return resource.attributes[attribute]

    # --- deployment ---------------------------------------------------------------------------

    def run(self) -> LocalStack:
        resources: dict[str, Any] = self.template["Resources"]
        resolver = self.resolver()
        wanted = [
            logical_id
            for logical_id, resource in resources.items()
            if "Condition" not in resource or resolver.condition(resource["Condition"])
        ]
        native = [
            i for i in wanted if resources[i]["Type"] in res.VIRTUAL or resources[i]["Type"] in res.CREATORS
        ]
        fallback = [
            i
            for i in wanted
            if i not in native
            and not res.is_ignored(resources[i]["Type"], resources[i].get("Properties", {}))
        ]
        for logical_id in _dependency_order(native, resources):
            self._create(logical_id, resources[logical_id], resolver, fallback)
        if fallback:
            self._create_with_cloudformation(fallback)

        return LocalStack(
            template_path=self.template_path,
            stack_name=self.context.stack_name,
            context=self.context,
            resources=dict(self.created),
            functions=self._functions(resolver),
            outputs=self._outputs(resolver),
        )

    def _create(
        self, logical_id: str, resource: dict[str, Any], resolver: Resolver, later: list[str]
    ) -> None:
        resource_type = resource["Type"]
        virtual = resource_type in res.VIRTUAL
        blocking = set(references(resource.get("Properties", {}))) & set(later)
        if blocking and not virtual:
            raise UnresolvableError(
                f"{logical_id} refers to {sorted(blocking)}, which only moto's CloudFormation can create; "
                f"add a creator for their type to dozor_local.resources"
            )
        try:
            properties = resolver.resolve(resource.get("Properties", {}))
            creator = res.VIRTUAL[resource_type] if virtual else res.CREATORS[resource_type]
            made = creator(self.context, logical_id, properties)
        except UnresolvableError as exc:
            if virtual:  # a virtual resource's properties are informative only
                made = res.VIRTUAL[resource_type](self.context, logical_id, {})
            else:
                raise UnresolvableError(f"{logical_id}: {exc}") from exc
        self.created[logical_id] = Resource(
            logical_id=logical_id,
            type=resource_type,
            ref=made.ref,
            attributes=dict(made.attributes),
            created_by="virtual" if virtual else "api",
        )

    def _create_with_cloudformation(self, logical_ids: list[str]) -> None:
        """Deploy the types without a native creator into moto's CloudFormation, as one stack."""
        resolver = self.resolver(passthrough=frozenset(logical_ids))
        body: dict[str, Any] = {"AWSTemplateFormatVersion": "2010-09-09", "Resources": {}, "Outputs": {}}
        for logical_id in logical_ids:
            resource = dict(self.template["Resources"][logical_id])
            resource.pop("Condition", None)
            resource["Properties"] = resolver.resolve(resource.get("Properties", {}))
            depends = [d for d in _as_list(resource.pop("DependsOn", [])) if d in logical_ids]
            if depends:
                resource["DependsOn"] = depends
            body["Resources"][logical_id] = resource
        wanted_attributes = sorted(
            {(i, a) for i, a in attribute_references(self.template) if i in logical_ids}
        )
        for n, (logical_id, attribute) in enumerate(wanted_attributes):
            body["Outputs"][f"Att{n}"] = {"Value": {"Fn::GetAtt": [logical_id, attribute]}}

        cloudformation = self.context.client("cloudformation")
        cloudformation.create_stack(StackName=self.context.stack_name, TemplateBody=json.dumps(body))
        stack = _wait_for_stack(cloudformation, self.context.stack_name)
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        attributes: dict[str, dict[str, str]] = {i: {} for i in logical_ids}
        for n, (logical_id, attribute) in enumerate(wanted_attributes):
            if f"Att{n}" in outputs:
                attributes[logical_id][attribute] = outputs[f"Att{n}"]
        summaries = cloudformation.describe_stack_resources(StackName=self.context.stack_name)[
            "StackResources"
        ]
        for summary in summaries:
            logical_id = summary["LogicalResourceId"]
            self.created[logical_id] = Resource(
                logical_id=logical_id,
                type=summary["ResourceType"],
                ref=summary["PhysicalResourceId"],
                attributes=attributes.get(logical_id, {}),
                created_by="cloudformation",
            )
        missing = set(logical_ids) - {s["LogicalResourceId"] for s in summaries}
        if missing:
            log.warning("moto's CloudFormation did not create %s", sorted(missing))

    def _functions(self, resolver: Resolver) -> dict[str, FunctionSpec]:
        functions: dict[str, FunctionSpec] = {}
        sam_resources = self.sam_template["Resources"]
        for logical_id, resource in self.template["Resources"].items():
            if resource["Type"] != "AWS::Lambda::Function" or logical_id not in self.created:
                continue
            props = resource.get("Properties", {})
            variables = resolver.resolve(props.get("Environment", {}).get("Variables", {}))
            sam_events = sam_resources.get(logical_id, {}).get("Properties", {}).get("Events", {})
            functions[logical_id] = FunctionSpec(
                logical_id=logical_id,
                name=self.created[logical_id].ref,
                arn=self.created[logical_id].attributes["Arn"],
                handler=str(props.get("Handler", "")),
                runtime=str(props.get("Runtime", "")),
                architectures=tuple(props.get("Architectures", ["x86_64"])),
                timeout=int(props.get("Timeout", 3)),
                memory=int(props.get("MemorySize", 128)),
                env={name: _env_string(value) for name, value in variables.items()},
                events=tuple(_event_source(name, event) for name, event in sam_events.items()),
            )
        return functions

    def _outputs(self, resolver: Resolver) -> dict[str, str]:
        outputs: dict[str, str] = {}
        for name, output in self.template.get("Outputs", {}).items():
            if "Condition" in output and not resolver.condition(output["Condition"]):
                continue
            try:
                outputs[name] = str(resolver.resolve(output["Value"]))
            except UnresolvableError as exc:
                log.debug("output %s not available locally: %s", name, exc)
        return outputs


_DEFAULT_BATCH_SIZE = {"SQS": 10, "DynamoDB": 100, "Kinesis": 100}


def _event_source(name: str, event: Mapping[str, Any]) -> EventSource:
    props = event.get("Properties", {})
    event_type = str(event.get("Type", ""))
    source = next(
        (
            _logical_id_of(props[key])
            for key in ("Queue", "Topic", "Stream", "Bucket", "ApiId")
            if key in props and _logical_id_of(props[key])
        ),
        None,
    )
    return EventSource(
        name=name,
        type=event_type,
        source=source,
        batch_size=int(props["BatchSize"]) if "BatchSize" in props else _DEFAULT_BATCH_SIZE.get(event_type),
        batching_window=int(props["MaximumBatchingWindowInSeconds"])
        if "MaximumBatchingWindowInSeconds" in props
        else None,
        function_response_types=tuple(props.get("FunctionResponseTypes", ())),
        path=props.get("Path"),
        method=str(props["Method"]).upper() if "Method" in props else None,
        properties=props,
    )


def _logical_id_of(value: Any) -> str | None:
    """The resource an event source points at (`!Ref X`, `!GetAtt X.Arn`), if it is in the template."""
    if isinstance(value, dict) and len(value) == 1:
        if "Ref" in value and isinstance(value["Ref"], str):
            return value["Ref"]
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return str(target.split(".", 1)[0] if isinstance(target, str) else target[0])
    return None


def _env_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _dependency_order(logical_ids: list[str], resources: Mapping[str, Any]) -> Iterator[str]:
    """Template order, except that every resource comes after the ones it refers to."""
    pending = set(logical_ids)
    depends: dict[str, set[str]] = {
        i: (
            set(references(resources[i].get("Properties", {})))
            | set(_as_list(resources[i].get("DependsOn", [])))
        )
        & pending
        for i in logical_ids
    }
    done: set[str] = set()
    while pending:
        ready = [i for i in logical_ids if i in pending and depends[i] <= done]
        if not ready:
            raise UnresolvableError(f"circular references between {sorted(pending)}")
        for logical_id in ready:
            pending.discard(logical_id)
            done.add(logical_id)
            yield logical_id


def _wait_for_stack(cloudformation: Any, stack_name: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        stack: dict[str, Any] = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
        status = stack["StackStatus"]
        if status == "CREATE_COMPLETE":
            return stack
        if not status.endswith("IN_PROGRESS") or time.monotonic() > deadline:
            raise RuntimeError(f"stack {stack_name} ended in {status}: {stack.get('StackStatusReason', '')}")
        time.sleep(0.05)
