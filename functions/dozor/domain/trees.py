"""A gradient-boosted tree ensemble evaluated with NumPy alone: margins and Saabas contributions.

Serving needs two things from a booster: the margin (log-odds) of each row and each feature's
part in it, as XGBoost's ``pred_contribs=True, approx_contribs=True`` gives them (Saabas: along
the path a row takes, each split's feature is credited with the change in the node's mean value;
the last column is the bias, the base margin plus every tree's root mean). Both come from the
leaf each row reaches in each tree, so one walk gives both.

The trees are flat arrays over all nodes of all trees (built once, at export, from the booster's
JSON: `from_xgboost_json`, saved as ``trees.npz`` beside ``model.ubj``). The walk is vectorised
over rows × trees and goes level by level, ``depth`` steps: a leaf points to itself, so a row
that reached one stays there. XGBoost compares float32 values, ``x < threshold`` goes left, and
a missing value (NaN) follows the node's default direction. That direction is folded into the
input: every feature has two columns, NaN read as -inf (always left) and as +inf (always right),
and each node reads the one its default direction needs. Nothing here imports xgboost.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dozor.domain.errors import ModelMismatchError

TREES_FILE = "trees.npz"

# How a margin becomes the model's output (XGBoost's objective, as far as serving needs it).
LOGISTIC, IDENTITY = 1, 0
_LINKS = {"binary:logistic": LOGISTIC, "reg:logistic": LOGISTIC, "binary:logitraw": IDENTITY}
_LINKS |= {"reg:squarederror": IDENTITY}

# Bounds on the evaluator's scratch memory: rows x nodes decided at once, and the per-leaf
# contribution table (nodes x features) kept when it is small enough (float32 cells).
_DECISION_CELLS = 4_000_000
_TABLE_CELLS = 8_000_000

_EXP_CAP = float(np.float32(88.7))  # `output`'s bound on -margin, as a float32

_ARRAYS = ("feature", "threshold", "left", "right", "default_left", "value", "mean", "roots")


class TreeFormatError(ValueError):
    """A booster this evaluator cannot represent (categorical splits, several outputs, ...)."""


@dataclass(frozen=True, eq=False, slots=True)
class Evaluation:
    """Margins (R,) and contributions (R, F + 1; the last column is the bias) of R rows."""

    margin: np.ndarray
    contributions: np.ndarray


@dataclass(frozen=True, eq=False)
class TreeEnsemble:
    """Every node of every tree, indexed globally; a tree's root is ``roots[t]``.

    ``feature``/``threshold``/``default_left`` describe splits, ``left``/``right`` the children
    (a leaf's are itself), ``value`` a leaf's output, ``mean`` the hessian-weighted mean of the
    leaves under a node (XGBoost's node mean, float32 as XGBoost computes it).
    """

    num_features: int
    base_margin: float
    link: int
    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    default_left: np.ndarray
    value: np.ndarray
    mean: np.ndarray
    roots: np.ndarray
    # Derived at construction, for the walk:
    depth: int = field(init=False)
    _column: np.ndarray = field(init=False, repr=False)  # per node: 2 * feature + (NaN goes right)
    _nan_right: np.ndarray = field(init=False, repr=False)  # per node: NaN goes right
    _table: np.ndarray | None = field(init=False, repr=False)  # per leaf: its tree's contributions
    # `_table` with one more column, the leaf's value (plus the base margin in the first tree).
    _joint: np.ndarray | None = field(init=False, repr=False)
    _path_feature: np.ndarray = field(init=False, repr=False)  # per leaf: features split on the way
    _path_delta: np.ndarray = field(init=False, repr=False)  # per leaf: the mean's change at each
    _root_mean: np.ndarray = field(init=False, repr=False)
    _base32: np.float32 = field(init=False, repr=False)
    _base_row: np.ndarray = field(init=False, repr=False)  # (1,) float32: the base margin
    # The split features as intp, the index type `take` wants (an int32 one is converted per call).
    _feature_p: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n = len(self.feature)
        if self.feature.size and int(self.feature.max()) >= self.num_features:
            raise TreeFormatError("a split reads a feature beyond num_features")
        for name in _ARRAYS[:-1]:
            if len(getattr(self, name)) != n:
                raise TreeFormatError(f"{name} has {len(getattr(self, name))} nodes, not {n}")
        nan_right = ~self.default_left.astype(bool)
        column = 2 * self.feature.astype(np.intp) + nan_right.astype(np.intp)
        path_feature, path_delta, depth = _paths(self)
        set_ = object.__setattr__
        set_(self, "depth", depth)
        set_(self, "_column", column)
        set_(self, "_nan_right", nan_right)
        table = _contribution_table(self, path_feature, path_delta)
        set_(self, "_table", table)
        set_(self, "_joint", None if table is None else _joint_table(self, table))
        set_(self, "_path_feature", path_feature)
        set_(self, "_path_delta", path_delta)
        set_(self, "_root_mean", self.mean.take(self.roots).astype(np.float32))
        set_(self, "_base32", np.float32(self.base_margin))
        set_(self, "_base_row", np.array([self.base_margin], dtype=np.float32))
        set_(self, "_feature_p", self.feature.astype(np.intp))

    @property
    def num_trees(self) -> int:
        return len(self.roots)

    # -- evaluation ---------------------------------------------------------------------------

    def leaves(self, rows: np.ndarray) -> np.ndarray:
        """The leaf (global node index) each row reaches in each tree: (R, T)."""
        x = np.asarray(rows, dtype=np.float32)
        if x.ndim == 1:
            x = x.reshape(1, -1)
        count, width = x.shape
        if width != self.num_features:
            raise ValueError(f"rows have {width} features; the trees read {self.num_features}")
        if count == 1:
            return self._leaves_of_one(x[0])
        # Two columns per feature: NaN as -inf (takes the left branch) and as +inf (the right one).
        missing = np.isnan(x)
        pairs = np.empty((count, width, 2), dtype=np.float32)
        pairs[:, :, 0] = np.where(missing, -np.inf, x)
        pairs[:, :, 1] = np.where(missing, np.inf, x)
        wide = pairs.reshape(count, 2 * width)
        nodes = len(self.feature)
        out = np.empty((count, len(self.roots)), dtype=np.intp)
        block = max(1, _DECISION_CELLS // max(nodes, 1))
        for start in range(0, count, block):
            part = wide[start : start + block]
            # Every node's next node for these rows at once (one comparison over all nodes), so the
            # walk itself is one gather per level over rows x trees.
            step = np.where(part.take(self._column, axis=1) >= self.threshold, self.right, self.left)
            if len(part) == 1:
                flat, node = step.reshape(-1), self.roots
                for _ in range(self.depth):
                    node = flat.take(node)
            else:
                flat = step.reshape(-1)
                offsets = (np.arange(len(part), dtype=np.intp) * nodes)[:, None]
                node = np.broadcast_to(self.roots, (len(part), len(self.roots)))
                for _ in range(self.depth):
                    node = flat.take(node + offsets)
            out[start : start + len(part)] = node
        return out

    def _leaves_of_one(self, row: np.ndarray) -> np.ndarray:
        """`leaves` of a single row (every checkout call): the same steps with fewer arrays, since
        numpy's cost per call, not per element, is what one row pays."""
        value = row.take(self._feature_p)
        # A NaN goes where its node sends it; any other value right when at or above the threshold.
        right = np.where(np.isnan(value), self._nan_right, value >= self.threshold)
        step = np.where(right, self.right, self.left)  # int32: half the memory an intp step takes
        node = self.roots
        for _ in range(self.depth):
            node = step.take(node)
        return node.astype(np.intp).reshape(1, -1)

    def evaluate(self, rows: np.ndarray) -> Evaluation:
        """Margins and Saabas contributions (bias last) of a 2-D float32 matrix, in one walk."""
        leaves = self.leaves(rows)
        if leaves.shape[0] == 1 and self._joint is not None:
            return self._evaluate_one(leaves)
        return Evaluation(self._margin(leaves), self._contributions(leaves))

    def _evaluate_one(self, leaves: np.ndarray) -> Evaluation:
        """`evaluate` of one row from the joint table: one gather and one reduction give the
        contributions and the margin, added tree after tree in float32 as `_contributions` and
        `_margin` add them (the margin's column starts from the base margin plus the first tree)."""
        assert self._joint is not None
        out = np.add.reduce(self._joint.take(leaves.T, axis=0), axis=0, dtype=np.float32)
        out[:, -2] += self._base32  # the bias, last of the contributions
        both = out.astype(np.float64)
        return Evaluation(both[:, -1], both[:, :-1])

    def margin(self, rows: np.ndarray) -> np.ndarray:
        return self._margin(self.leaves(rows))

    def output(self, margin: np.ndarray) -> np.ndarray:
        """The model's output for margins: a probability for a logistic objective.

        XGBoost's sigmoid in float32, 1 / (1 + exp(min(-margin, 88.7))), with exp taken in float64
        and rounded: equal to XGBoost's float32 output but for ~1 in 4,000 values, 1 ulp away.
        """
        if self.link != LOGISTIC:
            return np.asarray(margin, dtype=np.float64)
        negated = np.minimum(-np.asarray(margin, dtype=np.float32), np.float32(88.7))
        exp = np.exp(negated.astype(np.float64)).astype(np.float32)
        return (np.float32(1.0) / (exp + np.float32(1.0))).astype(np.float64)

    def output_one(self, margin: float) -> float:
        """`output` of one margin with Python floats: a dozen numpy calls less per checkout order.

        The same steps: each float32 operation is made in float64 and rounded to float32, which
        gives the float32 result for the negation, the minimum, a sum or a quotient of two float32
        values (float64 holds more than twice their precision); exp is numpy's, as in `output`.
        """
        if self.link != LOGISTIC:
            return float(margin)
        negated = min(-float(np.float32(margin)), _EXP_CAP)
        exp = float(np.float32(np.exp(negated)))
        return float(np.float32(1.0 / float(np.float32(exp + 1.0))))

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """What ``booster.inplace_predict`` returns (as float64)."""
        return self.output(self.margin(rows))

    def _margin(self, leaves: np.ndarray) -> np.ndarray:
        # Tree after tree in float32, from the base margin: the order and precision XGBoost adds in
        # (a float64 sum differs from it by up to ~1e-6 on a margin of 10). cumsum is sequential.
        if leaves.shape[0] == 1:  # one row: the same sum in fewer calls
            one = np.concatenate((self._base_row, self.value.take(leaves[0])))
            return one.cumsum(dtype=np.float32)[-1:].astype(np.float64)
        values = np.empty((leaves.shape[0], leaves.shape[1] + 1), dtype=np.float32)
        values[:, 0] = self._base32
        values[:, 1:] = self.value.take(leaves)
        return np.cumsum(values, axis=1, dtype=np.float32)[:, -1].astype(np.float64)

    def _contributions(self, leaves: np.ndarray) -> np.ndarray:
        # Each tree's contributions first (the deltas along its path, and its root's mean as the
        # bias), then the trees added one after the other in float32, then the base margin: how
        # XGBoost accumulates them, so the two agree to float32 rounding of each step.
        count, trees = leaves.shape
        width = self.num_features + 1
        if self._table is not None:
            # Trees first, (T, R, F + 1): a reduction over the first axis adds tree after tree,
            # element by element, in float32 (the parity tests hold it to that, bit for bit).
            per_tree = self._table.take(leaves.T, axis=0)
            out = np.add.reduce(per_tree, axis=0, dtype=np.float32)
            out[:, -1] += self._base32
            return np.asarray(out, dtype=np.float64)
        cells = np.arange(count * trees, dtype=np.intp).reshape(count, trees, 1) * width
        index = self._path_feature.take(leaves, axis=0) + cells  # (R, T, depth)
        weights = self._path_delta.take(leaves, axis=0)
        summed = np.bincount(index.reshape(-1), weights.reshape(-1), minlength=count * trees * width)
        per_tree = summed.astype(np.float32).reshape(count, trees, width)
        per_tree[:, :, -1] = self._root_mean
        out = np.cumsum(per_tree, axis=1, dtype=np.float32)[:, -1]
        out[:, -1] += self._base32
        return out.astype(np.float64)

    # -- storage ------------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        buffer = io.BytesIO()
        scalars = np.array([self.num_features, self.link], dtype=np.int64)
        np.savez(
            buffer,
            scalars=scalars,
            base_margin=np.array([self.base_margin], dtype=np.float64),
            **{name: getattr(self, name) for name in _ARRAYS},
        )
        path.write_bytes(buffer.getvalue())

    @classmethod
    def load(cls, path: Path) -> TreeEnsemble:
        with np.load(path, allow_pickle=False) as data:
            num_features, link = (int(v) for v in data["scalars"])
            arrays = {name: data[name] for name in _ARRAYS}
            base_margin = float(data["base_margin"][0])
        return cls(num_features=num_features, base_margin=base_margin, link=link, **arrays)

    # -- building -----------------------------------------------------------------------------

    @classmethod
    def from_booster(cls, booster: Any) -> TreeEnsemble:
        """From anything with XGBoost's ``save_raw("json")`` (a Booster), without importing xgboost."""
        return cls.from_xgboost_json(json.loads(bytes(booster.save_raw("json"))))

    @classmethod
    def from_xgboost_json(cls, model: dict[str, Any]) -> TreeEnsemble:
        """From the JSON form of an XGBoost model (``save_raw("json")`` or a saved ``.json``)."""
        learner = model["learner"]
        params = learner["learner_model_param"]
        if int(params.get("num_class", "0")) > 1 or int(params.get("num_target", "1")) != 1:
            raise TreeFormatError("one output per row only (no multi-class, no multi-target)")
        objective = learner["objective"]["name"]
        if objective not in _LINKS:
            raise TreeFormatError(f"objective {objective} is not supported")
        booster = learner["gradient_booster"]
        if booster["name"] != "gbtree":
            raise TreeFormatError(f"booster {booster['name']} is not supported (gbtree only)")
        trees = booster["model"]["trees"]
        link = _LINKS[objective]
        return cls._from_trees(
            trees,
            num_features=int(params["num_feature"]),
            base_margin=_base_margin(params["base_score"], link),
            link=link,
        )

    @classmethod
    def _from_trees(
        cls, trees: list[dict[str, Any]], num_features: int, base_margin: float, link: int
    ) -> TreeEnsemble:
        parts: dict[str, list[np.ndarray]] = {name: [] for name in _ARRAYS[:-1]}
        roots: list[int] = []
        offset = 0
        for tree in trees:
            if any(int(t) != 0 for t in tree["split_type"]):
                raise TreeFormatError("categorical splits are not supported")
            if int(tree["tree_param"].get("size_leaf_vector", "1")) > 1:
                raise TreeFormatError("vector leaves are not supported")
            left = np.asarray(tree["left_children"], dtype=np.int64)
            right = np.asarray(tree["right_children"], dtype=np.int64)
            size = len(left)
            own = np.arange(size, dtype=np.int64)
            leaf = left == -1
            conditions = np.asarray(tree["split_conditions"], dtype=np.float32)
            hessians = np.asarray(tree["sum_hessian"], dtype=np.float32)
            parts["feature"].append(np.where(leaf, 0, np.asarray(tree["split_indices"], dtype=np.int64)))
            # A leaf's split_condition holds its value (times the learning rate, as predicted).
            parts["threshold"].append(np.where(leaf, np.float32(np.inf), conditions).astype(np.float32))
            parts["left"].append(np.where(leaf, own, left) + offset)
            parts["right"].append(np.where(leaf, own, right) + offset)
            parts["default_left"].append(np.asarray(tree["default_left"], dtype=bool))
            values = np.where(leaf, conditions, np.float32(0)).astype(np.float32)
            parts["value"].append(values)
            parts["mean"].append(_node_means(left, right, values, hessians))
            roots.append(offset)
            offset += size
        joined = {name: (np.concatenate(chunks) if chunks else np.empty(0)) for name, chunks in parts.items()}
        return cls(
            num_features=num_features,
            base_margin=base_margin,
            link=link,
            feature=joined["feature"].astype(np.int32),
            threshold=joined["threshold"].astype(np.float32),
            left=joined["left"].astype(np.int32),
            right=joined["right"].astype(np.int32),
            default_left=joined["default_left"].astype(bool),
            value=joined["value"].astype(np.float32),
            mean=joined["mean"].astype(np.float32),
            roots=np.asarray(roots, dtype=np.int32),
        )


def load_artifact_trees(directory: Path, metadata: dict[str, Any]) -> TreeEnsemble:
    """The evaluator's arrays of a model artifact, checked against its metadata.

    ModelMismatchError when the artifact has no ``trees.npz`` (exported before the evaluator, or
    half copied) or when its trees read another number of features than the metadata names.
    """
    path = directory / TREES_FILE
    version = metadata.get("version")
    if not path.is_file():
        raise ModelMismatchError(
            f"model {version} has no {TREES_FILE} beside model.ubj; export it again with this code"
        )
    try:
        trees = TreeEnsemble.load(path)
    except (OSError, KeyError, ValueError) as error:
        raise ModelMismatchError(f"model {version}: {TREES_FILE} is unreadable ({error})") from error
    named = len(metadata["feature_names"])
    if trees.num_features != named:
        raise ModelMismatchError(
            f"model {version}: {TREES_FILE} reads {trees.num_features} features, its metadata names {named}"
        )
    return trees


def _base_margin(text: str, link: int) -> float:
    """XGBoost 2+ keeps base_score as the user sees it (a probability for logistic objectives),
    as "0.5" or as a one-element list "[1.7765902E-2]"; the margin is its logit, in float32."""
    values = json.loads(text) if text.strip().startswith("[") else [float(text)]
    if len(values) != 1:
        raise TreeFormatError("one base_score only")
    score = np.float32(values[0])
    if link == LOGISTIC:
        # log(p / (1 - p)) in float32 arithmetic, as XGBoost takes it: the float64 logit rounded
        # to float32 can be one ulp away (base_score 4.3728806E-2), and then every margin is too.
        return float(np.log(score / (np.float32(1.0) - score)))
    return float(score)


def _node_means(left: np.ndarray, right: np.ndarray, values: np.ndarray, hessians: np.ndarray) -> np.ndarray:
    """Each node's hessian-weighted mean of the leaf values under it, in float32 as XGBoost does."""
    means = np.zeros(len(left), dtype=np.float32)
    order: list[int] = []
    stack = [0]
    while stack:  # parents before children; reversed, children before parents
        node = stack.pop()
        order.append(node)
        if left[node] != -1:
            stack += [int(left[node]), int(right[node])]
    for node in reversed(order):
        if left[node] == -1:
            means[node] = values[node]
        else:
            a, b = int(left[node]), int(right[node])
            total = means[a] * hessians[a] + means[b] * hessians[b]
            means[node] = np.float32(total / hessians[node])
    return means


def _contribution_table(
    trees: TreeEnsemble, path_feature: np.ndarray, path_delta: np.ndarray
) -> np.ndarray | None:
    """Per node, the contributions of its tree to a row ending there (the path's changes, and the
    root's mean as the bias), dense; None when that table would be too big (then built per call)."""
    nodes, width = len(trees.feature), trees.num_features + 1
    if nodes * width > _TABLE_CELLS:
        return None
    cells = np.arange(nodes, dtype=np.intp)[:, None] * width + path_feature
    summed = np.bincount(cells.reshape(-1), path_delta.reshape(-1), minlength=nodes * width)
    table = summed.astype(np.float32).reshape(nodes, width)
    sizes = np.diff(np.append(trees.roots.astype(np.intp), nodes))
    table[:, -1] = np.repeat(trees.mean.take(trees.roots), sizes)
    return table


def _joint_table(trees: TreeEnsemble, table: np.ndarray) -> np.ndarray:
    """The contribution table and each node's value beside it; the first tree's values hold the
    base margin already (rounded to float32, as the margin's first addition rounds it), so that
    one reduction over the trees adds the margin in the order `_margin` does."""
    values = trees.value.astype(np.float32)
    first = int(trees.roots[1]) if len(trees.roots) > 1 else len(values)
    values[:first] = np.float32(trees.base_margin) + values[:first]
    return np.concatenate([table, values[:, None]], axis=1)


def _paths(trees: TreeEnsemble) -> tuple[np.ndarray, np.ndarray, int]:
    """Per node: the features split on from its tree's root down to it and the change in the node
    mean each split made, padded to the deepest path (feature 0, change 0); and that depth."""
    n = len(trees.feature)
    parent = np.full(n, -1, dtype=np.intp)
    inner = np.flatnonzero(trees.left != np.arange(n))
    parent[trees.left[inner]] = inner
    parent[trees.right[inner]] = inner
    depth_of = np.zeros(n, dtype=np.intp)
    is_inner = np.zeros(n, dtype=bool)
    is_inner[inner] = True
    frontier = trees.roots.astype(np.intp)
    depth = 0
    while True:
        frontier = frontier[is_inner[frontier]]
        if frontier.size == 0:
            break
        children = np.concatenate([trees.left[frontier], trees.right[frontier]]).astype(np.intp)
        depth += 1
        depth_of[children] = depth
        frontier = children
    width = max(depth, 1)
    path_feature = np.zeros((n, width), dtype=np.intp)
    path_delta = np.zeros((n, width), dtype=np.float32)
    used = np.zeros((n, width), dtype=bool)
    # Level by level: a child's path is its parent's plus the parent's split. A feature split on
    # twice keeps one slot, its changes added in path order in float32, as XGBoost adds them.
    mean = trees.mean
    for d in range(1, depth + 1):
        nodes = np.flatnonzero(depth_of == d)
        up = parent[nodes]
        split = trees.feature[up].astype(np.intp)
        path_feature[nodes] = path_feature[up]
        path_delta[nodes] = path_delta[up]
        used[nodes] = used[up]
        seen = used[nodes] & (path_feature[nodes] == split[:, None])
        slot = np.where(seen.any(axis=1), seen.argmax(axis=1), d - 1)
        path_feature[nodes, slot] = split
        path_delta[nodes, slot] = path_delta[nodes, slot] + (mean[nodes] - mean[up])
        used[nodes, slot] = True
    return path_feature, path_delta.astype(np.float64), depth
