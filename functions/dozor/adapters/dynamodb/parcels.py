"""DynamoDB: the Shipments table (parcels, the sweeper's cursor) and the Alerts table.

A parcel item holds the parcel as JSON plus the attributes the tables' keys, indexes and readers
need. Parcels in transit carry ``due_shard`` ("due#<n>", n from a CRC of the parcel id, so no
index partition runs hot) and ``due_at`` (epoch seconds of the sweeper's next look); a terminal
parcel drops both and so leaves the sparse DueIndex. Every parcel write is conditional on the
version read; conditional-check failures and throttling become domain errors.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from dozor.adapters.aws_errors import DYNAMODB, translated
from dozor.adapters.dynamodb.codec import chunked_batch_get
from dozor.adapters.dynamodb.decisions import DynamoDecisionStore
from dozor.adapters.dynamodb.history import scan_table
from dozor.domain.errors import ConflictError, DozorError, NotFoundError, ParcelConflictError
from dozor.domain.parcels.alerts import FEED_QUIET_AFTER, Alert, AlertType, FeedGap
from dozor.domain.parcels.handling import AlertHandling, AlertState, HandledAlert
from dozor.domain.parcels.shipments import Parcel
from dozor.domain.parcels.tracking import (
    AlertEvent,
    DuePage,
    StoredParcel,
    SweepCursor,
    outbox_entry,
)

DUE_SHARDS = 16  # fixed by the data: changing it needs the due_shard of every parcel in transit rewritten
DUE_INDEX = "DueIndex"
CURSOR_KEY = "#sweeper-cursor"  # not a parcel: where an unfinished sweep resumes
FEED_KEY = "#feed#"  # + carrier: not a parcel either, when the carrier's scans last arrived
FEED_GAPS_KEPT = timedelta(days=30)  # longer than any lane's stalled deadline
# A container notes a carrier's arrival at most this often: a busy carrier's item is not a hot key.
FEED_NOTE_EVERY = timedelta(minutes=1)
FINISHED_PARCEL_RETENTION = timedelta(days=400)
RESOLVED_ALERT_RETENTION = timedelta(days=400)


def due_shard(parcel_id: str) -> str:
    """The DueIndex partition of a parcel: stable across processes (unlike hash())."""
    return f"due#{zlib.crc32(parcel_id.encode()) % DUE_SHARDS}"


def _epoch(t: datetime) -> dict[str, str]:
    return {"N": str(int(t.timestamp()))}


def _stored(item: Mapping[str, Any]) -> StoredParcel:
    return StoredParcel(
        parcel=Parcel.from_record(json.loads(item["parcel"]["S"])),
        open_alerts=frozenset(AlertType(t) for t in item.get("open_alerts", {}).get("SS", [])),
        outbox=frozenset(item.get("outbox", {}).get("SS", [])),
    )


class DynamoParcelStore:
    """Implements `dozor.domain.parcels.tracking.ParcelStore` on the Shipments table."""

    shards = DUE_SHARDS

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def load(self, parcel_id: str) -> StoredParcel | None:
        with translated(DYNAMODB, f"parcel {parcel_id} not read"):
            item = self._client.get_item(
                TableName=self._table, Key={"parcel_id": {"S": parcel_id}}, ConsistentRead=True
            ).get("Item")
        return _stored(item) if item else None

    def load_many(self, parcel_ids: Sequence[str]) -> dict[str, StoredParcel]:
        requests = [(self._table, {"parcel_id": {"S": p}}) for p in dict.fromkeys(parcel_ids)]
        return {
            item["parcel_id"]["S"]: _stored(item)
            for _, item in chunked_batch_get(self._client, requests, "parcels not read", consistent=True)
        }

    def save(self, parcel: Parcel, expected_version: int | None, outbox: frozenset[str]) -> StoredParcel:
        names = {
            "#p": "parcel",
            "#v": "version",
            "#s": "status",
            "#o": "order_id",
            "#c": "carrier",
            "#l": "lane",
        }
        values: dict[str, Any] = {
            ":p": {"S": json.dumps(parcel.to_record(), separators=(",", ":"))},
            ":v": {"N": str(parcel.version)},
            ":s": {"S": parcel.status.value},
            ":o": {"S": parcel.order_id},
            ":c": {"S": parcel.carrier},
            ":l": {"S": parcel.lane.key()},
            ":last": {"S": parcel.last_scan_at.isoformat()},
            ":expected": {"N": str(expected_version or 0)},
        }
        sets = ["#p = :p", "#v = :v", "#s = :s", "#o = :o", "#c = :c", "#l = :l", "last_scan_at = :last"]
        removes: list[str] = []
        if parcel.next_scan_due is not None:
            values[":shard"] = {"S": due_shard(parcel.parcel_id)}
            values[":due"] = _epoch(parcel.next_scan_due)
            values[":due_iso"] = {"S": parcel.next_scan_due.isoformat()}
            sets += ["due_shard = :shard", "due_at = :due", "next_scan_due = :due_iso"]
            removes.append("expires_at")
        else:  # finished: out of the sweeper's index, and gone from the table after a while
            values[":ttl"] = _epoch(parcel.last_scan_at + FINISHED_PARCEL_RETENTION)
            sets.append("expires_at = :ttl")
            removes += ["due_shard", "due_at", "next_scan_due"]
        expression = "SET " + ", ".join(sets) + " REMOVE " + ", ".join(removes)
        if outbox:
            values[":outbox"] = {"SS": sorted(outbox)}
            expression += " ADD outbox :outbox"
        condition = "attribute_not_exists(parcel_id)" if expected_version is None else "#v = :expected"
        if expected_version is None:
            del values[":expected"]
        try:
            with translated(DYNAMODB, f"parcel {parcel.parcel_id} not stored"):
                response = self._client.update_item(
                    TableName=self._table,
                    Key={"parcel_id": {"S": parcel.parcel_id}},
                    UpdateExpression=expression,
                    ConditionExpression=condition,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                    ReturnValues="ALL_NEW",
                )
        except ConflictError as error:
            raise ParcelConflictError(parcel.parcel_id) from error
        return _stored(response["Attributes"])

    def reschedule(self, parcel: Parcel, look_at: datetime) -> bool:
        try:
            with translated(DYNAMODB, f"parcel {parcel.parcel_id} not rescheduled"):
                self._client.update_item(
                    TableName=self._table,
                    Key={"parcel_id": {"S": parcel.parcel_id}},
                    UpdateExpression="SET due_at = :due",
                    ConditionExpression="#v = :v AND attribute_exists(due_shard)",
                    ExpressionAttributeNames={"#v": "version"},
                    ExpressionAttributeValues={":due": _epoch(look_at), ":v": {"N": str(parcel.version)}},
                )
        except ConflictError:
            return False  # the parcel moved on (or finished) since it was read
        return True

    def clear_outbox(self, parcel_id: str, entries: frozenset[str]) -> None:
        try:
            with translated(DYNAMODB, f"outbox of {parcel_id} not cleared"):
                self._client.update_item(
                    TableName=self._table,
                    Key={"parcel_id": {"S": parcel_id}},
                    UpdateExpression="DELETE outbox :done",
                    ConditionExpression="attribute_exists(parcel_id)",
                    ExpressionAttributeValues={":done": {"SS": sorted(entries)}},
                )
        except ConflictError:
            pass  # the parcel is gone: nothing left to clear

    def due(self, shard: int, until: datetime, limit: int, start: dict[str, object] | None) -> DuePage:
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": DUE_INDEX,
            "KeyConditionExpression": "due_shard = :shard AND due_at <= :until",
            "ExpressionAttributeValues": {":shard": {"S": f"due#{shard}"}, ":until": _epoch(until)},
            "Limit": limit,
        }
        if start:
            request["ExclusiveStartKey"] = start
        with translated(DYNAMODB, f"due parcels of shard {shard} not read"):
            response = self._client.query(**request)
        parcels, unreadable = [], {}
        for item in response.get("Items", []):
            try:
                parcels.append(_stored(item))
            except (KeyError, TypeError, ValueError, ArithmeticError) as error:  # one poison item
                parcel_id = str(item.get("parcel_id", {}).get("S", "?"))
                unreadable[parcel_id] = f"unreadable item: {type(error).__name__}"
        return DuePage(parcels, response.get("LastEvaluatedKey"), unreadable)

    def load_cursor(self) -> SweepCursor | None:
        with translated(DYNAMODB, "sweep cursor not read"):
            item = self._client.get_item(
                TableName=self._table, Key={"parcel_id": {"S": CURSOR_KEY}}, ConsistentRead=True
            ).get("Item")
        if not item:
            return None
        start = item.get("start", {}).get("S")
        return SweepCursor(int(item["shard"]["N"]), json.loads(start) if start else None)

    def save_cursor(self, cursor: SweepCursor | None) -> None:
        key = {"parcel_id": {"S": CURSOR_KEY}}
        with translated(DYNAMODB, "sweep cursor not saved"):
            if cursor is None:
                self._client.delete_item(TableName=self._table, Key=key)
                return
            item: dict[str, Any] = {**key, "shard": {"N": str(cursor.shard)}}
            if cursor.start:
                item["start"] = {"S": json.dumps(cursor.start)}  # a DynamoDB key, kept in its wire form
            self._client.put_item(TableName=self._table, Item=item)


class DynamoAlertStore:
    """Implements `dozor.domain.parcels.tracking.AlertStore`: one Alerts item per parcel and type."""

    def __init__(self, client: Any, alerts_table: str, shipments_table: str) -> None:
        self._client = client
        self._alerts = alerts_table
        self._shipments = shipments_table

    def open(self, parcel: Parcel, alerts: Sequence[Alert], look_at: datetime | None) -> bool:
        types = sorted(a.type.value for a in alerts)
        parcel_update: dict[str, Any] = {
            "TableName": self._shipments,
            "Key": {"parcel_id": {"S": parcel.parcel_id}},
            "UpdateExpression": "ADD open_alerts :types, outbox :entries",
            # Only the version assessed: a parcel delivered in between gets no alert.
            "ConditionExpression": "#v = :v",
            "ExpressionAttributeNames": {"#v": "version"},
            "ExpressionAttributeValues": {
                ":types": {"SS": types},
                ":entries": {"SS": [outbox_entry(AlertEvent.RAISED, t) for t in types]},
                ":v": {"N": str(parcel.version)},
            },
        }
        if look_at is not None:
            parcel_update["UpdateExpression"] = "SET due_at = :due " + parcel_update["UpdateExpression"]
            parcel_update["ExpressionAttributeValues"][":due"] = _epoch(look_at)
        items: list[dict[str, Any]] = [{"Update": parcel_update}]
        for alert in alerts:
            items.append(
                {
                    "Put": {
                        "TableName": self._alerts,
                        "Item": {
                            "parcel_id": {"S": alert.parcel_id},
                            "alert_type": {"S": alert.type.value},
                            "alert": {"S": alert.model_dump_json()},
                            "alert_state": {"S": "OPEN"},
                            "open_type": {"S": alert.type.value},
                            "raised_at": {"S": alert.raised_at.isoformat()},
                            "severity": {"S": alert.severity.value},
                            "carrier": {"S": alert.carrier},
                            "lane": {"S": alert.lane},
                        },
                        # One open alert per parcel and type; a resolved one may be raised again.
                        "ConditionExpression": "attribute_not_exists(parcel_id) OR alert_state = :resolved",
                        "ExpressionAttributeValues": {":resolved": {"S": "RESOLVED"}},
                    }
                }
            )
        try:
            with translated(DYNAMODB, f"alerts of {parcel.parcel_id} not stored"):
                self._client.transact_write_items(TransactItems=items)
        except ConflictError:
            return False  # the parcel changed, or the alert is already open: nothing to raise
        return True

    def resolve(self, parcel_id: str, types: frozenset[AlertType], at: datetime) -> None:
        names = sorted(t.value for t in types)
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self._alerts,
                    "Key": {"parcel_id": {"S": parcel_id}, "alert_type": {"S": name}},
                    "UpdateExpression": "SET alert_state = :resolved, resolved_at = :at, expires_at = :ttl "
                    "REMOVE open_type",
                    "ExpressionAttributeValues": {
                        ":resolved": {"S": "RESOLVED"},
                        ":at": {"S": at.isoformat()},
                        ":ttl": _epoch(at + RESOLVED_ALERT_RETENTION),
                    },
                }
            }
            for name in names
        ]
        items.append(
            {
                "Update": {
                    "TableName": self._shipments,
                    "Key": {"parcel_id": {"S": parcel_id}},
                    "UpdateExpression": "DELETE open_alerts :types ADD outbox :entries",
                    "ExpressionAttributeValues": {
                        ":types": {"SS": names},
                        ":entries": {"SS": [outbox_entry(AlertEvent.RESOLVED, n) for n in names]},
                    },
                }
            }
        )
        with translated(DYNAMODB, f"alerts of {parcel_id} not resolved"):
            self._client.transact_write_items(TransactItems=items)

    def get(self, parcel_id: str, alert_type: AlertType) -> Alert | None:
        with translated(DYNAMODB, f"alert {parcel_id}#{alert_type} not read"):
            item = self._client.get_item(
                TableName=self._alerts,
                Key={"parcel_id": {"S": parcel_id}, "alert_type": {"S": alert_type.value}},
                ConsistentRead=True,
            ).get("Item")
        if not item:
            return None
        alert = Alert.model_validate_json(item["alert"]["S"])
        resolved_at = item.get("resolved_at", {}).get("S")
        if resolved_at:
            alert = alert.model_copy(update={"resolved_at": datetime.fromisoformat(resolved_at)})
        return alert

    def open_alerts(self, alert_type: AlertType, limit: int = 100) -> list[Alert]:
        """The newest open alerts of a type (OpenAlertsIndex), for ops tooling and tests."""
        return [Alert.model_validate_json(item["alert"]["S"]) for item in self._open_items(alert_type, limit)]

    # --- what ops does with alerts (the console) ------------------------------------------------

    def open_handled(self, alert_type: AlertType, limit: int) -> list[HandledAlert]:
        """The newest open alerts of a type with what ops did with them (acknowledgements)."""
        return [_handled(item) for item in self._open_items(alert_type, limit)]

    def _open_items(self, alert_type: AlertType, limit: int) -> list[dict[str, Any]]:
        """The newest open alert items of a type, from OpenAlertsIndex."""
        with translated(DYNAMODB, f"open {alert_type} alerts not read"):
            response = self._client.query(
                TableName=self._alerts,
                IndexName="OpenAlertsIndex",
                KeyConditionExpression="open_type = :t",
                ExpressionAttributeValues={":t": {"S": alert_type.value}},
                ScanIndexForward=False,
                Limit=limit,
            )
        return list(response.get("Items", []))

    def handled(self, parcel_id: str, alert_type: AlertType) -> HandledAlert | None:
        with translated(DYNAMODB, f"alert {parcel_id}#{alert_type} not read"):
            item = self._client.get_item(
                TableName=self._alerts,
                Key={"parcel_id": {"S": parcel_id}, "alert_type": {"S": alert_type.value}},
                ConsistentRead=True,
            ).get("Item")
        return _handled(item) if item else None

    def acknowledge(
        self, parcel_id: str, alert_type: AlertType, by: str, note: str | None, at: datetime
    ) -> HandledAlert:
        """Someone is on it: the alert stays open, with who and when (an open alert only)."""
        values: dict[str, Any] = {":by": {"S": by}, ":at": {"S": at.isoformat()}, ":open": {"S": "OPEN"}}
        sets = "acked_by = :by, acked_at = :at"
        if note:
            values[":note"] = {"S": note}
            sets += ", ops_note = :note"
        try:
            with translated(DYNAMODB, f"alert {parcel_id}#{alert_type} not acknowledged"):
                response = self._client.update_item(
                    TableName=self._alerts,
                    Key={"parcel_id": {"S": parcel_id}, "alert_type": {"S": alert_type.value}},
                    UpdateExpression="SET " + sets,
                    ConditionExpression="alert_state = :open",
                    ExpressionAttributeValues=values,
                    ReturnValues="ALL_NEW",
                )
        except ConflictError as error:
            raise self._not_open(parcel_id, alert_type) from error
        return _handled(response["Attributes"])

    def close(self, parcel_id: str, alert_type: AlertType, by: str, note: str | None, at: datetime) -> None:
        """Resolve an open alert by hand: as `resolve`, plus who did it and why (an open alert only).

        The parcel's outbox gets the RESOLVED entry in the same transaction, for the topic.
        """
        values: dict[str, Any] = {
            ":resolved": {"S": "RESOLVED"},
            ":open": {"S": "OPEN"},
            ":at": {"S": at.isoformat()},
            ":ttl": _epoch(at + RESOLVED_ALERT_RETENTION),
            ":by": {"S": by},
        }
        sets = "alert_state = :resolved, resolved_at = :at, expires_at = :ttl, resolved_by = :by"
        if note:
            values[":note"] = {"S": note}
            sets += ", ops_note = :note"
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self._alerts,
                    "Key": {"parcel_id": {"S": parcel_id}, "alert_type": {"S": alert_type.value}},
                    "UpdateExpression": f"SET {sets} REMOVE open_type",
                    "ConditionExpression": "alert_state = :open",
                    "ExpressionAttributeValues": values,
                }
            },
            {
                "Update": {
                    "TableName": self._shipments,
                    "Key": {"parcel_id": {"S": parcel_id}},
                    "UpdateExpression": "DELETE open_alerts :types ADD outbox :entries",
                    "ExpressionAttributeValues": {
                        ":types": {"SS": [alert_type.value]},
                        ":entries": {"SS": [outbox_entry(AlertEvent.RESOLVED, alert_type.value)]},
                    },
                }
            },
        ]
        try:
            with translated(DYNAMODB, f"alert {parcel_id}#{alert_type} not resolved"):
                self._client.transact_write_items(TransactItems=items)
        except ConflictError as error:
            raise self._not_open(parcel_id, alert_type) from error

    def _not_open(self, parcel_id: str, alert_type: AlertType) -> DozorError:
        found = self.handled(parcel_id, alert_type)
        if found is None:
            return NotFoundError(f"no {alert_type.value} alert for parcel {parcel_id}")
        return ConflictError(f"the {alert_type.value} alert of parcel {parcel_id} is already resolved")


def _handled(item: Mapping[str, Any]) -> HandledAlert:
    alert = Alert.model_validate_json(item["alert"]["S"])

    def text(name: str) -> str | None:
        value = item.get(name, {}).get("S")
        return None if value is None else str(value)

    def instant(name: str) -> datetime | None:
        value = text(name)
        return datetime.fromisoformat(value) if value else None

    resolved_at = instant("resolved_at")
    if resolved_at is not None:
        alert = alert.model_copy(update={"resolved_at": resolved_at})
    return HandledAlert(
        alert=alert,
        handling=AlertHandling(
            state=AlertState(text("alert_state") or "OPEN"),
            acknowledged_by=text("acked_by"),
            acknowledged_at=instant("acked_at"),
            resolved_by=text("resolved_by"),
            resolved_at=resolved_at,
            note=text("ops_note"),
        ),
    )


class DecisionFraudScores:
    """Implements `dozor.domain.parcels.tracking.FraudScores` from the orders' stored decisions."""

    def __init__(self, decisions: DynamoDecisionStore) -> None:
        self._decisions = decisions

    def fraud_scores(self, order_ids: Sequence[str]) -> dict[str, float]:
        # An order Dozor never scored has no score (the loss model scores it as missing). An
        # unreadable store is not "no score": it fails (the scans are redelivered) rather than
        # keep the parcel without its order's score for good.
        decisions, _ = self._decisions.load(order_ids, [])
        return {order_id: prior.decision.score for order_id, prior in decisions.items()}


def _feed_gaps(item: Mapping[str, Any]) -> list[FeedGap]:
    pairs = json.loads(item["gaps"]["S"]) if "gaps" in item else []
    return [FeedGap(datetime.fromtimestamp(s, UTC), datetime.fromtimestamp(e, UTC)) for s, e in pairs]


class DynamoCarrierFeeds:
    """Implements `dozor.domain.parcels.tracking.CarrierFeeds`: one Shipments item per carrier.

    The item keeps when the carrier's scans last arrived and the pauses longer than the quiet
    limit (feed outages) of the last 30 days.
    """

    def __init__(self, client: Any, table: str, quiet_after: timedelta = FEED_QUIET_AFTER) -> None:
        self._client = client
        self._table = table
        self._quiet_after = quiet_after
        self._noted: dict[str, tuple[datetime, list[FeedGap]]] = {}  # carrier -> (noted at, gaps then)

    def heard_from(self, carriers: Iterable[str], at: datetime) -> dict[str, list[FeedGap]]:
        found: dict[str, list[FeedGap]] = {}
        for carrier in sorted(carriers):
            noted = self._noted.get(carrier)
            if noted is not None and timedelta(0) <= at - noted[0] < FEED_NOTE_EVERY:
                found[carrier] = noted[1]
                continue
            key = {"parcel_id": {"S": FEED_KEY + carrier}}
            with translated(DYNAMODB, f"feed of {carrier} not noted"):
                old = self._client.update_item(
                    TableName=self._table,
                    Key=key,
                    UpdateExpression="SET last_heard = :at",
                    ExpressionAttributeValues={":at": _epoch(at)},
                    ReturnValues="ALL_OLD",
                ).get("Attributes", {})
                gaps = _feed_gaps(old)
                if "last_heard" in old:
                    last = datetime.fromtimestamp(int(old["last_heard"]["N"]), UTC)
                    if at - last > self._quiet_after:  # the feed was down and is back
                        gaps = [g for g in gaps if g.end > at - FEED_GAPS_KEPT] + [FeedGap(last, at)]
                        pairs = [[int(g.start.timestamp()), int(g.end.timestamp())] for g in gaps]
                        self._client.update_item(
                            TableName=self._table,
                            Key=key,
                            UpdateExpression="SET gaps = :gaps",
                            ExpressionAttributeValues={":gaps": {"S": json.dumps(pairs)}},
                        )
            self._noted[carrier] = (at, gaps)
            found[carrier] = gaps
        return found

    def gaps(self, carrier: str, now: datetime) -> list[FeedGap]:
        with translated(DYNAMODB, f"feed of {carrier} not read"):
            item = self._client.get_item(
                TableName=self._table, Key={"parcel_id": {"S": FEED_KEY + carrier}}, ConsistentRead=True
            ).get("Item")
        if not item:
            return []
        gaps = _feed_gaps(item)
        last = datetime.fromtimestamp(int(item["last_heard"]["N"]), UTC)
        if now - last > self._quiet_after:  # still down
            gaps.append(FeedGap(last, now))
        return gaps


class DynamoParcelHistory:
    """Read-only: every parcel of the Shipments table and every alert of the Alerts table, for export.

    Whole-table parallel Scans (`history.scan_table`), never on a request path.
    """

    def __init__(self, client: Any, shipments_table: str, alerts_table: str, segments: int = 4) -> None:
        self._client = client
        self._shipments = shipments_table
        self._alerts = alerts_table
        self._segments = segments

    def parcels(self) -> Iterator[Parcel]:
        """Every parcel, with its scans; the sweeper's cursor and the carriers' feed items are skipped."""
        for item in scan_table(self._client, self._shipments, self._segments):
            if "parcel" in item:
                yield _stored(item).parcel

    def alerts(self) -> Iterator[Alert]:
        """Every alert raised, open or resolved (then with when it was resolved)."""
        for item in scan_table(self._client, self._alerts, self._segments):
            alert = Alert.model_validate_json(item["alert"]["S"])
            resolved_at = item.get("resolved_at", {}).get("S")
            if resolved_at:
                alert = alert.model_copy(update={"resolved_at": datetime.fromisoformat(resolved_at)})
            yield alert
