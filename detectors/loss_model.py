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
left if its feature is ``<= threshold``, or if it is NaN and the node's
``missing_left`` is set. That is scikit-learn's ``predict`` exactly (same comparisons,
same summation order). Only numeric features (NaN = missing); categorical splits are
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


@nb.njit(cache=True, nogil=True)
def _predict(
    x: np.ndarray,
    roots: np.ndarray,
    feature: np.ndarray,
    threshold: np.ndarray,
    missing_left: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    value: np.ndarray,
    is_leaf: np.ndarray,
    baseline: float,
) -> np.ndarray:  # pragma: no cover - compiled
    n = x.shape[0]
    out = np.full(n, baseline)
    for i in range(n):
        acc = baseline
        for t in range(roots.shape[0]):  # the trees in order: scikit-learn's summation order
            node = roots[t]
            while not is_leaf[node]:
                v = x[i, feature[node]]
                if np.isnan(v):
                    node = left[node] if missing_left[node] else right[node]
                elif v <= threshold[node]:
                    node = left[node]
                else:
                    node = right[node]
            acc += value[node]
        out[i] = acc
    return out


class CompiledEnsemble:
    """A validated :class:`TreeEnsemble` as flat numpy arrays, ready to evaluate."""

    def __init__(self, ensemble: TreeEnsemble) -> None:
        """Flatten the trees (child indices made global); re-checks what the schema checked."""
        if not isinstance(ensemble, TreeEnsemble):
            raise LossModelError(f"expected a TreeEnsemble, got {type(ensemble).__name__}")
        self.n_features = ensemble.n_features
        self.baseline = float(ensemble.baseline)
        sizes = np.array([len(t.value) for t in ensemble.trees], dtype=np.int64)
        offsets = np.r_[0, np.cumsum(sizes)[:-1]].astype(np.int64) if sizes.size else np.zeros(0, np.int64)
        self.roots = offsets

        def cat(name: str, dtype: Any) -> np.ndarray:
            parts = [np.asarray(getattr(t, name), dtype=dtype) for t in ensemble.trees]
            return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

        shift = np.repeat(offsets, sizes)
        self.is_leaf = cat("is_leaf", np.bool_)
        self.feature = np.where(self.is_leaf, 0, cat("feature", np.int64))
        self.threshold = cat("threshold", np.float64)
        self.missing_left = cat("missing_left", np.bool_)
        self.left = np.where(self.is_leaf, 0, cat("left", np.int64) + shift)
        self.right = np.where(self.is_leaf, 0, cat("right", np.int64) + shift)
        self.value = cat("value", np.float64)
        own = np.arange(self.value.shape[0])
        end = np.repeat(offsets + sizes, sizes)
        inner = ~self.is_leaf
        if (
            np.any((self.left <= own)[inner])
            or np.any((self.right <= own)[inner])
            or np.any((self.left >= end)[inner])
            or np.any((self.right >= end)[inner])
            or np.any((self.feature < 0) | (self.feature >= self.n_features))
        ):
            raise LossModelError("loss model trees are malformed (child or feature index out of range)")

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """Predictions for (n, n_features) float inputs (NaN = missing)."""
        x = np.ascontiguousarray(inputs, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise LossModelError(f"loss model reads {self.n_features} columns, got an array of shape {x.shape}")
        if self.roots.shape[0] == 0:
            return np.full(x.shape[0], self.baseline)
        return _predict(
            x,
            self.roots,
            self.feature,
            self.threshold,
            self.missing_left,
            self.left,
            self.right,
            self.value,
            self.is_leaf,
            self.baseline,
        )
