"""The one translator: every boto3/botocore failure leaves an adapter as a domain error family."""

from __future__ import annotations

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)

from dozor.adapters.aws_errors import (
    DYNAMODB,
    S3,
    SQS,
    SSM,
    Service,
    held_by_a_transaction,
    translate,
    translated,
)
from dozor.domain.errors import (
    ConflictError,
    DozorError,
    InvalidInputError,
    NotFoundError,
    StoreUnavailableError,
)


def client_error(code: str, reasons: list[str] | None = None) -> ClientError:
    response: dict = {"Error": {"Code": code, "Message": "m"}}
    if reasons is not None:
        response["CancellationReasons"] = [{"Code": r} for r in reasons]
    return ClientError(response, "SomeOperation")


URL = "http://127.0.0.1:1"


@pytest.mark.parametrize(
    ("error", "family"),
    [
        (ReadTimeoutError(endpoint_url=URL), StoreUnavailableError),
        (ConnectTimeoutError(endpoint_url=URL), StoreUnavailableError),
        (EndpointConnectionError(endpoint_url=URL), StoreUnavailableError),
        (ConnectionClosedError(endpoint_url=URL), StoreUnavailableError),
        (NoCredentialsError(), StoreUnavailableError),
        (ParamValidationError(report="Invalid length for parameter Key"), InvalidInputError),
        (client_error("ProvisionedThroughputExceededException"), StoreUnavailableError),
        (client_error("ThrottlingException"), StoreUnavailableError),
        (client_error("InternalServerError"), StoreUnavailableError),
        (client_error("AccessDeniedException"), StoreUnavailableError),
        (client_error("ResourceNotFoundException"), StoreUnavailableError),  # a missing table: deployment
        (client_error("ConditionalCheckFailedException"), ConflictError),
        (client_error("ValidationException"), InvalidInputError),
    ],
)
def test_dynamodb_failures_map_onto_the_families(error: Exception, family: type[DozorError]) -> None:
    translated_error = translate(DYNAMODB, "reading", error)  # type: ignore[arg-type]
    assert type(translated_error) is family
    assert translated_error.args[0].startswith("reading: dynamodb")


def test_a_transaction_cancelled_only_by_conditions_is_a_conflict_naming_the_items() -> None:
    error = translate(
        DYNAMODB, "w", client_error("TransactionCanceledException", ["None", "ConditionalCheckFailed"])
    )
    assert isinstance(error, ConflictError)
    assert error.failed_items == frozenset({1})


@pytest.mark.parametrize(
    "reason", ["TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"]
)
def test_a_transaction_cancelled_by_contention_is_transient(reason: str) -> None:
    # A conflicting writer or a busy partition: trying again can succeed, so it is not a conflict
    error = translate(
        DYNAMODB, "w", client_error("TransactionCanceledException", ["ConditionalCheckFailed", reason])
    )
    assert type(error) is StoreUnavailableError


@pytest.mark.parametrize(
    ("code", "held"),
    [
        ("TransactionConflictException", True),
        ("ThrottlingException", False),
        ("TransactionCanceledException", False),
        ("ConditionalCheckFailedException", False),
    ],
)
def test_only_a_write_refused_for_a_transaction_holding_the_item_is_worth_an_immediate_retry(
    code: str, held: bool
) -> None:
    def raised() -> DozorError:
        try:
            with translated(DYNAMODB, "counters not updated"):
                raise client_error(code)
        except DozorError as error:
            return error
        raise AssertionError("translated let the error through")

    assert held_by_a_transaction(raised()) is held
    assert held_by_a_transaction(StoreUnavailableError("no cause")) is False


@pytest.mark.parametrize(
    ("service", "code", "family"),
    [
        (S3, "NoSuchKey", NotFoundError),
        (S3, "404", NotFoundError),
        (S3, "PreconditionFailed", ConflictError),
        (S3, "SlowDown", StoreUnavailableError),
        (SSM, "ParameterNotFound", NotFoundError),
        (SSM, "ThrottlingException", StoreUnavailableError),
        (SQS, "InvalidMessageContents", InvalidInputError),
        (SQS, "AWS.SimpleQueueService.NonExistentQueue", StoreUnavailableError),
    ],
)
def test_each_service_kind_has_its_own_codes(service: Service, code: str, family: type[DozorError]) -> None:
    assert type(translate(service, "x", client_error(code))) is family


def test_the_context_manager_raises_the_domain_error_from_the_botocore_one() -> None:
    cause = ReadTimeoutError(endpoint_url=URL)
    with pytest.raises(StoreUnavailableError) as raised, translated(DYNAMODB, "decision not stored"):
        raise cause
    assert raised.value.__cause__ is cause


def test_other_exceptions_pass_through_untouched() -> None:
    with pytest.raises(KeyError), translated(DYNAMODB, "x"):
        raise KeyError("not botocore's")
