import numpy as np
import pytest

from facerecon_jax.models import grid_model, ict_model


@pytest.fixture(scope="session")
def default_model():
    """The default (ICT) face model, converted from ../shared/assets (cached)."""
    return ict_model.load_default()


@pytest.fixture(scope="session")
def small_grid():
    return grid_model.grid_model(24, n_id=6, n_exp=4, n_tex=5)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
