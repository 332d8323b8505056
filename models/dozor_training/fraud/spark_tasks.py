"""What a Spark task of the training replay runs: the local engine's kernel on one entity partition.

Kept apart from `spark_engine` so that the Python workers unpickling the task import only NumPy,
pandas and the kernel (not the estimator's pyspark.ml and scikit-learn).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from dozor.domain.fraud import features
from dozor_training.fraud.columnar_kernel import EntityLabels, EntityOrders, feature_columns, summarise

KINDS = features.ENTITY_KINDS


def entity_partition(
    names: Mapping[int, Sequence[str]], orders: pd.DataFrame, labels: pd.DataFrame
) -> pd.DataFrame:
    """One Spark task: the feature columns of one partition of whole entities of one kind."""
    number = int(orders["kind"].iloc[0])
    kind = KINDS[number]
    orders = orders.sort_values("seq", kind="stable")  # the kernel takes the sequence order
    links = features.LINKS.get(kind, ())
    entity_orders = EntityOrders(
        entity=orders["entity"].to_numpy(np.int64),
        seq=orders["seq"].to_numpy(np.int64),
        epoch=orders["epoch"].to_numpy(np.int64),
        created=orders["created"].to_numpy(np.float64),
        amount=orders["amount"].to_numpy(np.float64),
        links={other: orders[f"link{slot}"].to_numpy(np.int64) for slot, other in enumerate(links)},
    )
    entity_labels = EntityLabels(
        entity=labels["entity"].to_numpy(np.int64),
        reported=labels["reported"].to_numpy(np.float64),
        visible_from=labels["visible_from"].to_numpy(np.int64),
        fraud=labels["fraud"].to_numpy(np.int64).astype(bool),
    )
    computed = feature_columns(kind, entity_orders, summarise(entity_orders, entity_labels))
    values = np.column_stack([computed[n] for n in names[number]])
    return pd.DataFrame({"kind": number, "seq": entity_orders.seq, "values": list(values)})
