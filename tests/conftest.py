import os
import shutil
import tempfile

import jax
import numpy as np
import pytest

from facerecon_jax.models import grid_model, ict_model

# One XLA compilation cache for this test session, shared by the tests and the tools they launch
# as subprocesses (they inherit the environment): programs compiled by an earlier test or launch
# are read back instead of compiled again. It lives only as long as the session, so every run
# starts from nothing.
_CACHE = tempfile.mkdtemp(prefix="facerecon-tests-xla-")
os.environ["JAX_COMPILATION_CACHE_DIR"] = _CACHE
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0.2"
jax.config.update("jax_compilation_cache_dir", _CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)


def pytest_unconfigure(config):
    shutil.rmtree(_CACHE, ignore_errors=True)


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
