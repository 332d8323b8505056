"""A template's Schedule event runs on the stack's simulated clock, and the function sees that time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dozor_local.pollers import SimClock
from dozor_local.server import LocalServer

pytestmark = pytest.mark.e2e

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  TicksQueue:
    Type: AWS::SQS::Queue
  TickFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: tests.e2e.throwaway_handlers.record_tick
      Runtime: python3.12
      CodeUri: .
      Environment:
        Variables:
          TICKS_QUEUE_URL: !Ref TicksQueue
      Events:
        Sweep:
          Type: Schedule
          Properties:
            Schedule: rate(1 hour)
"""


def test_schedule_fires_on_simulated_time(tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(TEMPLATE)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    with LocalServer(template, api_port=0, clock=SimClock(start)) as local:
        assert local.advance_clock(start + timedelta(hours=3, minutes=30)) == 3
        sqs = local.client("sqs")
        times = []
        while messages := sqs.receive_message(
            QueueUrl=local.stack.queue_url("TicksQueue"), MaxNumberOfMessages=10
        ).get("Messages", []):
            times += [m["Body"] for m in messages]
            for m in messages:
                sqs.delete_message(
                    QueueUrl=local.stack.queue_url("TicksQueue"), ReceiptHandle=m["ReceiptHandle"]
                )
        assert sorted(times) == ["2026-11-01T01:00:00Z", "2026-11-01T02:00:00Z", "2026-11-01T03:00:00Z"]
        assert [s.ticks for s in local.schedulers] == [3]
