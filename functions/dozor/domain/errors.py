"""The one error model: every failure Dozor knows about is a `DozorError` of one of four families.

Adapters turn whatever boto3/botocore raises into these (`dozor.adapters.aws_errors`), the domain
raises and catches only these, and each handler maps the families onto its answer in one place:

| family                  | what it means                                 | HTTP | queue record             |
|-------------------------|-----------------------------------------------|------|--------------------------|
| `StoreUnavailableError` | transient: throttled, timed out, unreachable  | 503  | retried, then the DLQ    |
| `ConflictError`         | a conditional write lost: it exists / changed | 409  | retried, then the DLQ    |
| `InvalidInputError`     | can never succeed as sent                     | 422  | failed alone, to the DLQ |
| `NotFoundError`         | what was named does not exist                 | 404  | failed alone, to the DLQ |

The named subclasses are the cases some caller handles on purpose; everything else is raised as
the family itself. Nobody matches error text.
"""

from __future__ import annotations


class DozorError(Exception):
    """Base of every error the domain and the adapters raise on purpose."""


class StoreUnavailableError(DozorError):
    """A store, queue, topic or parameter could not be read or written in time (retry later).

    ``retired_writers``: set by a decision store that stopped halfway through an order: the
    names the order may be stored or counted under, none of which anybody will count under
    again (`PendingCommit.retired_writers`).
    """

    def __init__(self, message: str, retired_writers: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.retired_writers = retired_writers


class ConflictError(DozorError):
    """A conditional write found the item already there, or changed since it was read."""

    def __init__(self, message: str, failed_items: frozenset[int] = frozenset()) -> None:
        super().__init__(message)
        # Which writes of a transaction lost their condition, by position (0 for a single write).
        self.failed_items = failed_items


class InvalidInputError(DozorError):
    """Input that can never be processed as it is: retrying it changes nothing."""

    def __init__(self, message: str, fields: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        # The offending fields by dotted path (`buyer.account_created_at`), when one is to blame.
        self.fields = fields


class NotFoundError(DozorError):
    """The order, parcel, model version or parameter named does not exist."""


class AlreadyDecidedError(ConflictError):
    """The order was decided before (a replay or a concurrent delivery)."""


class ParcelConflictError(ConflictError):
    """The parcel changed between read and write (another batch, the sweeper)."""


class ArtifactConflictError(ConflictError):
    """A model version already published with other bytes, or a reserved version name."""


class UnknownVersionError(NotFoundError):
    """No model artifact under that version (or not a version name at all)."""


class ModelMismatchError(InvalidInputError):
    """A model artifact whose feature list is not the one this code computes."""


class InvalidRecordError(InvalidInputError):
    """A queue record (or request body) that is not the contract it should carry."""
