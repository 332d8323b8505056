"""Secrets Manager: the key behind the keyed hashes of personal data.

Checkout reads the key inside its latency budget, on first need (`SecretKeyedHasher.ready`),
then keeps it for the container's life: a rotation needs a backfill of every stored hash anyway,
so nothing is gained by re-reading it on the hot path. A cold container that cannot read it in
time has nothing to key orders with: the request is a 503 (retry), and the next one reads again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dozor.adapters.aws_errors import SECRETS_MANAGER, translated
from dozor.domain.errors import DozorError, StoreUnavailableError
from dozor.domain.privacy import PiiHasher


def hash_key(secret_id: str, client: Any) -> bytes:
    """The hashing key; `StoreUnavailableError` when Secrets Manager cannot give it.

    ``client``: a Secrets Manager client with the caller's timeouts (checkout's budget). The
    caller keeps the key (`SecretKeyedHasher`, the console's hasher). One GetSecretValue, not
    powertools' parameters utility: that package imports every provider it has (AppConfig,
    DynamoDB, SSM) with any one of them, on every cold start of the scoring function.
    """
    try:
        with translated(SECRETS_MANAGER, f"hash key secret {secret_id} not read"):
            secret = client.get_secret_value(SecretId=secret_id)
    except DozorError as error:  # missing or refused alike: no key, no pseudonyms; retry later
        raise StoreUnavailableError(str(error)) from error
    value = secret["SecretString"] if "SecretString" in secret else secret.get("SecretBinary")
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
