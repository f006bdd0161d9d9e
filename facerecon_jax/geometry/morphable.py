"""The 3D morphable model: shape and albedo from coefficients, and vertex normals.

All functions are pure, jittable and batched over leading dimensions of the coefficients.
"""
from __future__ import annotations

import jax.numpy as jnp

from facerecon_jax.models.face_model import FaceModel


def _linear(mean, basis, coeffs):
    n, v, _ = basis.shape
    flat = coeffs @ basis.reshape(n, v * 3)
    return mean + flat.reshape(coeffs.shape[:-1] + (v, 3))


def shape(model: FaceModel, id_coeffs, exp_coeffs):
    """S = S_mean + B_id alpha + B_exp beta, (..., V, 3) in decimetres."""
    n_id, n_exp = model.n_id, model.n_exp
    v = model.n_vertices
    flat = (id_coeffs[..., :n_id] @ model.id_basis.reshape(n_id, v * 3)
            + exp_coeffs[..., :n_exp] @ model.exp_basis.reshape(n_exp, v * 3))
    return model.mean_shape + flat.reshape(flat.shape[:-1] + (v, 3))

def albedo(model: FaceModel, tex_coeffs):
    """T = T_mean + B_tex delta, (..., V, 3) RGB in [0, 1] (not clipped)."""
    return _linear(model.mean_albedo, model.tex_basis, tex_coeffs)


def face_normals(vertices, triangles, *, area_weighted: bool = False):
    """Normals of each triangle, (..., T, 3): unit length, or length = 2 x area."""
    v0 = vertices[..., triangles[:, 0], :]
    v1 = vertices[..., triangles[:, 1], :]
    v2 = vertices[..., triangles[:, 2], :]
    n = jnp.cross(v1 - v0, v2 - v0)
    if area_weighted:
        return n
    return n / jnp.sqrt(jnp.sum(n * n, axis=-1, keepdims=True) + 1e-20)


def vertex_normals(vertices, triangles, vertex_faces, *, area_weighted: bool = False):
    """Unit vertex normals, (..., V, 3): face normals summed over each vertex's faces.

    `vertex_faces` is the fixed-width (V, K) table of face indices padded with T, which points
    at an appended zero normal, so the shape never depends on the data.
    """
    fn = face_normals(vertices, triangles, area_weighted=area_weighted)
    pad = jnp.zeros(fn.shape[:-2] + (1, 3), fn.dtype)
    fn = jnp.concatenate([fn, pad], axis=-2)
    vn = jnp.sum(fn[..., vertex_faces, :], axis=-2)
    return vn / jnp.sqrt(jnp.sum(vn * vn, axis=-1, keepdims=True) + 1e-20)
