"""Secrets Manager: the key behind the keyed hashes of personal data."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from dozor.domain.errors import StoreUnavailableError

# The key rotates rarely and a rotation needs a backfill anyway; an hour of caching keeps the
# secret off the hot path.
_CACHE_SECONDS = 3600


def hash_key(secret_id: str, client: Any | None = None) -> bytes:
    """The hashing key (cached); `StoreUnavailableError` when Secrets Manager cannot give it.

    ``client``: a Secrets Manager client with the caller's timeouts (checkout's budget); without
    it powertools' default provider and its default timeouts.
    """
    value: Any
    try:
        if client is None:
            value = parameters.get_secret(secret_id, max_age=_CACHE_SECONDS)
        else:
            value = parameters.SecretsProvider(boto3_client=client).get(secret_id, max_age=_CACHE_SECONDS)
    except GetParameterError as error:  # powertools wraps every failure of the read in it
        raise StoreUnavailableError(f"hash key secret not read: {error}") from error
    if value is None:
        raise StoreUnavailableError(f"hash key secret {secret_id} is empty")
    return value.encode() if isinstance(value, str) else bytes(value)
