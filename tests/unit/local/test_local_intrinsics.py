"""The local stack's evaluation of CloudFormation intrinsics (no AWS involved)."""

from __future__ import annotations

from typing import Any

import pytest

from dozor_local.intrinsics import Resolver, UnresolvableError, attribute_references, references

REFS = {"Table": "dozor-Table-ABC", "Queue": "https://sqs.example/123/q"}
ATTS = {("Queue", "Arn"): "arn:aws:sqs:eu-central-1:123:q", ("Queue", "QueueName"): "q"}


def resolver(**conditions: Any) -> Resolver:
    def ref(name: str) -> str:
        if name not in REFS:
            raise UnresolvableError(name)
        return REFS[name]

    return Resolver(
        parameters={"Stage": "prod", "AlarmTopic": ""},
        pseudo={"AWS::Region": "eu-central-1", "AWS::AccountId": "123456789012"},
        ref=ref,
        get_att=lambda logical_id, attribute: ATTS[(logical_id, attribute)],
        conditions={
            "IsProd": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]},
            "HasTopic": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopic"}, ""]}]},
            "ProdWithTopic": {"Fn::And": [{"Condition": "IsProd"}, {"Condition": "HasTopic"}]},
            **conditions,
        },
        mappings={"Sizes": {"prod": {"Memory": 1024}}},
    )


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ({"Ref": "Table"}, "dozor-Table-ABC"),
        ({"Ref": "AWS::Region"}, "eu-central-1"),
        ({"Fn::GetAtt": ["Queue", "Arn"]}, "arn:aws:sqs:eu-central-1:123:q"),
        ({"Fn::GetAtt": "Queue.QueueName"}, "q"),
        (
            {"Fn::Sub": "/aws/${Stage}/${Table}/${Queue.QueueName}/${!Literal}"},
            "/aws/prod/dozor-Table-ABC/q/${Literal}",
        ),
        ({"Fn::Sub": ["${Name}-${AWS::AccountId}", {"Name": {"Ref": "Stage"}}]}, "prod-123456789012"),
        ({"Fn::Join": [":", ["a", {"Ref": "Stage"}]]}, "a:prod"),
        ({"Fn::Select": [1, {"Fn::Split": ["/", "x/y/z"]}]}, "y"),
        ({"Fn::If": ["IsProd", "big", "small"]}, "big"),
        ({"Fn::If": ["ProdWithTopic", "page", "quiet"]}, "quiet"),
        ({"Fn::FindInMap": ["Sizes", {"Ref": "Stage"}, "Memory"]}, 1024),
        ({"Fn::Base64": "hi"}, "aGk="),
    ],
)
def test_intrinsics_evaluate_like_cloudformation(expression: Any, expected: Any) -> None:
    assert resolver().resolve(expression) == expected


def test_no_value_removes_the_key_or_item() -> None:
    value = {
        "Keep": 1,
        "Drop": {"Fn::If": ["HasTopic", "x", {"Ref": "AWS::NoValue"}]},
        "List": [{"Ref": "AWS::NoValue"}],
    }

    assert resolver().resolve(value) == {"Keep": 1, "List": []}


def test_unknown_names_and_functions_are_errors_not_silent_strings() -> None:
    with pytest.raises(UnresolvableError):
        resolver().resolve({"Ref": "Missing"})
    with pytest.raises(UnresolvableError, match="Fn::ImportValue"):
        resolver().resolve({"Fn::ImportValue": "shared-vpc"})
    with pytest.raises(UnresolvableError, match="Nope"):
        resolver().condition("Nope")


def test_passthrough_leaves_plain_references_for_cloudformation() -> None:
    passing = Resolver(
        parameters={}, pseudo={}, ref=REFS.__getitem__, get_att=lambda *_: "", passthrough=frozenset({"Rule"})
    )

    assert passing.resolve(
        {"A": {"Ref": "Rule"}, "B": {"Fn::GetAtt": "Rule.Arn"}, "C": {"Ref": "Table"}}
    ) == {
        "A": {"Ref": "Rule"},
        "B": {"Fn::GetAtt": ["Rule", "Arn"]},
        "C": "dozor-Table-ABC",
    }


def test_references_and_attribute_references_find_every_dependency() -> None:
    value = {
        "Env": {"A": {"Ref": "Table"}, "B": {"Fn::Sub": "${Queue.Arn}/${AWS::Region}/${!Skip}"}},
        "List": [{"Fn::GetAtt": ["Topic", "TopicName"]}, {"Fn::Sub": ["${X}", {"X": {"Ref": "Bucket"}}]}],
    }

    assert set(references(value)) == {"Table", "Queue", "AWS::Region", "Topic", "Bucket"}
    assert set(attribute_references(value)) == {("Queue", "Arn"), ("Topic", "TopicName")}
