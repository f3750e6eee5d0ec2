"""driftsentinel's functional core: batch drift-detector kernels and feature sketches.

Every change detector implements :class:`ChangeDetector` (``detectors/protocol.py``);
:func:`change_detector` (``detectors/backends.py``) picks the kernel or river class.

No I/O, no clock: the same input batches always give the same signals and state.
"""

from driftsentinel.detectors.adwin import ADWIN
from driftsentinel.detectors.backends import change_detector
from driftsentinel.detectors.page_hinkley import PageHinkley
from driftsentinel.detectors.protocol import ChangeDetector
from driftsentinel.detectors.river_backend import RiverADWIN, RiverPageHinkley
from driftsentinel.detectors.sketches import FeatureSketch

__all__ = [
    "ADWIN",
    "ChangeDetector",
    "FeatureSketch",
    "PageHinkley",
    "RiverADWIN",
    "RiverPageHinkley",
    "change_detector",
]
