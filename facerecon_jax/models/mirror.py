"""Left-right mirror images of faces: vertex partners and coefficients.

Face models are centred and near-symmetric about the plane x = 0 (the default model's mean
shape is). A vertex's partner is the vertex nearest to its reflection (x -> -x); the distance
left over says how symmetric the mesh is there. A face's mirror image is another face of the
model: `coefficient_mirror` finds the maps from a face's coefficients to its mirror image's
(`geometry.mirror_image.mirror_coefficients` applies them with the pose and the light, so that
what a picture flipped left-right shows can be read back as the face in the picture itself).
"""
from __future__ import annotations

import dataclasses
import functools

import jax
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


@functools.partial(jax.tree_util.register_dataclass,
                   data_fields=["id_map", "id_offset", "exp_map", "tex_map", "tex_offset"],
                   meta_fields=["residual"])
@dataclasses.dataclass(frozen=True)
class CoefficientMirror:
    """The coefficients of a face's mirror image (x -> -x, each vertex moved to its partner's
    place) as affine maps of the face's own: id' = id_offset + id @ id_map, exp' = exp @
    exp_map, tex' = tex_offset + tex @ tex_map (row vectors). Least squares over the mesh, so
    exact where the mean shape and the bases are symmetric and as near as they allow elsewhere;
    `residual` is the relative error of the identity map over its basis (0 for a symmetric
    model). Built by `coefficient_mirror`."""
    id_map: np.ndarray
    id_offset: np.ndarray
    exp_map: np.ndarray
    tex_map: np.ndarray
    tex_offset: np.ndarray
    residual: float


def _reflect_map(basis, mirrored, offset=None):
    """(map, offset, relative residual) with mirrored ~ offset + map-weighted basis rows:
    basis, mirrored (K, V, 3); offset (V, 3) or None."""
    b = basis.reshape(len(basis), -1)
    pinv = np.linalg.pinv(b)
    m = mirrored.reshape(len(mirrored), -1) @ pinv
    res = np.linalg.norm(mirrored.reshape(len(b), -1) - m @ b) / max(np.linalg.norm(b), 1e-12)
    off = None if offset is None else offset.reshape(-1) @ pinv
    return m, off, float(res)


def coefficient_mirror(model) -> CoefficientMirror:
    """The `CoefficientMirror` of a face model (FaceModel, numpy or jax arrays): vertex partners
    on the mean shape (`mirror_partners`), shape deltas reflected (x -> -x) and moved to the
    partner, albedo deltas moved to the partner; the mean's own asymmetry goes into the
    identity's (shape) and texture's (albedo) offsets."""
    flip = np.array([-1.0, 1.0, 1.0])
    mean = np.asarray(model.mean_shape, np.float64)
    partner, _ = mirror_partners(mean)
    ids = np.asarray(model.id_basis, np.float64)
    id_map, id_off, res = _reflect_map(ids, ids[:, partner] * flip, mean[partner] * flip - mean)
    exps = np.asarray(model.exp_basis, np.float64)
    exp_map, _, _ = _reflect_map(exps, exps[:, partner] * flip)
    tex = np.asarray(model.tex_basis, np.float64)
    albedo = np.asarray(model.mean_albedo, np.float64)
    tex_map, tex_off, _ = _reflect_map(tex, tex[:, partner], albedo[partner] - albedo)
    f32 = lambda a: a.astype(np.float32)  # noqa: E731
    return CoefficientMirror(f32(id_map), f32(id_off), f32(exp_map), f32(tex_map), f32(tex_off),
                             res)
