"""Least privilege that is also enough: every AWS call the shipment functions make in a realistic
run (new parcels, duplicates, exceptions, deliveries, sweeps that stop and resume) is allowed by
that function's own policy statements in template.yaml, on the resource it touched."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from dozor.adapters.dynamodb.decisions import DynamoDecisionStore
from dozor.domain.contracts import Decision, DecisionKind, RiskLevel
from dozor.domain.fraud.scoring import PendingCommit
from dozor.handlers.parcels import parcel_sweeper, shipment_events
from dozor.handlers.parcels.wiring import parcel_loss_model, shipment_dependencies
from dozor_local.sam import load_template
from tests.helpers.shipments import (
    TEMPLATE,
    ParcelStack,
    hours_ago,
    parcel_model_dir,
    parcel_stack,
    scan,
    scheduled_event,
    sqs_event,
)

__all__ = ["parcel_model_dir", "parcel_stack"]  # fixtures

_TRANSACT_ITEM_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


def _allowed(function: str) -> set[tuple[str, str]]:
    """(action, logical id[/index/name]) pairs the function's policy statements allow."""
    properties = load_template(TEMPLATE)["Resources"][function]["Properties"]
    allowed = set()
    for policy in properties["Policies"]:
        for statement in policy["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = (
                statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            )
            for resource in resources:
                if "Ref" in resource:
                    target = resource["Ref"]
                elif "Fn::GetAtt" in resource:
                    target = resource["Fn::GetAtt"][0]
                else:  # !Sub ${Table.Arn}/index/Name
                    target = resource["Fn::Sub"].replace("${", "").replace(".Arn}", "")
                allowed |= {(action, target) for action in actions}
    return allowed


class CallLog:
    """The (action, logical id) of every call the handlers make, resolved against the stack."""

    def __init__(self, stack: ParcelStack) -> None:
        self.logical = {r.ref: i for i, r in stack.local.resources.items()}
        self.calls: set[tuple[str, str]] = set()
        self.recording = False
        boto3._get_default_session().events.register("before-parameter-build.*.*", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if not self.recording:
            return
        service, operation = model.service_model.endpoint_prefix, model.name
        action = f"{service}:{operation}"
        if service == "dynamodb" and operation == "TransactWriteItems":
            for item in params["TransactItems"]:
                (kind, body) = next(iter(item.items()))
                table = self.logical[body["TableName"]]
                self.calls |= {(action, table), (f"dynamodb:{_TRANSACT_ITEM_ACTIONS[kind]}", table)}
        elif service == "dynamodb" and operation == "BatchGetItem":
            self.calls |= {(action, self.logical[table]) for table in params["RequestItems"]}
        elif service == "dynamodb":
            table = self.logical[params["TableName"]]
            self.calls.add(
                (action, f"{table}/index/{params['IndexName']}" if "IndexName" in params else table)
            )
        elif service == "sns":
            self.calls.add((action, self.logical[params["TopicArn"]]))
        elif service == "sqs":
            self.calls.add((action, self.logical[params["QueueUrl"]]))
        else:
            self.calls.add((action, "?"))

    @contextmanager
    def recording_calls(self) -> Iterator[set[tuple[str, str]]]:
        self.calls = set()
        self.recording = True
        try:
            yield self.calls
        finally:
            self.recording = False


def _scans(stack: ParcelStack, *bodies: dict[str, Any]) -> None:
    result = shipment_events.lambda_handler(sqs_event([json.dumps(b) for b in bodies]), stack.context())
    assert result["batchItemFailures"] == []


def test_shipment_functions_make_only_calls_their_policies_allow(parcel_stack: ParcelStack) -> None:
    log = CallLog(parcel_stack)  # before the handlers build their clients
    DynamoDecisionStore(
        boto3.client("dynamodb"), parcel_stack.table("FeaturesTable"), parcel_stack.table("DecisionsTable")
    ).commit(
        PendingCommit(
            Decision(
                order_id="ord-LP-1",
                decision=DecisionKind.APPROVE,
                score=0.2,
                risk_level=RiskLevel.LOW,
                reasons=[],
                rules=[],
                model_version="fraud-test",
                decided_at=datetime.now(UTC),
            )
        )
    )

    with log.recording_calls() as scan_calls:
        _scans(
            parcel_stack,
            scan("LP-1", "IN_TRANSIT", hours_ago(30)),
            scan("LP-2", "IN_TRANSIT", hours_ago(400)),
        )
        _scans(parcel_stack, scan("LP-1", "EXCEPTION", hours_ago(20)))
        _scans(parcel_stack, scan("LP-1", "EXCEPTION", hours_ago(20)))  # a duplicate
        _scans(
            parcel_stack,
            scan("LP-1", "DELIVERED", hours_ago(1)),
            *(scan(f"LP-S{i}", "IN_TRANSIT", hours_ago(100)) for i in range(8)),
        )
        _scans(parcel_stack, scan("LP-3", "LOST", hours_ago(2)))
    with log.recording_calls() as sweep_calls:
        tracking, model = shipment_dependencies().tracking, parcel_loss_model()
        budget = iter([timedelta(minutes=1)] * 3 + [timedelta(0)] * 100)
        tracking.sweep(datetime.now(UTC), model, lambda: next(budget), page_size=1)  # stops: saves a cursor
        parcel_sweeper.lambda_handler(
            scheduled_event(datetime.now(UTC)), parcel_stack.context("ParcelSweeperFunction")
        )

    assert scan_calls <= _allowed("ShipmentEventsFunction"), scan_calls - _allowed("ShipmentEventsFunction")
    assert sweep_calls <= _allowed("ParcelSweeperFunction"), sweep_calls - _allowed("ParcelSweeperFunction")
    # and the run did exercise what the policies are for
    assert {
        ("dynamodb:TransactWriteItems", "AlertsTable"),
        ("sns:Publish", "AlertsTopic"),
        ("sqs:SendMessage", "FeedbackQueue"),
    } <= scan_calls
    assert {
        ("dynamodb:Query", "ShipmentsTable/index/DueIndex"),
        ("dynamodb:PutItem", "ShipmentsTable"),
        ("dynamodb:DeleteItem", "ShipmentsTable"),
    } <= sweep_calls
