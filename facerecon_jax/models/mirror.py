"""Left-right mirror partners of a face mesh's vertices.

Face models are centred and near-symmetric about the plane x = 0 (the default model's mean
shape is). A vertex's partner is the vertex nearest to its reflection (x -> -x); the distance
left over says how symmetric the mesh is there.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree


def mirror_partners(points, axis: int = 0):
    """(V, 3) points -> (partner (V,) int32, residual (V,) distance from each reflected point to
    its partner, in the points' units)."""
    p = np.asarray(points, np.float64)
    reflected = p.copy()
    reflected[:, axis] = -reflected[:, axis]
    dist, idx = cKDTree(p).query(reflected)
    return idx.astype(np.int32), dist
