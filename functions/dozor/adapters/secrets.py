"""Secrets Manager: the key behind the keyed hashes of personal data.

Checkout reads the key inside its latency budget, on first need (`SecretKeyedHasher.ready`),
then keeps it for the container's life: a rotation needs a backfill of every stored hash anyway,
so nothing is gained by re-reading it on the hot path. A cold container that cannot read it in
time has nothing to key orders with: the request is a 503 (retry), and the next one reads again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from dozor.domain.errors import StoreUnavailableError
from dozor.domain.privacy import PiiHasher

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


class SecretKeyedHasher(PiiHasher):
    """A `PiiHasher` whose key Secrets Manager gives on first need, within the caller's time."""

    def __init__(self, secret_id: str, client: Any) -> None:
        super().__init__(b"")
        self._secret_id = secret_id
        self._client = client
        self._loaded = False

    def ready(self, fits: Callable[[], bool] | None = None) -> None:
        """Read the key unless it is known; ``fits``: may the read be made now (else unavailable)."""
        if self._loaded:
            return
        if fits is not None and not fits():
            raise StoreUnavailableError("no time left in the decision budget to read the hash key")
        super().__init__(hash_key(self._secret_id, self._client))
        self._loaded = True

    def __call__(self, kind: str, value: str) -> str:
        if not self._loaded:  # a caller without a budget (the queue functions) reads it here
            self.ready()
        return super().__call__(kind, value)
