"""Performance estimation (CBPE, DLE) against references: scikit-learn, brute force, NannyML's formulas."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score
from threadpoolctl import threadpool_limits

from driftsentinel.detectors.isotonic import apply_isotonic, fit_isotonic, needs_calibration
from driftsentinel.detectors.loss_model import CompiledEnsemble, EnsembleSet, export_tree_ensemble
from driftsentinel.detectors.performance import (
    PerformanceEstimator,
    RealizedWindow,
    ReferenceModel,
    WindowCounts,
    _band,
    fit_classification_reference,
    fit_regression_reference,
)
from driftsentinel.schemas.profile import (
    ClassificationOutputs,
    IsotonicMap,
    MetricBand,
    PerformanceReference,
    ProfileError,
    ReferenceProfile,
    TreeEnsemble,
    load_profile,
)

METRICS = ("roc_auc", "accuracy", "precision", "recall", "f1")
_BAND = MetricBand(reference=0.5, mean=0.5, std=0.1, lower=0.2, upper=0.8, n_windows=2)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """scikit-learn's OpenMP fit on one thread: many threads on a busy shared machine are 20x slower."""
    with threadpool_limits(limits=1):
        yield


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _draw(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One class per row from (n, k) probabilities."""
    u = rng.random((p.shape[0], 1))
    return np.asarray((u > np.cumsum(p, axis=1)).sum(axis=1))


def _reference(classes: list[str], calibration: list[IsotonicMap | None], window: int = 50) -> PerformanceReference:
    columns = 1 if len(classes) == 2 else len(classes)
    outputs = ClassificationOutputs(
        classes=classes,
        priors=[1 / len(classes)] * len(classes),
        calibration=calibration,
        score_edges=[np.linspace(0.001, 0.999, 999).tolist()] * columns,
    )
    kind: Literal["binary", "multiclass"] = "binary" if len(classes) == 2 else "multiclass"
    return PerformanceReference(
        kind=kind, window=window, n_rows=100, metrics=dict.fromkeys(METRICS, _BAND), classification=outputs
    )


# --- isotonic calibration -----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_isotonic_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 3000))
    x = np.round(rng.random(n), int(rng.integers(1, 5)))  # ties
    y = (rng.random(n) < x**2).astype(float)
    xt, yt = fit_isotonic(x, y)
    iso = IsotonicRegression(out_of_bounds="clip").fit(x, y)
    np.testing.assert_array_equal(xt, iso.X_thresholds_)
    np.testing.assert_allclose(yt, iso.y_thresholds_, rtol=0, atol=1e-12)
    probe = rng.random(500) * 1.4 - 0.2  # inside and outside the fitted range
    np.testing.assert_allclose(apply_isotonic(xt, yt, probe), iso.predict(probe), rtol=0, atol=1e-12)


def test_needs_calibration_follows_the_scores() -> None:
    rng = np.random.default_rng(0)
    s = rng.random(20_000)
    assert needs_calibration(s, (rng.random(20_000) < s**3).astype(float))  # badly calibrated
    assert not needs_calibration(s, np.ones(20_000))  # one class
    assert not needs_calibration(s, (s > 0.5).astype(float))  # ranks perfectly (AUC > 0.999)


# --- CBPE mechanics against brute force ---------------------------------------------------------------


def test_expected_confusion_matches_brute_force_binary() -> None:
    rng = np.random.default_rng(1)
    fit_x = rng.random(400)
    iso = IsotonicRegression(out_of_bounds="clip").fit(fit_x, rng.random(400) < fit_x**2)
    cal = IsotonicMap(x=iso.X_thresholds_.tolist(), y=iso.y_thresholds_.tolist())
    est = PerformanceEstimator(_reference(["0", "1"], [cal], window=1000))
    s = rng.random(300)
    predicted = (rng.random(300) < 0.5).astype(int)  # the model's own decisions, not s > 0.5
    est.update(scores=s[:120], predicted=predicted[:120])
    est.update(scores=s[120:], predicted=predicted[120:])
    expected = np.zeros((2, 2))
    p = iso.predict(s)
    for i in range(300):  # row by row: CBPE's expected confusion matrix
        expected[1, predicted[i]] += p[i]
        expected[0, predicted[i]] += 1 - p[i]
    counts, _ = est.open_window()
    np.testing.assert_allclose(counts.confusion, expected, rtol=1e-12)
    tp, fp, fn = expected[1, 1], expected[0, 1], expected[1, 0]
    got = est.estimate()
    assert got["precision"] == pytest.approx(tp / (tp + fp), rel=1e-12)
    assert got["recall"] == pytest.approx(tp / (tp + fn), rel=1e-12)
    assert got["f1"] == pytest.approx(tp / (tp + 0.5 * (fp + fn)), rel=1e-12)
    assert got["accuracy"] == pytest.approx(np.trace(expected) / 300, rel=1e-12)
    # NannyML's estimate_roc_auc: rank by the model's score, count calibrated positives
    order = np.argsort(-s)
    tps = np.r_[0, np.cumsum(p[order])]
    fps = np.r_[0, np.cumsum(1 - p[order])]
    nannyml_auc = np.trapezoid(tps / tps[-1], fps / fps[-1])
    assert got["roc_auc"] == pytest.approx(nannyml_auc, abs=1e-3)


def test_expected_confusion_matches_brute_force_multiclass() -> None:
    rng = np.random.default_rng(2)
    k = 3
    fit_x = rng.random(400)
    iso = IsotonicRegression(out_of_bounds="clip").fit(fit_x, rng.random(400) < fit_x)
    cal = [IsotonicMap(x=iso.X_thresholds_.tolist(), y=iso.y_thresholds_.tolist()), None, None]
    est = PerformanceEstimator(_reference(["a", "b", "c"], cal, window=1000))
    s = _softmax(rng.normal(size=(200, k)))
    predicted = np.array(["a", "b", "c"])[rng.integers(0, k, 200)]
    est.update(scores=s, predicted=predicted)
    expected = np.zeros((k, k))
    for i in range(200):  # NannyML: calibrate each column, renormalise each row
        row = np.array([iso.predict(s[i : i + 1, 0])[0], s[i, 1], s[i, 2]])
        row = row / row.sum()
        j = "abc".index(predicted[i])
        expected[:, j] += row
    counts, _ = est.open_window()
    np.testing.assert_allclose(counts.confusion, expected, rtol=1e-12)
    tp = np.diag(expected)
    got = est.estimate()
    assert got["precision"] == pytest.approx(np.mean(tp / expected.sum(axis=0)), rel=1e-12)
    assert got["recall"] == pytest.approx(np.mean(tp / expected.sum(axis=1)), rel=1e-12)
    assert got["accuracy"] == pytest.approx(tp.sum() / 200, rel=1e-12)


# --- realized metrics against scikit-learn ---------------------------------------------------------------


@pytest.mark.parametrize("case", ["uniform", "rare", "drifted"])
def test_histogram_roc_auc_within_1e3_of_exact(case: str) -> None:
    rng = np.random.default_rng(3)
    ref_s = rng.beta(1, 300, 20_000) if case == "rare" else rng.random(20_000)
    ref = fit_classification_reference(ref_s, rng.random(20_000) < np.clip(ref_s * 100, 0, 1), window=5000)
    if case == "drifted":  # scores moved to a range the reference hardly saw
        s = rng.beta(30, 2, 50_000)
    else:
        s = rng.beta(1, 300, 50_000) if case == "rare" else rng.random(50_000)
    y = (rng.random(50_000) < np.clip(s * 100 if case == "rare" else s, 0, 1)).astype(int)
    window = RealizedWindow(ref)
    window.add(scores=s, labels=y)
    got = window.metrics()["roc_auc"]
    exact = roc_auc_score(y, s)
    assert abs(got - exact) < 1e-3, (got, exact)


def test_multiclass_realized_macro_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(4)
    k, n = 4, 20_000
    p = _softmax(rng.normal(size=(n, k)) * 1.5)
    y = _draw(p, rng)
    ref = fit_classification_reference(p, y, window=5000)
    s = _softmax(rng.normal(size=(n, k)) * 1.5)
    labels = _draw(s, rng)
    predicted = np.argmax(s, axis=1)
    predicted[predicted == 3] = 2  # class 3 is never predicted: its precision is 0/0 -> 0
    window = RealizedWindow(ref)
    window.add(scores=s[: n // 2], predicted=predicted[: n // 2], labels=labels[: n // 2])
    window.add(scores=s[n // 2 :], predicted=predicted[n // 2 :], labels=labels[n // 2 :])
    got = window.metrics(n_predictions=2 * n)
    assert got["accuracy"] == pytest.approx(accuracy_score(labels, predicted), abs=1e-12)
    for name, fn in (("precision", precision_score), ("recall", recall_score), ("f1", f1_score)):
        want = fn(labels, predicted, average="macro", labels=list(range(k)), zero_division=0)
        assert got[name] == pytest.approx(want, abs=1e-12), name
    assert got["roc_auc"] == pytest.approx(roc_auc_score(labels, s, multi_class="ovr", average="macro"), abs=1e-3)
    assert got["label_coverage"] == 0.5


def test_binary_realized_metrics_and_label_coverage() -> None:
    rng = np.random.default_rng(5)
    s = rng.random(12_000)
    ref = fit_classification_reference(s, (rng.random(12_000) < s).astype(int), window=3000)
    est = PerformanceEstimator(ref)
    labels = np.where(rng.random(3000) < s[:3000], "1", "0").astype(object)
    labels[::4] = None  # a quarter of the rows has no label yet
    (closed,) = est.update(scores=s[:3000], labels=labels)
    known = labels != None  # noqa: E711 - elementwise
    y = labels[known].astype(int)
    pred = (s[:3000][known] > 0.5).astype(int)
    assert closed.realized["label_coverage"] == 0.75
    assert closed.realized["f1"] == pytest.approx(f1_score(y, pred), abs=1e-12)
    assert closed.realized["precision"] == pytest.approx(precision_score(y, pred), abs=1e-12)
    assert closed.realized["roc_auc"] == pytest.approx(roc_auc_score(y, s[:3000][known]), abs=1e-3)
    assert closed.n_rows == closed.n_scored == 3000


# --- estimates against the realized truth -----------------------------------------------------------


def test_cbpe_estimate_within_sampling_error_under_covariate_shift() -> None:
    rng = np.random.default_rng(6)
    ref_s = rng.beta(2, 2, 30_000)
    ref = fit_classification_reference(ref_s, (rng.random(30_000) < ref_s**2).astype(int), window=3000)
    assert ref.classification is not None and ref.classification.calibration[0] is not None  # s**2: miscalibrated
    est = PerformanceEstimator(ref)
    s = rng.beta(4, 1.5, 60_000)  # shifted scores; P(y | score) unchanged (no concept drift)
    closed = est.update(scores=s, labels=(rng.random(60_000) < s**2).astype(int))
    assert len(closed) == 20
    for name in METRICS:
        est_v = np.array([w.estimated[name] for w in closed])
        real_v = np.array([w.realized[name] for w in closed])
        sd = ref.metrics[name].std
        assert abs(est_v.mean() - real_v.mean()) < sd, name  # unbiased: within one window's sd over 20
        assert np.max(np.abs(est_v - real_v)) < 4 * sd, name
    lower, upper = est.band("accuracy")
    assert not lower <= closed[0].estimated["accuracy"] <= upper  # the drop is seen before any label


def test_dle_estimate_tracks_the_realized_error() -> None:
    rng = np.random.default_rng(7)

    def rows(n: int, shift: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = rng.normal(size=(n, 3))
        x[:, 0] += shift
        y_hat = 2 * x[:, 1]
        y = y_hat + rng.normal(size=n) * (0.2 + np.abs(x[:, 0]))  # error grows with |x0|
        x[rng.random((n, 3)) < 0.05] = np.nan
        return x, y_hat, y

    x, y_hat, y = rows(6000, 0.0)
    ref = fit_regression_reference(x, y_hat, y, feature_names=["a", "b", "c"], window=1000, max_iter=40)
    est = PerformanceEstimator(PerformanceReference.model_validate_json(ref.model_dump_json()))
    x2, y_hat2, y2 = rows(8000, 1.5)
    closed = est.update(features=x2, predictions=y_hat2, labels=y2)
    assert len(closed) == 8
    for name in ("mae", "rmse"):
        est_v = np.mean([w.estimated[name] for w in closed])
        real_v = np.mean([w.realized[name] for w in closed])
        assert est_v == pytest.approx(real_v, rel=0.1), name
        assert est_v > est.band(name)[1]  # the larger error is seen before any label
    assert est.band("mae")[0] >= 0 and est.band("mae")[1] < math.inf


# --- the loss model: export and evaluation ----------------------------------------------------------


def test_tree_export_reproduces_sklearn_predict_exactly() -> None:
    rng = np.random.default_rng(8)
    x = rng.normal(size=(3000, 4))
    x[rng.random((3000, 4)) < 0.15] = np.nan
    x[:, 2] = np.where(rng.random(3000) < 0.5, np.nan, 1.0)  # only "missing or not": splits on NaN
    y = np.nan_to_num(x[:, 0]) ** 2 + np.isnan(x[:, 2]) + rng.normal(size=3000) * 0.1
    model = HistGradientBoostingRegressor(max_iter=40, early_stopping=False, random_state=0).fit(x, y)
    ensemble = TreeEnsemble.model_validate_json(export_tree_ensemble(model).model_dump_json())
    assert any(math.isinf(t) for tree in ensemble.trees for t in tree.threshold)  # the NaN-split survived JSON
    probe = rng.normal(size=(5000, 4)) * 2
    probe[rng.random((5000, 4)) < 0.3] = np.nan
    probe[:10, 0], probe[10:20, 1] = np.inf, -np.inf
    probe[20:, :] = np.where(rng.random((4980, 4)) < 0.2, _split_values(model, rng, (4980, 4)), probe[20:])
    np.testing.assert_array_equal(CompiledEnsemble(ensemble).predict(probe), model.predict(probe))  # bit for bit


def _split_values(model: HistGradientBoostingRegressor, rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Values exactly at a split threshold of ``model`` (per column) or one ulp either side of it."""
    out = np.empty(shape)
    for col in range(shape[1]):
        thresholds = np.unique(
            np.concatenate(
                [
                    p.nodes["num_threshold"][(p.nodes["feature_idx"] == col) & ~p.nodes["is_leaf"].astype(bool)]
                    for (p,) in model._predictors
                ]
                + [np.zeros(1)]
            )
        )
        at = rng.choice(thresholds, shape[0])
        toward = np.where(rng.random(shape[0]) < 0.5, at, rng.choice([-np.inf, np.inf], shape[0]))
        out[:, col] = np.nextafter(at, toward)
    return out


@functools.cache
def _fitted(max_iter: int, constant: bool = False) -> HistGradientBoostingRegressor:
    """A small regressor with missing values, an all-or-nothing NaN column and splits on every column."""
    rng = np.random.default_rng(max_iter)
    x = rng.normal(size=(2000, 3))
    x[rng.random((2000, 3)) < 0.2] = np.nan
    x[:, 2] = np.where(rng.random(2000) < 0.5, np.nan, 0.5)
    y = np.full(2000, 3.0) if constant else np.nan_to_num(x[:, 0]) - np.isnan(x[:, 2]) + np.nan_to_num(x[:, 1]) ** 2
    with threadpool_limits(limits=1):
        return HistGradientBoostingRegressor(max_iter=max_iter, early_stopping=False, random_state=0).fit(x, y)


def test_ensemble_set_evaluates_each_member_like_sklearn_in_one_pass() -> None:
    models = [_fitted(12), _fitted(5), _fitted(3, constant=True)]  # different tree counts; one-leaf trees
    assert all(p.nodes.shape[0] == 1 for (p,) in models[2]._predictors)
    members = [CompiledEnsemble(export_tree_ensemble(m)) for m in models]
    rng = np.random.default_rng(3)
    probe = rng.normal(size=(3000, 3)) * 2
    probe[rng.random((3000, 3)) < 0.3] = np.nan
    probe[:300] = _split_values(models[0], rng, (300, 3))
    probe[300:310, 0], probe[310:320, 1], probe[320:330, 2] = np.inf, -np.inf, np.inf
    got = EnsembleSet(members).predict(probe)
    assert got.shape == (3000, 3)
    for k, (model, member) in enumerate(zip(models, members, strict=True)):
        np.testing.assert_array_equal(got[:, k], model.predict(probe))
        np.testing.assert_array_equal(member.predict(probe), model.predict(probe))
    with pytest.raises(ValueError, match="reads 3 columns"):
        EnsembleSet(members).predict(probe[:, :2])


_EDGE = st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -0.0, 0.5, 1e308, -1e308, 5e-324])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.tuples(*[st.floats(allow_nan=True, allow_infinity=True) | _EDGE | st.integers(0, 10**6)] * 3),
        min_size=1,
        max_size=40,
    ),
    at_split=st.lists(st.booleans(), min_size=3, max_size=3),
)
def test_kernel_equals_sklearn_predict_on_any_floats(rows: list[tuple[float | int, ...]], at_split: list[bool]) -> None:
    model = _fitted(12)
    probe = np.array(rows, dtype=np.float64)
    near = _split_values(model, np.random.default_rng(len(rows)), probe.shape)
    for col, use in enumerate(at_split):  # integers pick exact split values (or one ulp off) for this column
        ints = np.array([isinstance(r[col], int) for r in rows])
        probe[:, col] = np.where(use & ints, near[:, col], probe[:, col])
    ensemble = CompiledEnsemble(export_tree_ensemble(model))
    np.testing.assert_array_equal(ensemble.predict(probe), model.predict(probe))


def test_regression_rows_take_both_loss_models_from_one_pass() -> None:
    rng = np.random.default_rng(12)
    x = rng.normal(size=(4000, 2))
    x[rng.random((4000, 2)) < 0.1] = np.nan
    y_hat = np.nan_to_num(x[:, 0])
    y = y_hat + rng.normal(size=4000) * (1 + np.abs(np.nan_to_num(x[:, 1])))
    ref = fit_regression_reference(x, y_hat, y, feature_names=["a", "b"], window=1000, max_iter=15)
    model = ReferenceModel(ref)
    rows = model.regression_rows(x, y_hat, estimate=True)
    inputs = np.column_stack([x, y_hat])
    want = np.column_stack([model.abs_model.predict(inputs), model.sq_model.predict(inputs)])
    np.testing.assert_array_equal(rows.losses, np.maximum(want, 0.0))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t["left"].__setitem__(0, 0), "child indices must point forward"),
        (lambda t: t["right"].__setitem__(0, 10_000), "child indices must point forward"),
        (lambda t: t["feature"].__setitem__(0, 99), "feature index outside"),
        (lambda t: t["value"].pop(), "tree arrays differ in length"),
        (lambda t: t["threshold"].__setitem__(0, "NaN"), "thresholds must not be NaN"),
    ],
)
def test_malformed_loss_model_is_refused(tmp_path: Path, edit: object, message: str) -> None:
    rng = np.random.default_rng(9)
    x = rng.normal(size=(6000, 2))
    ref = fit_regression_reference(
        x, x[:, 0], x[:, 0] + rng.normal(size=6000), feature_names=["a", "b"], window=2000, max_iter=3
    )
    doc = json.loads(ReferenceProfile(source="t", n_rows=0, features={}, performance={"m": ref}).model_dump_json())
    edit(doc["performance"]["m"]["regression"]["sq_error_model"]["trees"][1])  # type: ignore[operator]
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ProfileError, match=message) as info:
        load_profile(path)
    assert "performance.m.regression.sq_error_model" in str(info.value)


# --- the reference: bands, profiles, errors ----------------------------------------------------------


def test_band_is_nannymls_mean_plus_minus_3_std_clipped() -> None:
    values = [0.97, 0.99, 0.995, 0.93]
    band = _band(values, 0.97, "accuracy")
    assert band.lower == pytest.approx(np.mean(values) - 3 * np.std(values))
    assert band.upper == 1.0  # mean + 3 std > 1: clipped to the metric's range
    assert _band([0.1, 0.5, 0.01], 0.2, "mae").lower == 0.0 and _band([1.0], 1.0, "mae").upper == 1.0
    assert _band([math.nan, math.nan], math.nan, "roc_auc").lower is None


def test_reference_fit_stores_what_the_stream_needs_and_profiles_stay_compatible(tmp_path: Path) -> None:
    rng = np.random.default_rng(10)
    s = rng.random(10_000)
    y = np.where(rng.random(10_000) < s, "fraud", "ok")
    ref = fit_classification_reference(s, y, classes=["ok", "fraud"], window=2000)
    assert ref.kind == "binary" and ref.classification is not None
    assert ref.classification.classes == ["ok", "fraud"]
    assert ref.classification.priors[1] == pytest.approx(np.mean(y == "fraud"))
    assert 2000 < len(ref.classification.score_edges[0]) <= 3072
    est = PerformanceEstimator(ref)
    lower, upper = est.band("f1")
    assert lower < est.reference_value("f1") < upper and ref.metrics["f1"].n_windows == 5
    profile = ReferenceProfile(source="t", n_rows=10_000, features={}, performance={"scorer": ref})
    path = tmp_path / "p.json"
    path.write_text(profile.model_dump_json())
    assert load_profile(path) == profile
    old = {"version": 1, "source": "old", "n_rows": 0, "features": {}}  # written before performance existed
    path.write_text(json.dumps(old))
    assert load_profile(path).performance is None


@pytest.mark.parametrize(
    ("scores", "labels", "message"),
    [
        (np.full(100, 0.5), np.arange(100) % 3, "binary model's, but the labels have 3 classes"),
        (np.full((100, 2), 0.5), np.arange(100) % 2, r"\(n, k >= 3\)"),
        (np.full(100, 1.5), np.arange(100) % 2, r"probabilities in \[0, 1\]"),
        (np.full(100, 0.5), np.arange(100) % 2, "at least 2 windows of 60"),
    ],
)
def test_reference_mistakes_are_named(scores: np.ndarray, labels: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fit_classification_reference(scores, labels, window=60)


# --- windows and state ---------------------------------------------------------------------------------


def test_windows_do_not_depend_on_batch_cuts_and_state_round_trips() -> None:
    rng = np.random.default_rng(11)
    p = _softmax(rng.normal(size=(9000, 3)))
    ref = fit_classification_reference(p, _draw(p, rng), window=1500)
    s = _softmax(rng.normal(size=(5000, 3)) * 2)
    labels = _draw(s, rng).astype(float)
    labels[rng.random(5000) < 0.3] = np.nan
    whole = PerformanceEstimator(ref)
    closed_whole = whole.update(scores=s, labels=labels)
    cut = PerformanceEstimator(ref)
    closed_cut = []
    bounds = [0, 7, 1499, 1500, 1501, 2900, 4999, 5000]
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        closed_cut += cut.update(scores=s[a:b], labels=labels[a:b])
        if b == 2900:  # a restart from a checkpoint in the middle of a window
            cut = PerformanceEstimator.from_state(ref, json.loads(json.dumps(cut.state(), allow_nan=False)))
    assert [w.index for w in closed_whole] == [w.index for w in closed_cut] == [0, 1, 2]
    for a_w, b_w in zip(closed_whole, closed_cut, strict=True):
        assert a_w.estimated == pytest.approx(b_w.estimated, rel=1e-9)
        assert a_w.realized == pytest.approx(b_w.realized, rel=1e-9, nan_ok=True)
    assert whole.rows_total == cut.rows_total == 5000 and whole.rows_in_window == 500
    assert whole.estimate() == pytest.approx(cut.estimate(), rel=1e-9)


def test_window_counts_merge_equals_the_whole() -> None:
    rng = np.random.default_rng(12)
    s = rng.random(8000)
    ref = fit_classification_reference(s, (rng.random(8000) < s).astype(int), window=2000)
    model = ReferenceModel(ref)
    y = (rng.random(1000) < s[:1000]).astype(int)
    halves = [PerformanceEstimator(model), PerformanceEstimator(model)]
    halves[0].update(scores=s[:600], labels=y[:600])
    halves[1].update(scores=s[600:1000], labels=y[600:])
    both = PerformanceEstimator(model)
    both.update(scores=s[:1000], labels=y)
    merged = halves[0].open_window()[0]
    merged.merge(halves[1].open_window()[0])
    whole = both.open_window()[0]
    assert (merged.n_rows, merged.n_used) == (whole.n_rows, whole.n_used) == (1000, 1000)
    np.testing.assert_allclose(merged.confusion, whole.confusion, rtol=1e-12)
    np.testing.assert_allclose(merged.hist, whole.hist, rtol=1e-12, atol=1e-12)
    real = [RealizedWindow(model), RealizedWindow(model)]
    real[0].add(scores=s[:300], labels=y[:300])
    real[1].add(scores=s[300:1000], labels=y[300:])
    real[0].merge(RealizedWindow.from_state(model, json.loads(json.dumps(real[1].state()))))
    assert real[0].metrics(1000) == pytest.approx(both.realized(), rel=1e-12)


def test_a_malformed_state_is_refused_before_use() -> None:
    rng = np.random.default_rng(13)
    s = rng.random(4000)
    ref = fit_classification_reference(s, (rng.random(4000) < s).astype(int), window=1000)
    est = PerformanceEstimator(ref)
    est.update(scores=s[:10])
    good = json.loads(json.dumps(est.state()))
    bad_shape = json.loads(json.dumps(good))
    bad_shape["estimated"]["hist"] = [[[0.0, 0.0]]]
    negative = json.loads(json.dumps(good))
    negative["estimated"]["confusion"][0][0] = -1.0
    full = json.loads(json.dumps(good))
    full["estimated"]["n_rows"] = full["estimated"]["n_used"] = 1000
    for state, message in ((bad_shape, "this reference needs"), (negative, "non-negative"), (full, "more rows")):
        with pytest.raises(ValueError, match=message):
            PerformanceEstimator.from_state(ref, state)
    with pytest.raises(ValueError, match="the reference is binary with 1000"):
        PerformanceEstimator.from_state(ref, {**good, "window": 5})
    assert WindowCounts.from_state(good["estimated"], ReferenceModel(ref).empty).n_rows == 10


def test_invalid_rows_count_in_the_window_but_not_in_the_metrics() -> None:
    rng = np.random.default_rng(14)
    s = rng.random(4000)
    ref = fit_classification_reference(s, (rng.random(4000) < s).astype(int), window=1000)
    est = PerformanceEstimator(ref)
    batch = s[:1000].copy()
    batch[:100] = np.nan
    predicted = np.where(np.arange(1000) < 150, "unknown", np.where(batch > 0.5, "1", "0"))
    (closed,) = est.update(scores=batch, predicted=predicted)
    assert (closed.n_rows, closed.n_scored) == (1000, 850)
    assert math.isnan(closed.realized["accuracy"]) and closed.realized["label_coverage"] == 0.0


def test_estimator_speed_benchmark_prints_events_per_second(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import estimator_speed

    argv = ["--tasks", "binary,regression", "--rows", "2000", "--batch", "1000", "--window", "500"]
    assert estimator_speed.main([*argv, "--reference-rows", "2000", "--min-seconds", "0", "--max-repeats", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["tasks"]) == {"binary", "regression"}
    for result in out["tasks"].values():
        assert result["repeats"] == 3 and result["events_per_s"] > 0 and result["events_per_cpu_s"] > 0
    assert out["tasks"]["regression"]["trees"] == [100, 100]
    assert estimator_speed.main(["--tasks", "nope"]) == 2
    assert "unknown task nope" in capsys.readouterr().err


def test_warmup_links_the_loss_model_kernel_before_the_first_batch(tmp_path: Path) -> None:
    """A regressor's profile: ``load_kernels`` (start-up) makes the tree walk's first call, not the first batch."""
    import subprocess
    import sys

    from driftsentinel.schemas.profile import ReferenceProfile

    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 2))
    pred = x[:, 0] + 0.1 * rng.normal(size=3000)
    with threadpool_limits(1):
        ref = fit_regression_reference(
            x, pred, pred + rng.normal(size=3000), feature_names=["a", "b"], window=500, max_iter=5
        )
    profile = tmp_path / "p.json"
    profile.write_text(ReferenceProfile(source="t", n_rows=3000, features={}, performance={"m": ref}).model_dump_json())
    script = (
        "import sys\n"
        "from driftsentinel.detectors import loss_model\n"
        "from driftsentinel.detectors.warmup import load_kernels\n"
        "from driftsentinel.schemas.profile import load_profile\n"
        "load_kernels(profile=load_profile(sys.argv[1]))\n"
        "print(len(loss_model._predict.signatures))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(profile)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip()) >= 1


def test_baseline_binary_score_column_names_its_positive_class() -> None:
    """``--score-columns default=p_default`` on a binary model: ``default`` is the positive class
    (the score is its probability), though it sorts first; estimates follow the realized
    metrics instead of inverting them."""
    import argparse

    from driftsentinel.stream.baseline_performance import choose_columns, fit_reference, infer_task

    rng = np.random.default_rng(21)
    n = 8_000
    p_default = rng.beta(2, 5, n)
    labels = np.where(rng.random(n) < p_default, "default", "repaid")
    columns = {"label": labels.tolist(), "p_default": p_default.tolist()}
    args = argparse.Namespace(label_column=None, prediction_column=None, score_columns="default=p_default", task=None)
    chosen = choose_columns(columns, args)
    task = infer_task(columns, chosen)
    ref = fit_reference(columns, chosen, task, window=2_000)
    assert task == "binary" and ref.classification is not None
    assert ref.classification.classes == ["repaid", "default"]
    (result, *_) = PerformanceEstimator(ref).update(scores=p_default[:2_000], labels=labels[:2_000])
    assert result.realized["roc_auc"] > 0.6
    assert result.estimated["roc_auc"] == pytest.approx(result.realized["roc_auc"], abs=0.05)
    assert result.estimated["accuracy"] == pytest.approx(result.realized["accuracy"], abs=0.05)
