"""The one translator from boto3/botocore failures to the domain's error families.

Every adapter calls AWS inside ``with translated(SERVICE, "what was being done"):``. Whatever
boto3 raises leaves as a `dozor.domain.errors` family: a `ClientError` by its error code (one
table per service kind below), a `BotoCoreError` by its kind: timeouts, refused or dropped
connections and missing credentials are `StoreUnavailableError` (the call may work later), a
request botocore refuses to send is `InvalidInputError`. Nothing above the adapters ever sees a
botocore exception, and nothing matches error text.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from dozor.domain.errors import (
    ConflictError,
    DozorError,
    InvalidInputError,
    NotFoundError,
    StoreUnavailableError,
)


@dataclass(frozen=True)
class Service:
    """The error codes of one AWS service kind that are not simply "unavailable"."""

    name: str
    conflict: frozenset[str] = field(default_factory=frozenset)
    not_found: frozenset[str] = field(default_factory=frozenset)
    invalid: frozenset[str] = field(default_factory=frozenset)


DYNAMODB = Service(
    "dynamodb",
    conflict=frozenset({"ConditionalCheckFailedException"}),
    not_found=frozenset(),  # a missing table is a deployment fault: unavailable, not "no such order"
    invalid=frozenset({"ValidationException", "ItemCollectionSizeLimitExceededException"}),
)
SQS = Service("sqs", invalid=frozenset({"InvalidMessageContents", "InvalidParameterValue"}))
SNS = Service("sns", invalid=frozenset({"InvalidParameter", "InvalidParameterValue"}))
S3 = Service(
    "s3",
    conflict=frozenset({"PreconditionFailed", "412"}),
    not_found=frozenset({"NoSuchKey", "NotFound", "404"}),
)
SSM = Service("ssm", not_found=frozenset({"ParameterNotFound", "ParameterVersionNotFound"}))
SECRETS_MANAGER = Service("secretsmanager", not_found=frozenset({"ResourceNotFoundException"}))

# Transaction cancellation reasons that mean "try again": somebody else held the item, or the
# table was too busy. ConditionalCheckFailed is a conflict; anything else is unavailable too.
_CONDITION_FAILED = "ConditionalCheckFailed"
_NO_REASON = {None, "None"}


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def failed_conditions(error: ClientError) -> frozenset[int] | None:
    """Positions of the transaction's items whose condition failed, when that alone cancelled it."""
    if error_code(error) != "TransactionCanceledException":
        return None
    reasons: list[Mapping[str, object]] = error.response.get("CancellationReasons") or []
    failed = frozenset(i for i, r in enumerate(reasons) if r.get("Code") == _CONDITION_FAILED)
    others = [r for r in reasons if r.get("Code") not in _NO_REASON and r.get("Code") != _CONDITION_FAILED]
    return failed if failed and not others else None


def translate(service: Service, what: str, error: ClientError | BotoCoreError) -> DozorError:
    """The domain error for ``error``, raised while doing ``what`` against ``service``."""
    if isinstance(error, ParamValidationError):
        return InvalidInputError(f"{what}: {service.name} refused to send the request ({error})")
    if isinstance(error, BotoCoreError):
        return StoreUnavailableError(f"{what}: {service.name} {type(error).__name__}")
    code = error_code(error)
    message = f"{what}: {service.name} {code}"
    failed = failed_conditions(error)
    if failed is not None:
        return ConflictError(message, failed)
    if code in service.conflict:
        return ConflictError(message, frozenset({0}))
    if code in service.not_found:
        return NotFoundError(message)
    if code in service.invalid:
        return InvalidInputError(message)
    return StoreUnavailableError(message)  # throttling, 5xx, access, transaction conflicts, ...


def held_by_a_transaction(error: DozorError) -> bool:
    """Whether `error` came from DynamoDB refusing a write because a transaction held the item
    (TransactionConflictException): a short wait and a retry of the same write is what it asks."""
    cause = error.__cause__
    return isinstance(cause, ClientError) and error_code(cause) == "TransactionConflictException"


@contextmanager
def translated(service: Service, what: str) -> Iterator[None]:
    """Run AWS calls; any botocore failure leaves as the domain error `translate` names."""
    try:
        yield
    except (ClientError, BotoCoreError) as error:
        raise translate(service, what, error) from error
