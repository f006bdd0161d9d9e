"""Timing shared by the benchmark scripts: compile and warm up once, then the median of runs."""
import time

import jax
import numpy as np


def median_seconds(f, *args, repeats: int = 5) -> float:
    """Median wall time of f(*args) after one warm-up call (which also compiles)."""
    jax.block_until_ready(f(*args))
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(f(*args))
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))
