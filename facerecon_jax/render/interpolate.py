"""Differentiable barycentrics and attribute interpolation (docs/design.md §6, stage 3).

Given the triangle id per pixel from `rasterizer` (held fixed), barycentric coordinates are
recomputed here from the projected vertices, so gradients flow to vertex positions and to every
per-vertex attribute. Screen-space barycentrics are made perspective-correct with the corners'
depths: b_i = (w_i / z_i) / sum_j (w_j / z_j).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class PixelTriangles(NamedTuple):
    corners: jnp.ndarray      # (B, H, W, 3) int32 vertex ids of the visible triangle (0 if none)
    mask: jnp.ndarray         # (B, H, W) bool, a triangle is seen
    bary: jnp.ndarray         # (B, H, W, 3) perspective-correct barycentrics (0 where no mask)
    screen_bary: jnp.ndarray  # (B, H, W, 3) screen-space barycentrics


def gather_corners(attrs, corners):
    """attrs (B, V, C), corners (B, H, W, 3) -> (B, H, W, 3, C)."""
    return jax.vmap(lambda a, c: a[c])(attrs, corners)


def barycentrics(screen, triangles, tri_id) -> PixelTriangles:
    """screen (B, V, 3) as (x_img, y_img, z_cam), tri_id (B, H, W) -> PixelTriangles."""
    b, h, w = tri_id.shape
    mask = tri_id >= 0
    corners = jnp.asarray(triangles)[jnp.maximum(tri_id, 0)]            # (B, H, W, 3)
    v = gather_corners(screen, corners)                                  # (B, H, W, 3, 3)
    py, px = jnp.meshgrid(jnp.arange(h, dtype=screen.dtype), jnp.arange(w, dtype=screen.dtype),
                          indexing="ij")
    x, y, z = v[..., 0], v[..., 1], v[..., 2]                            # (B, H, W, 3)

    def edge(i, j):
        return ((x[..., j] - x[..., i]) * (py - y[..., i])
                - (y[..., j] - y[..., i]) * (px - x[..., i]))

    e = jnp.stack([edge(1, 2), edge(2, 0), edge(0, 1)], axis=-1)
    area = jnp.sum(e, axis=-1, keepdims=True)
    area = jnp.where(mask[..., None] & (jnp.abs(area) > 0), area, 1.0)
    screen_bary = e / area
    safe_z = jnp.where(mask[..., None], z, 1.0)
    pw = screen_bary / safe_z
    m = mask[..., None]
    # where() alone would keep the forward pass finite but not the gradient: a zero denominator
    # in a pixel that is masked out still sends 0 * inf = NaN back, so make it safe first.
    denom = jnp.sum(pw, axis=-1, keepdims=True)
    denom = jnp.where(m & (jnp.abs(denom) > 1e-20), denom, 1.0)
    bary = pw / denom
    return PixelTriangles(corners, mask, jnp.where(m, bary, 0.0), jnp.where(m, screen_bary, 0.0))


def interpolate(attrs, pix: PixelTriangles):
    """Per-vertex attributes (B, V, C) -> per-pixel (B, H, W, C), zero where nothing is seen."""
    a = gather_corners(attrs, pix.corners)                               # (B, H, W, 3, C)
    return jnp.einsum("bhwk,bhwkc->bhwc", pix.bary, a)
