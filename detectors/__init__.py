"""driftsentinel's functional core: batch drift-detector kernels and feature sketches.

No I/O, no clock: the same input batches always give the same signals and state.
"""

from detectors.adwin import ADWIN
from detectors.page_hinkley import PageHinkley
from detectors.river_backend import RiverADWIN, RiverPageHinkley
from detectors.sketches import FeatureSketch

__all__ = ["ADWIN", "PageHinkley", "FeatureSketch", "RiverADWIN", "RiverPageHinkley"]
