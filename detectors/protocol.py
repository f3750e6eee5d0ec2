"""The interface of a batch change detector over ``n_features`` independent streams.

Both backends implement it: the numba kernels (:class:`~driftsentinel.detectors.adwin.ADWIN`,
:class:`~driftsentinel.detectors.page_hinkley.PageHinkley`) and river's classes behind the
same batch calls (:mod:`driftsentinel.detectors.river_backend`). The bank and the concept
drift monitor see only :class:`ChangeDetector` (plus the read-outs they show on gauges),
so which backend runs is decided in one place, :func:`driftsentinel.detectors.backends.change_detector`.

The protocols are ``runtime_checkable``: ``isinstance`` checks that the methods and
properties exist (not their signatures; the tests check the behaviour).

>>> import numpy as np
>>> from driftsentinel.detectors.backends import change_detector
>>> det = change_detector("page_hinkley", "kernel", n_features=2)
>>> isinstance(det, ChangeDetector), isinstance(det, CusumReadouts), isinstance(det, WindowReadouts)
(True, True, False)
>>> det.set_params([1], threshold=5.0)         # feature 1 alone becomes more sensitive
>>> X = np.r_[np.zeros((100, 2)), np.ones((100, 2))]
>>> sorted({int(f) for _, f in det.update(X)})
[1]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np

__all__ = ["ChangeDetector", "CountsDetections", "CusumReadouts", "LocatesChanges", "WindowReadouts"]


@runtime_checkable
class ChangeDetector(Protocol):
    """A change detector per feature, fed batches ``[rows, n_features]``.

    * ``update(X)``: ``X`` float64, NaN = missing (that feature's detector does not see
      the row); returns the detections as int64 ``[k, 2]`` of ``(row, feature)``, sorted
      by row then feature. The same values give the same detections however they are cut
      into batches.
    * ``add_features(n)``: ``n`` new features at the end, with the construction-time
      parameters (river's defaults where those were per feature).
    * ``set_params(features, **params)``: the parameters (river's names, e.g. ``delta``)
      of the listed features, in place; other features and every detector's state are
      untouched. Raises ``ValueError`` on an unknown parameter name.
    * ``state_dict()`` / ``from_state(state)``: plain arrays and numbers, no pickle;
      ``from_state`` continues exactly where the detector stood.
    """

    @property
    def n_features(self) -> int: ...

    def add_features(self, n: int) -> None: ...

    def update(self, X: np.ndarray) -> np.ndarray: ...

    def set_params(self, features: Sequence[int], **params: Any) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self: ...


@runtime_checkable
class CountsDetections(Protocol):
    """Detections per feature since construction (both ADWIN and Page-Hinkley)."""

    @property
    def n_detections(self) -> np.ndarray: ...


@runtime_checkable
class LocatesChanges(Protocol):
    """Where each detection of the last ``update`` puts the change: ``post_change_count[k]``
    is the number of values the detector saw from the change point it estimated up to and
    including hit ``k``'s value (int64, one per hit of the last ``update``, in its order).

    ADWIN: the length of the sub-window after the cut (the window river keeps after its
    deletions). Page-Hinkley: the values after the extreme of the cumulative sum whose test
    fired (its standard change point estimate). Both backends report the same numbers.
    """

    @property
    def post_change_count(self) -> np.ndarray: ...


@runtime_checkable
class WindowReadouts(Protocol):
    """ADWIN's read-outs per feature: the adaptive window's length and mean."""

    @property
    def width(self) -> np.ndarray: ...

    @property
    def estimation(self) -> np.ndarray: ...


@runtime_checkable
class CusumReadouts(Protocol):
    """Page-Hinkley's read-outs per feature: how far each cumulative sum is from its
    extreme (a detection when either passes ``threshold``, as ``mode`` says)."""

    @property
    def test_increase(self) -> np.ndarray: ...

    @property
    def test_decrease(self) -> np.ndarray: ...
