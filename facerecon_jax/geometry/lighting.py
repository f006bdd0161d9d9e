"""Spherical-harmonics Lambertian shading, 3 bands (docs/design.md §5).

C_i = t_i * sum_b gamma_b Y_b(n_i), with an ambient offset of 0.8 added to gamma_0 of every
channel so that zero coefficients give an evenly lit face.
"""
from __future__ import annotations

import math

import jax.numpy as jnp

AMBIENT = 0.8
_A = (math.pi, 2 * math.pi / math.sqrt(3.0), 2 * math.pi / math.sqrt(8.0))
_C = (1 / math.sqrt(4 * math.pi), math.sqrt(3.0) / math.sqrt(4 * math.pi),
      3 * math.sqrt(5.0) / math.sqrt(12 * math.pi))


def sh_basis(normals):
    """(..., 3) unit normals -> (..., 9) SH basis values Y_b(n), constants folded in."""
    nx, ny, nz = normals[..., 0], normals[..., 1], normals[..., 2]
    a0c0, a1c1, a2c2 = _A[0] * _C[0], _A[1] * _C[1], _A[2] * _C[2]
    return jnp.stack([
        jnp.full_like(nx, a0c0),
        -a1c1 * ny,
        a1c1 * nz,
        -a1c1 * nx,
        a2c2 * nx * ny,
        -a2c2 * ny * nz,
        a2c2 / (2 * math.sqrt(3.0)) * (3 * nz * nz - 1),
        -a2c2 * nx * nz,
        a2c2 / 2 * (nx * nx - ny * ny),
    ], axis=-1)


# the bands of `sh_basis` odd in n_x (-n_x, n_x n_y, -n_x n_z): they change sign when the scene
# is mirrored left-right (x -> -x), the others keep it
X_ODD_BANDS = (3, 4, 7)


def gamma_per_channel(gamma):
    """(..., 9) mono or (..., 27) channel-major RGB -> (..., 3, 9) with the ambient offset."""
    n = gamma.shape[-1]
    if n == 9:
        g = jnp.broadcast_to(gamma[..., None, :], gamma.shape[:-1] + (3, 9))
    elif n == 27:
        g = gamma.reshape(gamma.shape[:-1] + (3, 9))
    else:
        raise ValueError(f"gamma must have 9 (mono) or 27 (rgb) entries, got {n}")
    return g.at[..., 0].add(AMBIENT)


def irradiance(normals, gamma):
    """(..., V, 3) normals, (..., 9|27) gamma -> (..., V, 3) per-channel shading."""
    y = sh_basis(normals)                       # (..., V, 9)
    g = gamma_per_channel(gamma)                # (..., 3, 9)
    return jnp.einsum("...vb,...cb->...vc", y, g)


def shade(albedo, normals, gamma):
    """Lit vertex colours C = albedo * irradiance (not clipped)."""
    return albedo * irradiance(normals, gamma)
