"""The console function's composition root: the tables, queue, topic and registry it reads and changes.

Built on first use, once per container, like the features' wiring; tests call
`console_dependencies.cache_clear()` between setups. The HMAC key (to key a typed card or email as
the Features table does) is read only when a list change needs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from dozor.adapters.dynamodb.decisions import DynamoDecisionStore
from dozor.adapters.dynamodb.labels import DynamoLabelStore
from dozor.adapters.dynamodb.lists import DynamoListEntries
from dozor.adapters.dynamodb.parcels import DynamoAlertStore, DynamoParcelStore
from dozor.adapters.dynamodb.reviews import DynamoReviewCases
from dozor.adapters.dynamodb.shadow_tally import ShadowTally
from dozor.adapters.s3 import S3ModelArtifacts
from dozor.adapters.secrets import hash_key
from dozor.adapters.sns import SnsAlertTopic
from dozor.adapters.sqs import SqsFeedbackQueue
from dozor.adapters.ssm import SsmModelPointers
from dozor.domain.parcels.lanes import LaneDeadlines
from dozor.domain.parcels.model import PACKAGED_PARCEL_MODEL_DIR
from dozor.domain.privacy import PiiHasher
from dozor.handlers.wiring import aws_client
from dozor.settings import ConsoleSettings


@dataclass
class ConsoleDependencies:
    settings: ConsoleSettings
    ddb: Any
    reviews: DynamoReviewCases
    decisions: DynamoDecisionStore
    labels: DynamoLabelStore
    feedback: SqsFeedbackQueue
    lists: DynamoListEntries
    alerts: DynamoAlertStore
    parcels: DynamoParcelStore
    topic: SnsAlertTopic
    deadlines: LaneDeadlines
    tally: ShadowTally
    pointers: SsmModelPointers | None
    artifacts: S3ModelArtifacts | None

    @cached_property
    def hasher(self) -> PiiHasher:
        return PiiHasher(hash_key(self.settings.hash_key_secret_arn, aws_client("secretsmanager")))


@lru_cache(maxsize=1)
def console_dependencies() -> ConsoleDependencies:
    settings = ConsoleSettings()  # filled from the environment
    ddb = aws_client("dynamodb")
    pointers = (
        SsmModelPointers(
            aws_client("ssm"),
            settings.active_model_parameter,
            settings.shadow_model_parameter,
            max_age=settings.model_refresh_seconds,
        )
        if settings.active_model_parameter
        else None
    )
    return ConsoleDependencies(
        settings=settings,
        ddb=ddb,
        reviews=DynamoReviewCases(ddb, settings.review_cases_table_name),
        decisions=DynamoDecisionStore(ddb, settings.features_table_name, settings.decisions_table_name),
        labels=DynamoLabelStore(
            ddb, settings.labels_table_name, settings.decisions_table_name, settings.features_table_name
        ),
        feedback=SqsFeedbackQueue(aws_client("sqs"), settings.feedback_queue_url),
        lists=DynamoListEntries(ddb, settings.list_entries_table_name),
        alerts=DynamoAlertStore(ddb, settings.alerts_table_name, settings.shipments_table_name),
        parcels=DynamoParcelStore(ddb, settings.shipments_table_name),
        topic=SnsAlertTopic(aws_client("sns"), settings.alerts_topic_arn),
        deadlines=LaneDeadlines.load(settings.parcel_model_dir or PACKAGED_PARCEL_MODEL_DIR),
        tally=ShadowTally(ddb, settings.shadow_tally_table_name),
        pointers=pointers,
        artifacts=S3ModelArtifacts(aws_client("s3"), settings.model_bucket_name)
        if settings.model_bucket_name
        else None,
    )
