"""driftsentinel's functional core: batch drift-detector kernels and feature sketches.

No I/O, no clock: the same input batches always give the same signals and state.
"""

from driftsentinel.detectors.adwin import ADWIN
from driftsentinel.detectors.page_hinkley import PageHinkley
from driftsentinel.detectors.river_backend import RiverADWIN, RiverPageHinkley
from driftsentinel.detectors.sketches import FeatureSketch

__all__ = ["ADWIN", "PageHinkley", "FeatureSketch", "RiverADWIN", "RiverPageHinkley"]
