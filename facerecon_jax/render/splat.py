"""Soft compositing with silhouette gradients: rasterize, then splat (docs/design.md §6.3).

The hard path has no gradient at silhouettes: which triangle covers a pixel does not change
smoothly. Here every covered pixel's surface point is re-derived from the moving vertices with
its barycentrics held fixed, projected, and splatted onto the 3 x 3 pixels around it with a
Gaussian of `sigma` pixels. A point that moves moves its splat, so coverage at the silhouette
(the accumulated weight) changes smoothly with the vertices. Splatting is done with shifted
adds, no scatter, and touches a fixed window, so the cost is 9 x pixels.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from facerecon_jax.render.interpolate import PixelTriangles, gather_corners


def _shift(a, dy, dx):
    """out[y, x] = a[y - dy, x - dx] (zero outside), for (B, H, W, C)."""
    h, w = a.shape[1], a.shape[2]
    p = jnp.pad(a, ((0, 0), (1, 1), (1, 1), (0, 0)))
    return p[:, 1 - dy:1 - dy + h, 1 - dx:1 - dx + w, :]


def splat(screen, pix: PixelTriangles, colour, sigma: float = 0.5):
    """Splat per-pixel colours (B, H, W, C) from their surface points.

    Returns (premultiplied colour (B, H, W, C), coverage weight (B, H, W)), normalised so that an
    interior pixel gets weight ~1.
    """
    b, h, w = pix.mask.shape
    # The splat centre: the pixel's point on its triangle, from screen-space barycentrics held
    # fixed and the moving projected corners (equal to the pixel centre in the forward pass).
    corners_xy = gather_corners(screen[..., :2], pix.corners)           # (B, H, W, 3, 2)
    sb = jax.lax.stop_gradient(pix.screen_bary)
    sx = jnp.sum(sb * corners_xy[..., 0], axis=-1)
    sy = jnp.sum(sb * corners_xy[..., 1], axis=-1)
    py, px = jnp.meshgrid(jnp.arange(h, dtype=screen.dtype), jnp.arange(w, dtype=screen.dtype),
                          indexing="ij")
    norm = (sum(math.exp(-d * d / (2 * sigma * sigma)) for d in (-1, 0, 1))) ** 2
    m = pix.mask.astype(colour.dtype)
    acc_c = jnp.zeros_like(colour)
    acc_w = jnp.zeros((b, h, w, 1), colour.dtype)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            # Weight of the splat from pixel p onto q = p + (dx, dy).
            qx, qy = px + dx, py + dy
            d2 = (qx - sx) ** 2 + (qy - sy) ** 2
            wt = (m * jnp.exp(-d2 / (2 * sigma * sigma)) / norm)[..., None]
            acc_c = acc_c + _shift(wt * colour, dy, dx)
            acc_w = acc_w + _shift(wt, dy, dx)
    return acc_c / jnp.maximum(acc_w, 1.0), jnp.clip(acc_w[..., 0], 0.0, 1.0)
