"""Secrets Manager: the key behind the keyed hashes of personal data."""

from __future__ import annotations

from aws_lambda_powertools.utilities import parameters

# The key rotates rarely and a rotation needs a backfill anyway; an hour of caching keeps the
# secret off the hot path.
_CACHE_SECONDS = 3600


def hash_key(secret_id: str) -> bytes:
    value = parameters.get_secret(secret_id, max_age=_CACHE_SECONDS)
    return value.encode() if isinstance(value, str) else bytes(value)
