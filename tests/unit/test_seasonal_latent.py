"""The seasonal simulator's latent dependence solved by bisection (detectors/seasonal.py)."""

from __future__ import annotations

import numpy as np
import pytest

from driftsentinel.detectors.seasonal import lag1_autocorrelation, latent_weight, simulate_dependent


@pytest.mark.parametrize("weight", [0.3, 0.7, 1.0])
def test_latent_weight_recovers_the_simulated_weight(weight: float) -> None:
    """The weight solved by bisection is the one the values were simulated with (counts:
    the latent series is seen through steps), and a weight beyond reach is 1."""
    q = np.round(np.quantile(np.random.default_rng(4).poisson(3, 50_000), np.linspace(0, 1, 101)))
    x = simulate_dependent(q, 0.9, 400_000, np.random.default_rng(5), weight)
    w = latent_weight(0.9, lag1_autocorrelation(x), q, np.random.default_rng(6), n=100_000)
    assert w == pytest.approx(weight, abs=0.03)
    assert latent_weight(0.5, 0.8, q, np.random.default_rng(6), n=20_000) == 1.0
