"""Order scoring: the one domain service behind both the HTTP API and the order-event queue.

For a batch of orders (one, for the API) it makes one batched read of the entities' aggregates
and of any decisions already made, scores all new orders in one model call, and then commits each
order on its own: the decision write is conditional and carries the order's counter updates, so a
replayed order is counted once and gets its first decision back. A replay whose contents differ
from the first (its fingerprint: a hash of the pseudonymised order) is a `ConflictError`, counted
nowhere.

Checkout (``within_budget=True``, the default) decides inside a latency `Budget`: the read is
retried only while it fits, and when the store cannot be read in time the order is decided in
degraded mode (rules and model on the order alone, ``degraded: true``, reported to the `Monitor`
with its reason). A write that cannot be made in time (throttled, conflicting, unreachable) is
handed to the durable path: the `PendingCommit` (decision, counter updates, pseudonymised order)
goes to the pending-commits queue, whose function applies it with `apply` (the same conditional
transaction, so it counts once and the first stored decision wins). The queue path
(``within_budget=False``) waits for the store instead, and a failure fails its record.

What a stored decision still owes the world (its review message, its decision event) is written
with it as an outbox and cleared once done; whoever finds a stored decision with an outbox left
(a replay, the pending-commits function) finishes it. So a review is sent once per order and an
event is published once per stored decision, unless a send succeeds and the clear after it fails.

Replays during an outage: the service remembers the decisions it made (per container, bounded),
so a replay reaching the same container gets the same decision even before the store has it. A
replay reaching another container while the store is unreadable is scored degraded from the
order alone: the same decision as the first when that one was degraded too (same features,
same model), otherwise possibly not; the stored decision (what GET and the event carry) is the
first one written.

The models are swapped in between invocations (`use_models`) when the registry names a new
version; a shadow model, when set, scores the same feature rows in the same batch and its verdict
rides along on the `ScoredOrder` for the handler to log. It never changes the Decision.
"""

from __future__ import annotations

import hashlib
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import NamedTuple, Protocol

import numpy as np

from dozor.domain import aggregates as agg
from dozor.domain.budget import Budget, Deadline, within
from dozor.domain.contracts import Decision, DecisionKind, Order, ensure_not_ahead
from dozor.domain.errors import AlreadyDecidedError, ConflictError, DozorError, StoreUnavailableError
from dozor.domain.fraud import features, rules
from dozor.domain.fraud.decisions import combine, decide
from dozor.domain.fraud.explanations import explain_rows
from dozor.domain.fraud.model import FraudModel
from dozor.domain.privacy import PiiHasher, pseudonymise

# What a stored decision still owes the world, kept on it until done.
REVIEW = "review"
EVENT = "event"


def fingerprint(stored_order: Order) -> str:
    """What identifies an order's contents (of its pseudonymised form: no personal data in it)."""
    # The serializer's bytes: what model_dump_json(exclude_none=True) decodes and .encode() undid.
    return hashlib.sha256(_to_json(stored_order, exclude_none=True)).hexdigest()[:32]


_to_json = Order.__pydantic_serializer__.to_json


@dataclass(frozen=True)
class PriorDecision:
    """A decision found stored (or remembered), with what it still owes."""

    decision: Decision
    fingerprint: str | None = None
    outbox: frozenset[str] = frozenset()


@dataclass(frozen=True)
class PendingCommit:
    """Everything one new decision writes: what the pending-commits queue carries."""

    decision: Decision
    updates: list[agg.ContainerUpdate] = field(default_factory=list)
    order: Order | None = None  # pseudonymised
    fingerprint: str = ""
    outbox: frozenset[str] = frozenset()
    # The store's names for a storing or counting of this order that stopped halfway, none of
    # which anybody will count under again (`StoreUnavailableError.retired_writers`): whoever
    # applies the commit may finish it at once instead of waiting until the writer must be gone.
    retired_writers: frozenset[str] = frozenset()
    # Every counter update was applied before the hand-off (only the duties were left): whoever
    # applies the commit has no counting to finish, and need not wait for the writer to strike it.
    counted: bool = False


class DecisionStore(Protocol):
    def load(
        self, order_ids: Sequence[str], keys: Iterable[agg.Key], fits: Callable[[], bool] | None = None
    ) -> tuple[dict[str, PriorDecision], dict[agg.Key, dict[str, object]]]:
        """Decisions already made for these orders, and the aggregate containers: one batched read.
        A decision found with work the store still owes it is finished by the read; ``fits``
        (checkout): whether that work still fits the budget, asked before each call. What does
        not fit, or fails, is left to the next reader or the pending commits' drain: checkout's
        read answers with what it found either way."""
        ...

    def commit(self, pending: PendingCommit, fits: Callable[[], bool] | None = None) -> None:
        """Store a new decision (with its order, fingerprint and outbox) and apply its counter
        updates, each once; AlreadyDecidedError if it exists. ``fits`` (checkout): whether one
        more store call still fits the budget, asked before each call; when it says no the
        store stops with `StoreUnavailableError`, leaving what it has not done to whoever applies
        the pending commit (every write is idempotent)."""
        ...

    def get_decision(self, order_id: str) -> Decision | None: ...

    def get_prior(self, order_id: str) -> PriorDecision | None: ...

    def clear_outbox(self, order_id: str, entries: frozenset[str]) -> None: ...


class ReviewQueue(Protocol):
    def submit(self, decision: Decision, order: Order) -> None: ...


class DecisionEvents(Protocol):
    def publish(self, decision: Decision) -> None: ...


class PendingCommits(Protocol):
    def submit(self, pending: PendingCommit, reason: str) -> None: ...


class Monitor(Protocol):
    """Where the service reports what checkout does not see (logs and metrics, in the handlers)."""

    def degraded(self, order_ids: Sequence[str], reason: str) -> None: ...

    def handed_off(self, order_id: str, reason: str) -> None: ...

    def not_durable(self, order_id: str, reason: str) -> None: ...


class _Silent:
    def degraded(self, order_ids: Sequence[str], reason: str) -> None:
        pass

    def handed_off(self, order_id: str, reason: str) -> None:
        pass

    def not_durable(self, order_id: str, reason: str) -> None:
        pass


@dataclass(frozen=True)
class ShadowVerdict:
    """What the shadow model would have decided; logged and measured, never acted on."""

    model_version: str
    score: float
    decision: DecisionKind


@dataclass
class ScoredOrder:
    """A decision made but not yet stored (``replay`` when it was stored before).

    ``repeat`` marks a second copy of an order within the same batch: its first copy stores the
    decision and sends it to review, so the repeat does neither. ``conflict`` is set when the
    order's id was decided before for other contents: committing it raises that error.
    """

    order: Order
    decision: Decision
    updates: list[agg.ContainerUpdate] = field(default_factory=list)
    replay: bool = False
    repeat: bool = False
    features: np.ndarray | None = None
    shadow: ShadowVerdict | None = None
    stored_order: Order | None = None  # pseudonymised
    fingerprint: str = ""
    outbox: frozenset[str] = frozenset()  # a replay's unfinished duties
    deadline: Deadline | None = None
    conflict: ConflictError | None = None
    degraded_reason: str | None = None


class _Overlay:
    """The snapshot as a batch's later orders see it: with the updates of the orders before them.

    Only what a later order reads is updated, and an item is copied only when it first changes:
    the snapshot itself stays as read (the in-memory store hands out its own items), and most of
    a batch's entities belong to one order alone.
    """

    def __init__(self, snapshot: agg.Snapshot, reads: list[list[agg.Key]]) -> None:
        self.items: dict[agg.Key, dict[str, object]] = dict(snapshot)  # type: ignore[arg-type]
        self._reads = reads
        # An order's entity keys are distinct (one entity per kind): no set needed.
        self._readers = Counter(k for read in reads for k in read)
        self._copied: set[agg.Key] = set()

    def reading(self, position: int) -> None:
        """The order at ``position`` is next: what it reads no longer waits for it."""
        readers = self._readers
        for key in self._reads[position]:
            readers[key] -= 1

    def apply(self, updates: list[agg.ContainerUpdate]) -> None:
        wanted = [u for u in updates if self._readers[u.key] > 0]
        for update in wanted:
            if update.key not in self._copied:
                self._copied.add(update.key)
                item = self.items.get(update.key)
                if item is not None:
                    self.items[update.key] = dict(item)
        agg.apply_updates(self.items, wanted)


class _Fresh(NamedTuple):
    """An order of the batch not decided before: where it is, what it saw, what it writes."""

    position: int  # in the batch
    view: features.OrderView
    updates: list[agg.ContainerUpdate]
    stored_order: Order
    fingerprint: str


REMEMBERED = 10_000
STRIKE_ATTEMPTS = 3


class OrderScoring:
    def __init__(
        self,
        store: DecisionStore,
        review_queue: ReviewQueue,
        model: FraudModel,
        hasher: PiiHasher,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        budget: Budget | None = None,
        pending: PendingCommits | None = None,
        events: DecisionEvents | None = None,
        monitor: Monitor | None = None,
    ) -> None:
        self._store = store
        self._review_queue = review_queue
        self._model = model
        self._shadow: FraudModel | None = None
        self._hasher = hasher
        self._clock = clock
        self._budget = budget or Budget()
        self._pending = pending
        self._events = events
        self._monitor: Monitor = monitor or _Silent()
        self._recent: OrderedDict[str, PriorDecision] = OrderedDict()

    def use_models(self, active: FraudModel, shadow: FraudModel | None = None) -> None:
        """Score with these models from the next batch on (the registry named new versions)."""
        self._model = active
        self._shadow = shadow

    @property
    def model(self) -> FraudModel:
        """The model that makes the decisions."""
        return self._model

    @property
    def shadow(self) -> FraudModel | None:
        return self._shadow

    @property
    def budget(self) -> Budget:
        return self._budget

    def score(self, order: Order) -> Decision:
        """Decide one order and store the decision (or return the one stored before)."""
        return self.commit(self.prepare([order])[0])

    def prepare(
        self, orders: Sequence[Order], *, within_budget: bool = True, deadline: Deadline | None = None
    ) -> list[ScoredOrder]:
        """Score orders together; results come back in input order.

        Orders are scored in time order, each seeing the ones before it in the batch, exactly as
        if they had arrived one by one. A repeated order id in the batch is scored once.
        ``deadline``: checkout's, when it started before (at the request's arrival).
        """
        if within_budget and deadline is None:
            deadline = self._budget.start()
        elif not within_budget:
            deadline = None
        model, shadow = self._model, self._shadow  # one pair for the whole batch
        now = self._clock()
        for order in orders:  # the contract bounds the years; the clock bounds how far ahead
            ensure_not_ahead("created_at", order.created_at, now)
            ensure_not_ahead("buyer.account_created_at", order.buyer.account_created_at, now)
        stored_orders = [pseudonymise(o, self._hasher) for o in orders]
        prints = [fingerprint(o) for o in stored_orders]
        entities = [features.identify(o, self._hasher) for o in orders]
        existing, snapshot, degraded_reason = self._read(orders, entities, deadline)
        # Later orders of a batch must see earlier ones: overlay their updates on a copy of the
        # snapshot. A single order (every API call) needs neither the copy nor the overlay.
        # What a batch-mate's updates can change is the items keyed by its entities (an update
        # never writes a shard's key): the overlay follows those, not every shard read.
        overlay = (
            _Overlay(snapshot, [[(e.pk, agg.PROFILE) for e in ents.values()] for ents in entities])
            if len(orders) > 1
            else None
        )
        working = overlay.items if overlay is not None else snapshot

        results: dict[int, ScoredOrder] = {}
        fresh: list[_Fresh] = []
        # One matrix for the batch, filled order by order: one walk of the trees scores them all.
        matrix = np.empty((len(orders), len(features.FEATURE_NAMES)), dtype=np.float32)
        first_index: dict[str, int] = {}
        by_time = (
            sorted(range(len(orders)), key=lambda j: orders[j].created_at)
            if overlay is not None
            else range(len(orders))
        )
        for i in by_time:
            order = orders[i]
            if overlay is not None:
                overlay.reading(i)
            prior = existing.get(order.order_id)
            if prior is not None:
                results[i] = ScoredOrder(
                    order,
                    prior.decision,
                    replay=True,
                    stored_order=stored_orders[i],
                    fingerprint=prints[i],
                    outbox=prior.outbox,
                    deadline=deadline,
                    conflict=_conflict(order.order_id, prior.fingerprint, prints[i]),
                )
                continue
            if order.order_id in first_index:
                continue  # a duplicate inside the batch: filled in from its first copy below
            first_index[order.order_id] = i
            view = features.view(order, entities[i], working)
            updates = features.updates(order, entities[i])
            if overlay is not None:
                overlay.apply(updates)
            # Against what the store held, not the overlay: a batch-mate's write may still fail.
            updates = agg.settled_minimums_dropped(updates, snapshot)
            matrix[len(fresh)] = features.compute(view)
            fresh.append(_Fresh(i, view, updates, stored_orders[i], prints[i]))

        if fresh:
            self._decide(fresh, matrix[: len(fresh)], model, shadow, degraded_reason, results, deadline)
        return _in_input_order(orders, results, first_index, prints)

    def _read(
        self, orders: Sequence[Order], entities: list[dict[str, agg.Entity]], deadline: Deadline | None
    ) -> tuple[dict[str, PriorDecision], agg.Snapshot, str | None]:
        """The batch's one read: the decisions made before and the entities' items, and why the
        read gave nothing when checkout could not wait for it (then the orders are degraded)."""
        reads = [agg.keys_for(e.values(), o.created_at) for o, e in zip(orders, entities, strict=True)]
        # One order's keys are distinct already (one kind per entity, distinct shards): no set.
        keys = reads[0] if len(reads) == 1 else {k for read in reads for k in read}
        order_ids = [o.order_id for o in orders]
        degraded_reason: str | None = None
        existing: dict[str, PriorDecision]
        snapshot: agg.Snapshot
        if deadline is None:
            existing, snapshot = self._store.load(order_ids, keys)
        else:
            cost = self._budget.attempt_cost
            try:
                existing, snapshot = within(
                    deadline,
                    lambda: self._store.load(order_ids, keys, fits=lambda: deadline.allows(2 * cost)),
                    attempt_cost=cost,
                    reserve=2 * cost,
                )
            except StoreUnavailableError as error:
                # Checkout must not stall on the feature store: decide from the order alone, say so.
                existing, snapshot, degraded_reason = {}, {}, str(error)
                self._monitor.degraded(order_ids, degraded_reason)
        for oid in order_ids if deadline is not None else ():
            if oid not in existing and oid in self._recent:  # decided here; not (readably) stored yet
                existing[oid] = self._recent[oid]
        return existing, snapshot, degraded_reason

    def _decide(
        self,
        fresh: list[_Fresh],
        rows: np.ndarray,
        model: FraudModel,
        shadow: FraudModel | None,
        degraded_reason: str | None,
        results: dict[int, ScoredOrder],
        deadline: Deadline | None,
    ) -> None:
        """Score, explain and decide the new orders of a batch (``rows``: their features)."""
        scores, contributions = model.scores_and_contributions(rows)
        # One extra batched predict; the shadow needs no explanation, so no contributions.
        shadow_scores = shadow.scores(rows).tolist() if shadow is not None else None
        reasons = explain_rows(rows, contributions)
        row_hits = rules.evaluate_rows(rows) if len(rows) > 1 else [rules.evaluate_row(rows[0])]
        decided_at = self._clock()
        degraded = degraded_reason is not None
        for n, (new, score) in enumerate(zip(fresh, scores.tolist(), strict=True)):
            row, view = rows[n], new.view
            hits = rules.list_hits(view) + row_hits[n]
            decision = decide(
                order_id=view.order.order_id,
                score=score,
                hits=hits,
                reasons=reasons[n],
                thresholds=model.thresholds,
                model_version=model.version,
                degraded=degraded,
                decided_at=decided_at,
            )
            verdict = None
            if shadow is not None and shadow_scores is not None:
                shadow_score = shadow_scores[n]
                verdict = ShadowVerdict(
                    shadow.version, round(shadow_score, 6), combine(shadow_score, hits, shadow.thresholds)
                )
            results[new.position] = ScoredOrder(
                view.order,
                decision,
                new.updates,
                features=row,
                shadow=verdict,
                stored_order=new.stored_order,
                fingerprint=new.fingerprint,
                deadline=deadline,
                degraded_reason=degraded_reason,
            )

    def commit(self, scored: ScoredOrder) -> Decision:
        """Store a prepared decision once, and do what it owes (review, event) once.

        Within the budget nothing here fails for a store problem: what cannot be stored in time
        goes to the pending-commits queue and the decision is returned all the same.
        """
        if scored.conflict is not None:
            raise scored.conflict
        decision = scored.decision
        if scored.repeat:
            return decision
        order = scored.stored_order or pseudonymise(scored.order, self._hasher)
        if scored.replay:
            if scored.outbox:  # a stored decision whose duties were left unfinished
                pending = PendingCommit(decision, [], order, scored.fingerprint, scored.outbox)
                self._finish(pending, scored.deadline)
            return decision
        pending = PendingCommit(decision, scored.updates, order, scored.fingerprint, self._duties(decision))
        deadline = scored.deadline
        if deadline is None:
            return self.apply(pending)
        cost = self._budget.attempt_cost

        # The store makes several calls (the decision, then one update per entity): each one is
        # started only while it and the hand-off after it fit, the same bound `within` retries by.
        def fits() -> bool:
            return deadline.allows(2 * cost)

        try:
            within(deadline, lambda: self._store.commit(pending, fits), attempt_cost=cost, reserve=cost)
        except AlreadyDecidedError:
            try:
                prior = within(deadline, lambda: self._store.get_prior(decision.order_id), attempt_cost=cost)
            except StoreUnavailableError:
                prior = None
            if prior is None:  # it is stored; what it says cannot be read in time: ours was the same order
                return decision
            conflict = _conflict(decision.order_id, prior.fingerprint, pending.fingerprint)
            if conflict is not None:
                raise conflict from None
            self._remember(decision.order_id, PriorDecision(prior.decision, prior.fingerprint))
            if prior.outbox:
                self._finish(
                    PendingCommit(prior.decision, [], order, pending.fingerprint, prior.outbox), deadline
                )
            return prior.decision
        except DozorError as error:  # unavailable, throttled, conflicting: the durable path takes it
            if isinstance(error, StoreUnavailableError) and error.retired_writers:
                pending = replace(pending, retired_writers=frozenset(error.retired_writers))
            self._hand_off(pending, str(error))
            return decision
        self._remember(decision.order_id, PriorDecision(decision, pending.fingerprint))
        self._finish(pending, deadline, counted=True)  # stored and counted: only duties are left
        return decision

    def apply(self, pending: PendingCommit) -> Decision:
        """Store a pending decision and do what it owes; idempotent (the pending-commits function).

        The conditional transaction counts the order once; when a decision is already stored,
        that one wins and only its unfinished duties are done. Store failures raise (redelivery).
        """
        try:
            self._store.commit(pending)
            decision, outbox = pending.decision, pending.outbox
        except AlreadyDecidedError:
            prior = self._store.get_prior(pending.decision.order_id)
            if prior is None:  # pragma: no cover - the write failed on an item that exists
                raise
            decision, outbox = prior.decision, prior.outbox
        if outbox:
            self._do(decision, pending.order, outbox)
        return decision

    def _duties(self, decision: Decision) -> frozenset[str]:
        duties = {EVENT} if self._events is not None else set()
        if decision.decision is DecisionKind.REVIEW:
            duties.add(REVIEW)
        return frozenset(duties)

    def _finish(self, pending: PendingCommit, deadline: Deadline | None, counted: bool = False) -> None:
        """Do a stored decision's duties now while they fit the budget, else leave them to the
        queue (saying whether its counting is known to be done: ``counted``)."""
        cost = self._budget.attempt_cost
        # Each call is started only while it and a hand-off after it still fit.
        fits = (lambda: True) if deadline is None else (lambda: deadline.allows(2 * cost))
        try:
            left = self._do(pending.decision, pending.order, pending.outbox, fits)
        except DozorError as error:
            if deadline is None:
                raise
            self._hand_off(replace(pending, counted=counted), str(error))
            return
        if left:
            reason = "no time left for the decision's review / event"
            self._hand_off(replace(pending, outbox=left, counted=counted), reason)

    def _do(
        self,
        decision: Decision,
        order: Order | None,
        outbox: frozenset[str],
        fits: Callable[[], bool] = lambda: True,
    ) -> frozenset[str]:
        """Each duty, then its clearing (a failure later repeats none of those done); what is left."""
        left = set(outbox)
        for duty in (REVIEW, EVENT):
            if duty not in left:
                continue
            if not fits():
                return frozenset(left)
            if duty == REVIEW and order is not None:
                self._review_queue.submit(decision, order)
            elif duty == EVENT and self._events is not None:
                self._events.publish(decision)
            self._strike_off(decision.order_id, duty, fits)
            left.discard(duty)
        return frozenset()

    def _strike_off(self, order_id: str, duty: str, fits: Callable[[], bool]) -> None:
        """Clear a duty just done, retrying a transient failure: a duty done but left on the outbox
        is done again by whoever finds it (a repeated review or event)."""
        for attempt in range(STRIKE_ATTEMPTS):
            try:
                self._store.clear_outbox(order_id, frozenset({duty}))
                return
            except StoreUnavailableError:
                if attempt == STRIKE_ATTEMPTS - 1 or not fits():
                    raise

    def _hand_off(self, pending: PendingCommit, reason: str) -> None:
        if self._pending is None:
            raise StoreUnavailableError(f"decision for {pending.decision.order_id} not stored: {reason}")
        try:
            self._pending.submit(pending, reason)
        except DozorError as error:  # checkout still gets its answer; the loss is loud
            self._monitor.not_durable(pending.decision.order_id, f"{reason}; then {error}")
            return
        self._remember(pending.decision.order_id, PriorDecision(pending.decision, pending.fingerprint))
        self._monitor.handed_off(pending.decision.order_id, reason)

    def _remember(self, order_id: str, prior: PriorDecision) -> None:
        self._recent[order_id] = prior
        self._recent.move_to_end(order_id)
        while len(self._recent) > REMEMBERED:
            self._recent.popitem(last=False)


def _in_input_order(
    orders: Sequence[Order], results: dict[int, ScoredOrder], first_index: dict[str, int], prints: list[str]
) -> list[ScoredOrder]:
    """The batch's results in input order, a repeated order filled in from its first copy."""
    for i, order in enumerate(orders):
        if i not in results:
            first = results[first_index[order.order_id]]
            results[i] = ScoredOrder(
                order,
                first.decision,
                replay=True,
                repeat=True,
                fingerprint=prints[i],
                conflict=_conflict(order.order_id, first.fingerprint, prints[i]),
            )
    return [results[i] for i in range(len(orders))]


def _conflict(order_id: str, first: str | None, again: str) -> ConflictError | None:
    if first is None or not again or first == again:
        return None
    return ConflictError(
        f"order {order_id} was already scored with different contents; an order id is scored once"
    )
