"""NannyML's public example datasets, loaded without pandas.

``nannyml==0.13.1``'s wheel ships three monitoring datasets, each a reference period
with targets and an analysis period whose targets come in a separate file:

* ``car_loan`` (binary): ``synthetic_car_loan_{reference,analysis,analysis_target}.csv``,
  score ``y_pred_proba``, prediction ``y_pred``, target ``repaid``;
* ``mc`` (multiclass, three credit-card products): ``mc_{reference,analysis,analysis_gt}.csv``,
  scores ``y_pred_proba_<class>``, prediction ``y_pred``, target ``y_true``;
* ``car_price`` (regression): ``regression_synthetic_{reference,analysis,analysis_targets}.csv``,
  prediction ``y_pred``, target ``y_true``.

:func:`load` fetches the wheel once with ``pip download --no-deps`` into the cache
(``$DRIFTSENTINEL_CACHE_DIR/nannyml``, default ``~/.cache/driftsentinel/nannyml``), checks
its SHA-256, extracts the CSVs, parses them with :mod:`csv` and numpy, joins the analysis
rows to their targets by ``id`` and keeps the parsed columns as ``.npz`` next to the CSVs.
A later call reads the ``.npz`` files only: no network, no CSV parsing. Nothing here is
committed to the repository; :class:`DataUnavailable` says why the data could not be had.
"""

from __future__ import annotations

import csv
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

NANNYML_VERSION = "0.13.1"
WHEEL_NAME = f"nannyml-{NANNYML_VERSION}-py3-none-any.whl"
# PyPI's nannyml-0.13.1-py3-none-any.whl: a different file is refused, not parsed
WHEEL_SHA256 = "cf5f4a33489834ae6773cb1baa33a0f98c0a3ee6ed9b43049478b25ce22fe869"
DATA_PREFIX = "nannyml/datasets/data/"
PIP_TIMEOUT_S = 300.0
# bump when the parsed layout changes, so old .npz caches are not read
_PARSED_FORMAT = 1

Kind = Literal["binary", "multiclass", "regression"]
Encoding = Literal["onehot", "ordinal", "drop"]
ENCODINGS: tuple[Encoding, ...] = ("onehot", "ordinal", "drop")


class DataUnavailable(RuntimeError):
    """The NannyML data could not be fetched or read; the message says why and what to do."""


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset's files and columns are."""

    name: str
    kind: Kind
    reference_csv: str
    analysis_csv: str
    targets_csv: str
    target: str
    prediction: str
    features: tuple[str, ...]
    score_columns: tuple[str, ...] = ()  # binary: one column; multiclass: one per class
    classes: tuple[str, ...] = ()  # multiclass class names, in score_columns' order
    id_column: str = "id"
    timestamp: str = "timestamp"


SPECS: dict[str, DatasetSpec] = {
    "car_loan": DatasetSpec(
        name="car_loan",
        kind="binary",
        reference_csv="synthetic_car_loan_reference.csv",
        analysis_csv="synthetic_car_loan_analysis.csv",
        targets_csv="synthetic_car_loan_analysis_target.csv",
        target="repaid",
        prediction="y_pred",
        score_columns=("y_pred_proba",),
        features=(
            "car_value",
            "salary_range",
            "debt_to_income_ratio",
            "loan_length",
            "repaid_loan_on_prev_car",
            "size_of_downpayment",
            "driver_tenure",
        ),
    ),
    "mc": DatasetSpec(
        name="mc",
        kind="multiclass",
        reference_csv="mc_reference.csv",
        analysis_csv="mc_analysis.csv",
        targets_csv="mc_analysis_gt.csv",
        target="y_true",
        prediction="y_pred",
        classes=("prepaid_card", "highstreet_card", "upmarket_card"),
        score_columns=(
            "y_pred_proba_prepaid_card",
            "y_pred_proba_highstreet_card",
            "y_pred_proba_upmarket_card",
        ),
        features=(
            "acq_channel",
            "app_behavioral_score",
            "requested_credit_limit",
            "app_channel",
            "credit_bureau_score",
            "stated_income",
            "is_customer",
        ),
    ),
    "car_price": DatasetSpec(
        name="car_price",
        kind="regression",
        reference_csv="regression_synthetic_reference.csv",
        analysis_csv="regression_synthetic_analysis.csv",
        targets_csv="regression_synthetic_analysis_targets.csv",
        target="y_true",
        prediction="y_pred",
        features=("car_age", "km_driven", "price_new", "accident_count", "door_count", "fuel", "transmission"),
    ),
}

Columns = dict[str, np.ndarray]


@dataclass(frozen=True)
class Dataset:
    """One dataset: columns by name (float64 where every value is a number, else ``str``).

    ``analysis`` holds the analysis rows in file order with their target joined by id.
    """

    spec: DatasetSpec
    reference: Columns = field(repr=False)
    analysis: Columns = field(repr=False)

    @property
    def name(self) -> str:
        return self.spec.name

    def scores(self, part: Literal["reference", "analysis"]) -> np.ndarray:
        """Scores: ``(n,)`` for binary, ``(n, k)`` in ``spec.classes`` order for multiclass."""
        cols = self.reference if part == "reference" else self.analysis
        if self.spec.kind == "binary":
            return cols[self.spec.score_columns[0]]
        if self.spec.kind == "multiclass":
            return np.column_stack([cols[c] for c in self.spec.score_columns])
        raise ValueError(f"{self.name} is a regression dataset: it has no scores")

    def features(
        self, part: Literal["reference", "analysis"], categorical: Encoding = "onehot"
    ) -> tuple[np.ndarray, list[str]]:
        """The feature matrix ``(n, d)`` float64 with its column names.

        Numeric columns as they are. A categorical column (strings), by ``categorical``:

        * ``onehot``: one 0/1 column per category of the reference (``name=category``); a
          category unseen in the reference is 0 in all of them;
        * ``ordinal``: one column, the value's index among the reference's sorted
          categories (unseen: NaN);
        * ``drop``: left out, as ``driftsentinel baseline --model`` does (it keeps numeric
          columns only).
        """
        cols = self.reference if part == "reference" else self.analysis
        out: list[np.ndarray] = []
        names: list[str] = []
        for name in self.spec.features:
            col = cols[name]
            if col.dtype.kind == "f":
                out.append(col)
                names.append(name)
                continue
            cats = np.unique(self.reference[name])
            if categorical == "onehot":
                for cat in cats.tolist():
                    out.append((col == cat).astype(np.float64))
                    names.append(f"{name}={cat}")
            elif categorical == "ordinal":
                pos = np.minimum(np.searchsorted(cats, col), len(cats) - 1)
                out.append(np.where(cats[pos] == col, pos.astype(np.float64), np.nan))
                names.append(name)
            elif categorical != "drop":
                raise ValueError(f"categorical encoding must be one of {ENCODINGS}, got {categorical!r}")
        n = len(cols[self.spec.id_column])
        return (np.column_stack(out) if out else np.empty((n, 0))), names


# ---------------------------------------------------------------------------- cache
def cache_root() -> Path:
    """``$DRIFTSENTINEL_CACHE_DIR`` or ``~/.cache/driftsentinel``."""
    env = os.environ.get("DRIFTSENTINEL_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "driftsentinel"


def data_dir() -> Path:
    """Where the wheel, its CSVs and the parsed ``.npz`` files are kept."""
    return cache_root() / "nannyml"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _pip_download(dest: Path) -> None:
    """``pip download --no-deps nannyml==<version>`` into ``dest``; raises DataUnavailable."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
        "--quiet",
        "--dest",
        str(dest),
        f"nannyml=={NANNYML_VERSION}",
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise DataUnavailable(
            f"pip download nannyml=={NANNYML_VERSION} took over {PIP_TIMEOUT_S:.0f} s: check the network "
            f"or put {WHEEL_NAME} in {data_dir()}"
        ) from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        last = lines[-1] if lines else f"exit code {proc.returncode}"
        raise DataUnavailable(
            f"pip download nannyml=={NANNYML_VERSION} failed ({last}): check the network or package index, "
            f"or put {WHEEL_NAME} in {data_dir()}"
        )


def ensure_wheel() -> Path:
    """The cached wheel, downloaded (and checked) on the first call only."""
    d = data_dir()
    wheel = d / WHEEL_NAME
    if wheel.is_file():
        return wheel
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataUnavailable(f"cannot create the cache directory {d}: {e}; set DRIFTSENTINEL_CACHE_DIR") from None
    with tempfile.TemporaryDirectory(dir=d, prefix=".download-") as tmp:
        _pip_download(Path(tmp))
        got = Path(tmp) / WHEEL_NAME
        if not got.is_file():
            raise DataUnavailable(f"pip download nannyml=={NANNYML_VERSION} did not produce {WHEEL_NAME}")
        digest = _sha256(got)
        if digest != WHEEL_SHA256:
            raise DataUnavailable(
                f"{WHEEL_NAME} from the package index has SHA-256 {digest}, expected {WHEEL_SHA256}: refusing it"
            )
        os.replace(got, wheel)
    return wheel


def csv_path(name: str) -> Path:
    """A CSV of the wheel's ``nannyml/datasets/data``, extracted once into the cache."""
    out = data_dir() / "csv" / name
    if out.is_file():
        return out
    wheel = ensure_wheel()
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read(DATA_PREFIX + name)
    except (zipfile.BadZipFile, KeyError) as e:
        raise DataUnavailable(
            f"{wheel} has no readable {DATA_PREFIX}{name} ({e}): delete the file to fetch it again"
        ) from None
    tmp = out.with_name(out.name + f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, out)
    return out


# ---------------------------------------------------------------------------- parsing
def _to_column(values: list[str]) -> np.ndarray:
    """float64 if every value is a number (empty = NaN), else a ``str`` array."""
    try:
        return np.array([float(v) if v != "" else np.nan for v in values], dtype=np.float64)
    except ValueError:
        return np.array(values, dtype=str)


def read_csv(path: Path) -> Columns:
    """A CSV file as columns by header name (csv module + numpy)."""
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise DataUnavailable(f"{path} is empty: delete it to extract it again") from None
        rows = list(reader)
    if any(len(r) != len(header) for r in rows):
        raise DataUnavailable(f"{path} has rows of the wrong width: delete it to extract it again")
    cols = list(zip(*rows, strict=True)) if rows else [() for _ in header]
    return {h: _to_column(list(c)) for h, c in zip(header, cols, strict=True)}


def join_targets(analysis: Columns, targets: Columns, *, id_column: str, target: str) -> Columns:
    """The analysis columns with ``target`` added: each row's target is the one with its id.

    Raises DataUnavailable if an analysis id has no target or an id appears twice.
    """
    a_ids = analysis[id_column]
    t_ids = targets[id_column]
    if len(np.unique(t_ids)) != len(t_ids) or len(np.unique(a_ids)) != len(a_ids):
        raise DataUnavailable(f"duplicate {id_column!r} values: cannot join the analysis rows to their targets")
    order = np.argsort(t_ids, kind="stable")
    pos = np.searchsorted(t_ids[order], a_ids)
    pos_c = np.minimum(pos, len(order) - 1)
    idx = order[pos_c]
    missing = t_ids[idx] != a_ids
    if missing.any():
        raise DataUnavailable(f"{int(missing.sum())} analysis rows have no target (first id {a_ids[missing][0]})")
    out = dict(analysis)
    out[target] = targets[target][idx]
    return out


def _npz_path(name: str, part: str) -> Path:
    return data_dir() / "parsed" / f"{name}.{part}.v{_PARSED_FORMAT}.npz"


def _save(path: Path, cols: Columns) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
    np.savez(tmp, **cols)  # type: ignore[arg-type]
    os.replace(tmp, path)


def _load_npz(path: Path) -> Columns:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def load(name: str) -> Dataset:
    """One of :data:`SPECS` (``car_loan``, ``mc``, ``car_price``), fetched and parsed on first use."""
    try:
        spec = SPECS[name]
    except KeyError:
        raise ValueError(f"unknown NannyML dataset {name!r}: one of {', '.join(SPECS)}") from None
    ref_p, ana_p = _npz_path(name, "reference"), _npz_path(name, "analysis")
    if ref_p.is_file() and ana_p.is_file():
        try:
            return Dataset(spec, _load_npz(ref_p), _load_npz(ana_p))
        except (OSError, ValueError, zipfile.BadZipFile):
            pass  # a damaged cache: parse again
    reference = read_csv(csv_path(spec.reference_csv))
    analysis = read_csv(csv_path(spec.analysis_csv))
    targets = read_csv(csv_path(spec.targets_csv))
    inputs = {spec.id_column, spec.prediction, *spec.features, *spec.score_columns}
    for fname, cols, needed in (
        (spec.reference_csv, reference, inputs | {spec.target}),
        (spec.analysis_csv, analysis, inputs),
        (spec.targets_csv, targets, {spec.id_column, spec.target}),
    ):
        lacking = sorted(needed - cols.keys())
        if lacking:
            raise DataUnavailable(f"{fname} lacks columns {lacking}: not the nannyml {NANNYML_VERSION} data")
    analysis = join_targets(analysis, targets, id_column=spec.id_column, target=spec.target)
    _save(ref_p, reference)
    _save(ana_p, analysis)
    return Dataset(spec, reference, analysis)
