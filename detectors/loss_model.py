"""DLE's loss models: gradient-boosted trees fitted with scikit-learn, run without it.

NannyML's Direct Loss Estimation fits a gradient-boosted regressor on the reference's
``features + prediction`` to predict each row's loss (``|y - y_hat|`` for MAE,
``(y - y_hat)^2`` for MSE/RMSE). Here the regressor is scikit-learn's
``HistGradientBoostingRegressor`` (LightGBM's defaults: 100 trees of at most 31 leaves,
learning rate 0.1, 20 rows a leaf, no early stopping), fitted by :func:`fit_loss_model`
(needs the ``estimation`` extra). :func:`export_tree_ensemble` writes the fitted trees
as plain node arrays (:class:`~driftsentinel.schemas.profile.TreeEnsemble`: no pickle,
nothing executed on load, shapes and child indices validated like a checkpoint), and
:class:`CompiledEnsemble` evaluates them with a numba kernel: for each row
``baseline + sum over trees of the leaf reached``, where an internal node sends the row
left if its feature is ``<= threshold`` (``-inf``/``inf`` compare as numbers; a split
on "missing or not" has threshold ``inf``), or if it is NaN and the node's
``missing_left`` is set. That is scikit-learn's ``predict`` bit for bit (same
comparisons, same summation order). :class:`EnsembleSet` evaluates several ensembles
over the same rows in one pass (DLE's absolute- and squared-error models), tree by tree
over the whole batch. Only numeric features (NaN = missing); categorical splits are
refused at export.
"""

from __future__ import annotations

from typing import Any

import numba as nb
import numpy as np

from driftsentinel.schemas.profile import RegressionTree, TreeEnsemble

#: The regressor's settings (LightGBM's defaults, which NannyML's DLE uses).
HGB_PARAMS: dict[str, Any] = {
    "loss": "squared_error",
    "learning_rate": 0.1,
    "max_iter": 100,
    "max_leaf_nodes": 31,
    "min_samples_leaf": 20,
    "early_stopping": False,
    "random_state": 0,
}


#: ``roots[m, t]`` of an ensemble with fewer than ``t + 1`` trees (no node or leaf code is this low).
ABSENT = np.iinfo(np.int64).min


class LossModelError(ValueError):
    """A loss model that cannot be exported or evaluated; the message says why."""


def fit_loss_model(inputs: np.ndarray, loss: np.ndarray, **params: Any) -> TreeEnsemble:
    """Fit ``loss ~ inputs`` with HistGradientBoostingRegressor and export it.

    ``inputs`` is (n, d) float with NaN for missing; ``params`` override :data:`HGB_PARAMS`.
    """
    try:
        from sklearn.ensemble import HistGradientBoostingRegressor
    except ImportError:
        raise LossModelError(
            "fitting a regression reference needs scikit-learn: pip install 'driftsentinel[estimation]'"
        ) from None
    model = HistGradientBoostingRegressor(**{**HGB_PARAMS, **params})
    model.fit(np.asarray(inputs, dtype=np.float64), np.asarray(loss, dtype=np.float64))
    return export_tree_ensemble(model)


def export_tree_ensemble(model: Any) -> TreeEnsemble:
    """A fitted ``HistGradientBoostingRegressor`` (squared error, numeric features) as node arrays."""
    loss_name = getattr(model, "loss", None)
    if loss_name != "squared_error":
        raise LossModelError(f"only squared-error regressors can be exported (this one uses {loss_name!r})")
    if getattr(model, "n_trees_per_iteration_", 1) != 1:
        raise LossModelError("only single-output regressors can be exported")
    baseline = np.asarray(model._baseline_prediction, dtype=np.float64).ravel()
    trees = []
    for iteration in model._predictors:
        (predictor,) = iteration
        nodes = predictor.nodes
        if np.any(nodes["is_categorical"]):
            raise LossModelError("categorical splits cannot be exported: pass categories as numeric codes")
        leaf = nodes["is_leaf"].astype(bool)
        trees.append(
            RegressionTree(
                feature=np.where(leaf, 0, nodes["feature_idx"]).astype(np.int64).tolist(),
                threshold=np.where(leaf, 0.0, nodes["num_threshold"]).astype(np.float64).tolist(),
                missing_left=nodes["missing_go_to_left"].astype(bool).tolist(),
                left=np.where(leaf, 0, nodes["left"]).astype(np.int64).tolist(),
                right=np.where(leaf, 0, nodes["right"]).astype(np.int64).tolist(),
                value=np.where(leaf, nodes["value"], 0.0).astype(np.float64).tolist(),
                is_leaf=leaf.tolist(),
            )
        )
    return TreeEnsemble(n_features=int(model.n_features_in_), baseline=float(baseline[0]), trees=trees)


@nb.njit(cache=True, nogil=True, inline="always")
def _leaf_value(
    x: np.ndarray,
    i: int,
    node: int,
    feature: np.ndarray,
    threshold: np.ndarray,
    missing_left: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    leaf_value: np.ndarray,
) -> float:  # pragma: no cover - compiled
    """Walk one tree from ``node`` for row ``i``; a child ``< 0`` is the leaf ``-child - 1``."""
    while node >= 0:
        v = x[i, feature[node]]
        if v <= threshold[node]:  # -inf and +inf compare like any number
            node = left[node]
        elif v > threshold[node]:
            node = right[node]
        else:  # neither: v is NaN (thresholds never are), sent where the fit sent missing values
            node = left[node] if missing_left[node] else right[node]
    return leaf_value[-node - 1]


@nb.njit(cache=True, nogil=True)
def _predict(
    x: np.ndarray,
    roots: np.ndarray,
    feature: np.ndarray,
    threshold: np.ndarray,
    missing_left: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    leaf_value: np.ndarray,
    baseline: np.ndarray,
) -> np.ndarray:  # pragma: no cover - compiled
    """``out[i, m] = baseline[m] + sum over t of tree (m, t)'s leaf for row i``, trees added in order.

    ``roots[m, t]`` is tree ``t`` of ensemble ``m`` (``ABSENT`` past its last tree). The
    loop runs tree by tree over all rows, the ensembles' trees of the same rank together:
    one tree's nodes stay in cache for the whole batch, and the independent walks of the
    ensembles overlap. Each row's sum still adds its trees in scikit-learn's order.
    """
    n = x.shape[0]
    n_models, n_trees = roots.shape
    out = np.empty((n, n_models))
    for i in range(n):
        for m in range(n_models):
            out[i, m] = baseline[m]
    for t in range(n_trees):
        for i in range(n):
            for m in range(n_models):
                root = roots[m, t]
                if root != ABSENT:
                    out[i, m] += _leaf_value(x, i, root, feature, threshold, missing_left, left, right, leaf_value)
    return out


def _rows(inputs: np.ndarray, n_features: int) -> np.ndarray:
    """``inputs`` as a C-contiguous (n, n_features) float array, or a :class:`LossModelError`."""
    x = np.ascontiguousarray(inputs, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != n_features:
        raise LossModelError(f"loss model reads {n_features} columns, got an array of shape {x.shape}")
    return x


class CompiledEnsemble:
    """A validated :class:`TreeEnsemble` as flat numpy arrays, ready to evaluate.

    Internal nodes are numbered across all trees (``feature``, ``threshold``,
    ``missing_left``, ``left``, ``right``); a child ``c < 0`` is leaf ``-c - 1`` of
    ``leaf_value``, and so is a root ``< 0`` (a tree of one leaf).
    """

    def __init__(self, ensemble: TreeEnsemble) -> None:
        """Flatten the trees; re-checks what the schema checked (children forward, features in range)."""
        if not isinstance(ensemble, TreeEnsemble):
            raise LossModelError(f"expected a TreeEnsemble, got {type(ensemble).__name__}")
        self.n_features = ensemble.n_features
        self.baseline = float(ensemble.baseline)
        sizes = np.array([len(t.value) for t in ensemble.trees], dtype=np.int64)
        offsets = np.r_[0, np.cumsum(sizes)[:-1]].astype(np.int64) if sizes.size else np.zeros(0, np.int64)

        def cat(name: str, dtype: Any) -> np.ndarray:
            parts = [np.asarray(getattr(t, name), dtype=dtype) for t in ensemble.trees]
            return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

        shift = np.repeat(offsets, sizes)
        is_leaf = cat("is_leaf", np.bool_)
        inner = ~is_leaf
        left = cat("left", np.int64) + shift
        right = cat("right", np.int64) + shift
        feature = cat("feature", np.int64)
        threshold = cat("threshold", np.float64)
        own = np.arange(is_leaf.shape[0])
        end = np.repeat(offsets + sizes, sizes)
        if (
            np.any((left <= own)[inner])
            or np.any((right <= own)[inner])
            or np.any((left >= end)[inner])
            or np.any((right >= end)[inner])
            or np.any((feature < 0)[inner] | (feature >= self.n_features)[inner])
            or np.any(np.isnan(threshold[inner]))
        ):
            raise LossModelError("loss model trees are malformed (child or feature index out of range, NaN split)")
        # renumber: internal nodes 0.. in their order, leaf j as -j - 1
        code = np.where(inner, np.cumsum(inner) - 1, -np.cumsum(is_leaf))
        self.roots = code[offsets] if sizes.size else np.zeros(0, np.int64)
        self.feature = feature[inner]
        self.threshold = threshold[inner]
        self.missing_left = cat("missing_left", np.bool_)[inner]
        self.left = code[left[inner]]
        self.right = code[right[inner]]
        self.leaf_value = cat("value", np.float64)[is_leaf]

    @property
    def n_trees(self) -> int:
        """Trees in the ensemble."""
        return int(self.roots.shape[0])

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """Predictions for (n, n_features) float inputs (NaN = missing): scikit-learn's, bit for bit."""
        x = _rows(inputs, self.n_features)
        roots, baseline = self.roots[None, :], np.array([self.baseline])
        leaf, nodes = self.leaf_value, (self.feature, self.threshold, self.missing_left, self.left, self.right)
        return _predict(x, roots, *nodes, leaf, baseline)[:, 0]


class EnsembleSet:
    """Several ensembles over the same inputs, evaluated in one pass (DLE's two loss models)."""

    def __init__(self, members: list[CompiledEnsemble]) -> None:
        """Stack the members' nodes (indices shifted) and their roots, trees of the same rank side by side."""
        if not members or len({m.n_features for m in members}) != 1:
            raise LossModelError("an ensemble set needs at least one ensemble, all reading the same columns")
        self.n_features = members[0].n_features
        inner = np.r_[0, np.cumsum([m.feature.shape[0] for m in members])[:-1]].astype(np.int64)
        leaves = np.r_[0, np.cumsum([m.leaf_value.shape[0] for m in members])[:-1]].astype(np.int64)

        def moved(codes: np.ndarray, k: int) -> np.ndarray:
            return np.where(codes >= 0, codes + inner[k], codes - leaves[k])

        self.roots = np.full((len(members), max(m.n_trees for m in members)), ABSENT, dtype=np.int64)
        for k, m in enumerate(members):
            self.roots[k, : m.n_trees] = moved(m.roots, k)
        self.feature = np.concatenate([m.feature for m in members])
        self.threshold = np.concatenate([m.threshold for m in members])
        self.missing_left = np.concatenate([m.missing_left for m in members])
        self.left = np.concatenate([moved(m.left, k) for k, m in enumerate(members)])
        self.right = np.concatenate([moved(m.right, k) for k, m in enumerate(members)])
        self.leaf_value = np.concatenate([m.leaf_value for m in members])
        self.baseline = np.array([m.baseline for m in members], dtype=np.float64)

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """(n, members) predictions for (n, n_features) float inputs (NaN = missing)."""
        return _predict(
            _rows(inputs, self.n_features),
            self.roots,
            self.feature,
            self.threshold,
            self.missing_left,
            self.left,
            self.right,
            self.leaf_value,
            self.baseline,
        )
