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


def shape_gram(model: FaceModel, expression: bool = True):
    """(K, K) Gram matrix G of the shape basis in mm^2 per vertex, K = n_id (+ n_exp with
    `expression`): for a coefficient offset d = (alpha, beta) (K,), the mean over the vertices
    of the squared distance (mm^2) that `shape` moves a vertex by is d^T G d (the shape is
    linear in the coefficients), so a per-vertex shape error costs K^2 operations, not V K."""
    v = model.n_vertices
    basis = model.id_basis.reshape(model.n_id, v * 3)
    if expression:
        basis = jnp.concatenate([basis, model.exp_basis.reshape(model.n_exp, v * 3)], 0)
    basis = jnp.asarray(basis, jnp.float32) * 100.0                             # dm -> mm
    return jnp.matmul(basis, basis.T, precision="highest") / v


def albedo(model: FaceModel, tex_coeffs):
    """T = T_mean + B_tex delta, (..., V, 3) RGB in [0, 1] (not clipped)."""
    return _linear(model.mean_albedo, model.tex_basis, tex_coeffs)


def _vertex_major(vertices):
    """(..., V, 3) -> (V, N, 3), N the product of the leading dimensions (1 if none).

    Gathers by vertex and triangle index then move whole contiguous rows (all of a batch's
    faces at once), and their gradients scatter-add whole rows: on a CPU the gradient of the
    normals takes about half the time it takes in the batch-major layout
    (`benchmarks/vertex_normals.py`)."""
    v = vertices.shape[-2]
    return jnp.moveaxis(jnp.reshape(vertices, (-1, v, 3)), 1, 0)


def _batch_major(values, lead):
    """(K, N, 3) -> lead + (K, 3): the inverse of `_vertex_major`."""
    return jnp.reshape(jnp.moveaxis(values, 0, 1), tuple(lead) + (values.shape[0], 3))


def _face_normals_vm(vm, triangles, area_weighted: bool):
    """Face normals of vertex-major vertices (V, N, 3) -> (T, N, 3)."""
    c = vm[jnp.asarray(triangles)]                                      # (T, 3, N, 3)
    n = jnp.cross(c[:, 1] - c[:, 0], c[:, 2] - c[:, 0])
    if area_weighted:
        return n
    return n / jnp.sqrt(jnp.sum(n * n, axis=-1, keepdims=True) + 1e-20)


def face_normals(vertices, triangles, *, area_weighted: bool = False):
    """Normals of each triangle, (..., T, 3): unit length, or length = 2 x area."""
    fn = _face_normals_vm(_vertex_major(vertices), triangles, area_weighted)
    return _batch_major(fn, vertices.shape[:-2])


def vertex_normals(vertices, triangles, vertex_faces, *, area_weighted: bool = False):
    """Unit vertex normals, (..., V, 3): face normals summed over each vertex's faces.

    `vertex_faces` is the fixed-width (V, K) table of face indices padded with T, which points
    at an appended zero normal, so the shape never depends on the data.
    """
    fn = _face_normals_vm(_vertex_major(vertices), triangles, area_weighted)   # (T, N, 3)
    fn = jnp.concatenate([fn, jnp.zeros((1,) + fn.shape[1:], fn.dtype)], axis=0)
    vn = jnp.sum(fn[jnp.asarray(vertex_faces)], axis=1)                        # (V, N, 3)
    vn = vn / jnp.sqrt(jnp.sum(vn * vn, axis=-1, keepdims=True) + 1e-20)
    return _batch_major(vn, vertices.shape[:-2])
