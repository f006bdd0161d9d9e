"""One face from several images of a person: jax-native k-means and the aggregation modes.

  kmeans         jax-native k-means (vmapped restarts)
  aggregate      multi-image aggregation (paper mode, per person, baselines)

Imports from: io, geometry.
"""
