"""``driftsentinel baseline --model NAME``: the model's outputs and labels -> a performance reference.

The training (or validation) rows hold, besides the features, what the model said and what
was true. Which columns those are is configurable:

* ``--label-column`` (default ``@label``, the label of FeatureEvents, else ``label``);
* ``--prediction-column`` (default ``@prediction``, else ``prediction``): the column the
  stream sends as the event's ``prediction``: a binary score, a class, or a regression value;
* ``--score-columns``: classifiers' probabilities when they are not the prediction. Binary:
  one column, the positive class's probability: ``COLUMN`` (the positive class is the second
  of the sorted label values) or ``CLASS=COLUMN`` (the positive class is ``CLASS``: say it when
  the score is the probability of the label that sorts first, e.g. ``default=p_default`` with
  labels ``default``/``repaid``, or every estimate is inverted); multiclass: ``CLASS=COLUMN``
  pairs, one per class. On the stream these are features of the same names;
* ``--task binary|multiclass|regression`` (default: inferred: several score columns are
  multiclass; a numeric prediction with two label values is binary, with more regression;
  a class-valued prediction is binary or multiclass by the number of label values).

The reference (:func:`~driftsentinel.detectors.performance.fit_classification_reference`,
``fit_regression_reference``) is fitted on windows of ``detectors.window_tests.window_events``
rows, the stream's windows, and records the fields the stream carries its inputs in
(:class:`~driftsentinel.schemas.profile.PerformanceInputs`). The prediction column is profiled
as the feature ``@prediction`` (the window tests then compare the live predictions with the
training ones); the label column is not profiled (labels often come later, on their own
topic, and would look missing). A regressor's features are the numeric columns other than
these (categorical columns are left out of its loss models).

This module only reads columns; the statistics are the core's.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from driftsentinel.detectors.profile import build_profile
from driftsentinel.schemas import SidecarConfig
from driftsentinel.schemas.profile import PerformanceInputs, PerformanceReference, ReferenceProfile
from driftsentinel.stream.input_files import InputFileError

PREDICTION = "@prediction"
TASKS = ("binary", "multiclass", "regression")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``baseline``'s performance-estimation flags."""
    group = parser.add_argument_group("performance estimation (the model's outputs and labels)")
    group.add_argument(
        "--model", help="model name: also fit a performance reference for it (default: none, no performance reference)"
    )
    group.add_argument("--task", choices=TASKS, help="default: inferred from the columns")
    group.add_argument("--label-column", help="the true label (default: @label, else label)")
    group.add_argument(
        "--prediction-column", help="what the stream sends as the event's prediction (default: @prediction)"
    )
    group.add_argument(
        "--score-columns",
        help="classifier probabilities when not the prediction: binary COL (P of the second sorted label) or "
        "CLASS=COL (P of CLASS, the positive class); multiclass CLASS=COL,... one per class "
        "(default: none, the prediction is the score)",
    )


@dataclass(frozen=True)
class Columns:
    """Which training columns are the model's outputs and labels."""

    label: str
    prediction: str | None
    scores: tuple[str, ...]
    classes: tuple[str, ...]
    task: str | None


def _pick(columns: dict[str, list[Any]], given: str | None, defaults: tuple[str, ...], what: str) -> str | None:
    if given is not None:
        if given not in columns:
            raise InputFileError(f"no column {given!r} for the {what} (columns: {', '.join(sorted(columns)[:20])})")
        return given
    return next((c for c in defaults if c in columns), None)


def choose_columns(columns: dict[str, list[Any]], args: argparse.Namespace) -> Columns:
    """The output and label columns from the flags (and defaults); a wrong name is a ValueError."""
    label = _pick(columns, args.label_column, ("@label", "label"), "label")
    if label is None:
        raise InputFileError("no label column (@label or label): name it with --label-column")
    prediction = _pick(columns, args.prediction_column, (PREDICTION, "prediction"), "prediction")
    scores: list[str] = []
    classes: list[str] = []
    for part in filter(None, (p.strip() for p in (args.score_columns or "").split(","))):
        cls, sep, col = part.partition("=")
        column = col if sep else cls
        if column not in columns:
            raise InputFileError(f"no score column {column!r}")
        scores.append(column)
        if sep:
            classes.append(cls)
    if classes and len(classes) != len(scores):
        raise InputFileError("--score-columns: give every column as CLASS=COLUMN, or one column for binary")
    if prediction is None and not scores:
        raise InputFileError("no prediction column (@prediction or prediction): name it with --prediction-column")
    return Columns(label, prediction, tuple(scores), tuple(classes), args.task)


def _numbers(values: list[Any]) -> np.ndarray | None:
    """The column as float64 (None missing), or None when a value is not a number."""
    out = np.empty(len(values))
    for i, v in enumerate(values):
        if v is None:
            out[i] = math.nan
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[i] = float(v)
        else:
            return None
    return out


def infer_task(columns: dict[str, list[Any]], chosen: Columns) -> str:
    """binary, multiclass or regression, from the outputs and the labels."""
    if chosen.task is not None:
        return chosen.task
    if len(chosen.scores) > 1:
        return "multiclass"
    distinct = {v for v in columns[chosen.label] if v is not None}
    if chosen.scores or (chosen.prediction is not None and _numbers(columns[chosen.prediction]) is None):
        return "binary" if len(distinct) <= 2 else "multiclass"
    return "binary" if len(distinct) <= 2 else "regression"


def fit_reference(columns: dict[str, list[Any]], chosen: Columns, task: str, window: int) -> PerformanceReference:
    """The model's performance reference from the training columns (every problem a plain ValueError)."""
    from driftsentinel.detectors.loss_model import LossModelError

    n_rows = len(columns[chosen.label])
    if n_rows // window < 2:  # the band is the spread over the reference's windows: two at least
        raise InputFileError(
            f"{n_rows} rows make fewer than 2 windows of detectors.window_tests.window_events = {window}: "
            f"give more rows, or a config with a smaller window (e.g. {max(n_rows // 5, 10)})"
        )
    try:
        return _fit(columns, chosen, task, window)
    except LossModelError as exc:  # e.g. scikit-learn missing: one line, not a traceback
        raise InputFileError(str(exc)) from None


def _fit(columns: dict[str, list[Any]], chosen: Columns, task: str, window: int) -> PerformanceReference:
    from driftsentinel.detectors.performance import fit_classification_reference, fit_regression_reference

    labels = np.asarray(columns[chosen.label], dtype=object)
    field = {c: c for c in columns}
    if chosen.prediction is not None:
        field[chosen.prediction] = PREDICTION
    if task == "regression":
        if chosen.prediction is None:
            raise InputFileError("a regression reference needs --prediction-column")
        y_hat, y = _numbers(columns[chosen.prediction]), _numbers(columns[chosen.label])
        if y_hat is None or y is None:
            raise InputFileError("regression: the prediction and label columns must be numbers")
        numeric = {
            c: v
            for c in columns
            if c not in (chosen.label, chosen.prediction) and not c.startswith("@")
            if (v := _numbers(columns[c])) is not None
        }
        names = list(numeric)
        x = np.column_stack(list(numeric.values())) if names else np.empty((len(y), 0))
        ref = fit_regression_reference(x, y_hat, y, feature_names=names, window=window)
        return ref.model_copy(update={"inputs": PerformanceInputs(prediction=PREDICTION)})
    score_columns = list(chosen.scores) or ([chosen.prediction] if chosen.prediction else [])
    scores = [_numbers(columns[c]) for c in score_columns]
    if any(s is None for s in scores):
        raise InputFileError(f"scores must be numbers: {', '.join(score_columns)}")
    matrix = scores[0] if task == "binary" else np.column_stack(scores)  # type: ignore[arg-type]
    if task == "binary" and len(score_columns) != 1:
        raise InputFileError("binary: give one score column (the positive class's probability)")
    if task == "multiclass" and len(chosen.classes) != len(score_columns):
        raise InputFileError("multiclass: give --score-columns CLASS=COLUMN for every class")
    predicted_col = chosen.prediction if chosen.prediction not in (None, *score_columns) else None
    predicted = np.asarray(columns[predicted_col], dtype=object) if predicted_col else None
    classes = list(chosen.classes) or None
    if task == "binary" and classes is not None:
        classes = _binary_classes(labels, classes[0])
    ref = fit_classification_reference(matrix, labels, classes=classes, window=window, predicted=predicted)
    inputs = PerformanceInputs(
        scores=[field[c] for c in score_columns], predicted=field[predicted_col] if predicted_col else None
    )
    return ref.model_copy(update={"inputs": inputs})


def _binary_classes(labels: np.ndarray, positive: str) -> list[str]:
    """``[other class, positive]``: a binary ``--score-columns CLASS=COL`` names the class whose
    probability the column is (the positive class, whatever the sort order of the labels)."""
    from driftsentinel.detectors.performance import canonical_classes

    names, missing = canonical_classes(labels)
    distinct = sorted(set(names[~missing].tolist()))
    (want,) = canonical_classes(np.asarray([positive], dtype=object))[0].tolist()
    if want not in distinct:
        raise InputFileError(f"--score-columns: class {positive!r} is not a label value (labels: {distinct[:10]})")
    others = [c for c in distinct if c != want]
    if len(others) != 1:
        raise InputFileError(f"binary: the labels need exactly two values, got {distinct[:10]}")
    return [others[0], want]


#: A FeatureEvent's own fields. In a flat training file (CSV, Parquet, flat JSON) they are not
#: features: the stream never sends them as features, so profiled they would read as missing
#: (a false ``missing_rate``) and enter a regressor's loss model. Pinning a type for one in
#: ``detectors.types`` keeps it as a feature.
EVENT_FIELDS = ("id", "ts", "model")


def set_aside(columns: dict[str, list[Any]], types: dict[str, Any], with_model: bool) -> list[str]:
    """Remove the columns that are not features on the stream; return what was left out, for the user.

    Always the event fields (:data:`EVENT_FIELDS`); without ``--model`` also a flat file's
    ``label`` (labels often come later, on their own topic) and its ``prediction`` becomes
    ``@prediction``, the name the stream's predictions are monitored under.

    >>> cols = {"id": ["a"], "ts": [1.0], "age": [30], "prediction": [0.2], "label": [0]}
    >>> set_aside(cols, {}, with_model=False), sorted(cols)
    (['id', 'ts', 'label'], ['@prediction', 'age'])
    """
    left = [c for c in EVENT_FIELDS if c in columns and c not in types]
    if not with_model:
        if "label" in columns and "label" not in types:
            left.append("label")
        if "prediction" in columns and PREDICTION not in columns and "prediction" not in types:
            columns[PREDICTION] = columns.pop("prediction")
    for name in left:
        del columns[name]
    return left


def make_profile(
    rows: Iterable[dict[str, Any]], source: str, config: SidecarConfig, args: argparse.Namespace
) -> tuple[ReferenceProfile, list[str]]:
    """``baseline``'s profile (with ``--model``, its performance reference too) and the columns left out."""
    from driftsentinel.stream.baseline import add_seasonal, add_segments, segment_keys, take_event_times, to_columns

    columns = to_columns(rows)
    period, time_column = getattr(args, "period", None), getattr(args, "time_column", "ts")
    times = take_event_times(columns, period, time_column)  # --period: the event times, not a feature
    if not columns:
        raise InputFileError(f"{source}: no training rows")
    types = config.detectors.types
    left_out = set_aside(columns, types, with_model=bool(getattr(args, "model", None)))
    if not columns:
        raise InputFileError(f"{source}: no feature columns (only {', '.join(left_out)})")
    keys = segment_keys(getattr(args, "segment", None), config.detectors)
    if not getattr(args, "model", None):
        profile = add_segments(build_profile(columns, source=source, types=types), columns, keys, config.detectors)
        return add_seasonal(profile, columns, times, period, time_column), left_out
    chosen = choose_columns(columns, args)
    task = infer_task(columns, chosen)
    ref = fit_reference(columns, chosen, task, config.detectors.window_tests.window_events)
    features = {c: v for c, v in columns.items() if c not in (chosen.label, chosen.prediction)}
    if chosen.prediction is not None:
        features[PREDICTION] = columns[chosen.prediction]
    profile = add_segments(build_profile(features, source=source, types=types), features, keys, config.detectors)
    profile = add_seasonal(profile, features, times, period, time_column)
    return profile.model_copy(update={"performance": {args.model: ref}}), left_out
