"""Queue record bodies into contract models, one way for every SQS-fed function.

A body is the payload itself, or an EventBridge event carrying it in ``detail`` (a bus rule
delivering to the queue). Anything else is an `InvalidRecordError` naming the bad fields: the
record fails alone and is quarantined (`dozor.handlers.quarantine`), never redriven. Records
arrive live, so their instants are also checked against the clock: none may lie more than a day
ahead of ``now`` (`dozor.domain.contracts.Instant`).
"""

import json
from datetime import UTC, datetime
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from dozor.domain.errors import InvalidRecordError

Payload = TypeVar("Payload", bound=BaseModel)


def parse_record(body: str, model: type[Payload], now: datetime | None = None) -> Payload:
    try:
        payload = json.loads(body)
        if isinstance(payload, dict) and "detail" in payload and "detail-type" in payload:
            payload = payload["detail"]
        return model.model_validate(payload, context={"now": now or datetime.now(UTC)})
    except json.JSONDecodeError as error:
        raise InvalidRecordError(f"body is not JSON: {error.msg} at {error.pos}") from error
    except ValidationError as error:
        fields = ", ".join(".".join(map(str, e["loc"])) + f" ({e['msg']})" for e in error.errors())
        raise InvalidRecordError(f"invalid {model.__name__.lower()}: {fields}") from error
    except (RecursionError, ValueError, TypeError, OverflowError) as error:  # deeply nested, odd numbers
        raise InvalidRecordError(
            f"body not readable as {model.__name__.lower()}: {type(error).__name__}"
        ) from error
