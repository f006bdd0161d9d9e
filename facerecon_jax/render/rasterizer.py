"""Visibility: which triangle is seen at each pixel (docs/design.md §6, stage 2).

Nothing here is differentiated: the result is an integer triangle id per pixel, from which
`interpolate` recomputes barycentrics differentiably. Memory grows with triangles plus pixels,
never with their product.

Conventions: vertices come in screen space, (x_img, y_img, z_cam) with pixel centres at integer
coordinates (`camera.to_screen`). A pixel is covered when its centre lies inside the triangle or
on its edge (either winding; no culling unless a triangle mask says so). The nearest surface wins:
each covered (pixel, triangle) candidate gets an int32 key, the perspective-correct depth
quantised to the bits the triangle id leaves free, then the id; the smallest key wins, so ties
in quantised depth go to the lower triangle id. Both back ends compute the same keys and take
the same minimum, so they agree exactly.

Back ends behind `rasterize(..., backend=)`:
  "scatter": every triangle is cut into jobs of `window` x `window` pixels of its bounding box
             (one job for a typical ~1 px face triangle, as many as it needs for a large one), and
             the candidates of each job are scatter-min'ed into a z-buffer. Jobs run in fixed
             chunks inside a while_loop, so any triangle size is exact, with no holes.
  "tiled":   no scatter, for TPU. The image is cut into `tile` x `tile` tiles; triangles whose
             bounding box spans at most 2 x 2 tiles are binned by sorting (triangle, tile) pairs,
             and each tile tests its bin in rounds of `tile_capacity` triangles with a min
             reduction; triangles larger than that are drawn against the whole image in rounds of
             `large_capacity`. Rounds run until every bin is done, so nothing is dropped.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

BACKGROUND_KEY = np.int32(np.iinfo(np.int32).max)
NEAR = 1e-3


class Fragments(NamedTuple):
    tri_id: jnp.ndarray        # (B, H, W) int32, -1 where no triangle is seen
    n_large: jnp.ndarray       # (B,) int32 triangles larger than the back end's fast path


def id_bits(n_triangles: int) -> int:
    return max(1, int(n_triangles).bit_length())


def _edge(ax, ay, bx, by, px, py):
    return (bx - ax) * (py - ay) - (by - ay) * (px - ax)


class _TriSetup(NamedTuple):
    x0: jnp.ndarray
    y0: jnp.ndarray
    x1: jnp.ndarray
    y1: jnp.ndarray
    x2: jnp.ndarray
    y2: jnp.ndarray
    iz0: jnp.ndarray   # 1 / z_cam of each corner
    iz1: jnp.ndarray
    iz2: jnp.ndarray
    inv_area: jnp.ndarray
    zlo: jnp.ndarray   # depth range of the image the triangle belongs to (for quantisation)
    zscale: jnp.ndarray
    c_lo: jnp.ndarray  # pixel-centre bounding box, clipped to the image (int32)
    c_hi: jnp.ndarray
    r_lo: jnp.ndarray
    r_hi: jnp.ndarray
    valid: jnp.ndarray


def _setup(screen, triangles, height, width, tri_mask):
    """Per-triangle quantities, (B, T) each."""
    v = screen[:, triangles, :]                      # (B, T, 3, 3)
    x, y, z = v[..., 0], v[..., 1], v[..., 2]        # (B, T, 3)
    area = _edge(x[..., 0], y[..., 0], x[..., 1], y[..., 1], x[..., 2], y[..., 2])
    finite = jnp.all(jnp.isfinite(v), axis=(-1, -2))
    valid = finite & (jnp.abs(area) > 1e-12) & jnp.all(z > NEAR, axis=-1)
    if tri_mask is not None:
        valid = valid & tri_mask
    xmin, xmax = jnp.min(x, -1), jnp.max(x, -1)
    ymin, ymax = jnp.min(y, -1), jnp.max(y, -1)
    big = 1e6
    c_lo = jnp.clip(jnp.ceil(jnp.clip(xmin, -big, big)), 0, width).astype(jnp.int32)
    c_hi = jnp.clip(jnp.floor(jnp.clip(xmax, -big, big)), -1, width - 1).astype(jnp.int32)
    r_lo = jnp.clip(jnp.ceil(jnp.clip(ymin, -big, big)), 0, height).astype(jnp.int32)
    r_hi = jnp.clip(jnp.floor(jnp.clip(ymax, -big, big)), -1, height - 1).astype(jnp.int32)
    valid = valid & (c_hi >= c_lo) & (r_hi >= r_lo)
    zs = jnp.where(valid[..., None], z, jnp.nan)
    zlo = jnp.nan_to_num(jnp.nanmin(zs, axis=(-1, -2)), nan=1.0)
    zhi = jnp.nan_to_num(jnp.nanmax(zs, axis=(-1, -2)), nan=2.0)
    zscale = 1.0 / jnp.maximum(zhi - zlo, 1e-6)
    safe_z = jnp.where(valid[..., None], z, 1.0)
    t = triangles.shape[0]
    return _TriSetup(
        x[..., 0], y[..., 0], x[..., 1], y[..., 1], x[..., 2], y[..., 2],
        1.0 / safe_z[..., 0], 1.0 / safe_z[..., 1], 1.0 / safe_z[..., 2],
        jnp.where(valid, 1.0 / jnp.where(valid, area, 1.0), 0.0),
        jnp.broadcast_to(zlo[:, None], (screen.shape[0], t)),
        jnp.broadcast_to(zscale[:, None], (screen.shape[0], t)),
        c_lo, c_hi, r_lo, r_hi, valid)


def _candidate_keys(s: _TriSetup, tri_index, px, py, inside_box, depth_bits, n_id_bits):
    """Keys of candidates (pixel centre px, py against triangle quantities s). Broadcasts."""
    w0 = _edge(s.x1, s.y1, s.x2, s.y2, px, py) * s.inv_area
    w1 = _edge(s.x2, s.y2, s.x0, s.y0, px, py) * s.inv_area
    w2 = _edge(s.x0, s.y0, s.x1, s.y1, px, py) * s.inv_area
    inside = (w0 >= 0) & (w1 >= 0) & (w2 >= 0) & inside_box & s.valid
    inv_z = w0 * s.iz0 + w1 * s.iz1 + w2 * s.iz2
    depth = 1.0 / jnp.where(inside, inv_z, 1.0)
    levels = (1 << depth_bits) - 1
    q = jnp.clip(jnp.floor((depth - s.zlo) * s.zscale * levels), 0, levels).astype(jnp.int32)
    q = jnp.minimum(q, levels)     # float32(levels) may round up past the integer range
    key = (q << n_id_bits) | tri_index
    return jnp.where(inside, key, BACKGROUND_KEY)


def _keys_to_ids(keys, n_id_bits):
    mask = (1 << n_id_bits) - 1
    return jnp.where(keys == BACKGROUND_KEY, -1, keys & mask).astype(jnp.int32)


def _gather(s: _TriSetup, idx):
    return _TriSetup(*[a.reshape(-1)[idx] for a in s])


# ----------------------------------------------------------------------------- scatter back end

def _rasterize_scatter(s: _TriSetup, n_tri, height, width, window, chunk):
    b = s.x0.shape[0]
    nb = id_bits(n_tri)
    depth_bits = 31 - nb
    nx = jnp.maximum(s.c_hi - s.c_lo + 1, 0)
    ny = jnp.maximum(s.r_hi - s.r_lo + 1, 0)
    jobs_x = (nx + window - 1) // window
    jobs_y = (ny + window - 1) // window
    n_jobs = jnp.where(s.valid, jobs_x * jobs_y, 0).reshape(-1)
    jobs_x = jobs_x.reshape(-1)
    cum = jnp.cumsum(n_jobs)
    start = cum - n_jobs
    total = cum[-1]
    g_all = jnp.arange(n_jobs.shape[0], dtype=jnp.int32)
    dy, dx = jnp.meshgrid(jnp.arange(window, dtype=jnp.int32), jnp.arange(window, dtype=jnp.int32),
                          indexing="ij")
    dy, dx = dy.reshape(-1), dx.reshape(-1)
    n_pix = b * height * width

    def body(carry):
        c, zbuf = carry
        base = c * chunk
        pos = start - base
        first = (n_jobs > 0) & (pos >= 0) & (pos < chunk)
        owner = jnp.zeros((chunk,), jnp.int32).at[jnp.where(first, pos, chunk)].max(
            g_all, mode="drop")
        before = jnp.searchsorted(cum, base, side="right").astype(jnp.int32)
        owner = owner.at[0].max(before)
        owner = jax.lax.cummax(owner)
        owner = jnp.minimum(owner, n_jobs.shape[0] - 1)
        job = base + jnp.arange(chunk, dtype=jnp.int32)
        live = job < total
        t = _gather(s, owner)
        local = job - start[owner]
        jx = jnp.maximum(jobs_x[owner], 1)
        col0 = t.c_lo + (local % jx) * window
        row0 = t.r_lo + (local // jx) * window
        t = _TriSetup(*[a[:, None] for a in t])
        col = col0[:, None] + dx[None, :]
        row = row0[:, None] + dy[None, :]
        in_box = (col <= t.c_hi) & (row <= t.r_hi) & live[:, None]
        tri_index = (owner % n_tri)[:, None]
        keys = _candidate_keys(t, tri_index, col.astype(jnp.float32), row.astype(jnp.float32),
                               in_box, depth_bits, nb)
        image = (owner // n_tri)[:, None]
        flat = jnp.where(keys != BACKGROUND_KEY, (image * height + row) * width + col, n_pix)
        zbuf = zbuf.at[flat.reshape(-1)].min(keys.reshape(-1), mode="drop")
        return c + 1, zbuf

    zbuf = jnp.full((n_pix,), BACKGROUND_KEY, jnp.int32)
    _, zbuf = jax.lax.while_loop(lambda cz: cz[0] * chunk < total, body, (jnp.int32(0), zbuf))
    ids = _keys_to_ids(zbuf, nb).reshape(b, height, width)
    large = jnp.sum((jobs_x.reshape(b, -1) * jobs_y.reshape(b, -1) > 1) & s.valid, axis=-1)
    return Fragments(ids, large.astype(jnp.int32))


# ------------------------------------------------------------------------------- tiled back end

def _rasterize_tiled_one(s: _TriSetup, n_tri, height, width, tile, capacity, large_capacity):
    """One image (arrays of s are (T,)); no scatter anywhere."""
    nb = id_bits(n_tri)
    depth_bits = 31 - nb
    ntx, nty = -(-width // tile), -(-height // tile)
    n_tiles = ntx * nty
    tri_index = jnp.arange(n_tri, dtype=jnp.int32)
    tx_lo, tx_hi = s.c_lo // tile, s.c_hi // tile
    ty_lo, ty_hi = s.r_lo // tile, s.r_hi // tile
    small = s.valid & (tx_hi - tx_lo <= 1) & (ty_hi - ty_lo <= 1)
    large = s.valid & ~small

    # Bin small triangles: 4 (triangle, tile) slots each, sorted by tile.
    slot_tx = tx_lo[:, None] + jnp.array([0, 1, 0, 1])[None, :]
    slot_ty = ty_lo[:, None] + jnp.array([0, 0, 1, 1])[None, :]
    slot_ok = small[:, None] & (slot_tx <= tx_hi[:, None]) & (slot_ty <= ty_hi[:, None])
    slot_tile = jnp.where(slot_ok, slot_ty * ntx + slot_tx, n_tiles).reshape(-1)
    slot_tri = jnp.broadcast_to(tri_index[:, None], (n_tri, 4)).reshape(-1)
    sorted_tile, sorted_tri = jax.lax.sort((slot_tile, slot_tri), num_keys=1)
    tiles = jnp.arange(n_tiles, dtype=jnp.int32)
    bin_start = jnp.searchsorted(sorted_tile, tiles, side="left", method="sort").astype(jnp.int32)
    bin_end = jnp.searchsorted(sorted_tile, tiles, side="right", method="sort").astype(jnp.int32)
    n_rounds = -(-jnp.max(bin_end - bin_start) // capacity)

    py_in, px_in = jnp.meshgrid(jnp.arange(tile), jnp.arange(tile), indexing="ij")
    px = ((tiles % ntx)[:, None] * tile + px_in.reshape(-1)[None, :])      # (n_tiles, tile^2)
    py = ((tiles // ntx)[:, None] * tile + py_in.reshape(-1)[None, :])
    pix_ok = (px < width) & (py < height)
    pxf, pyf = px.astype(jnp.float32)[:, None, :], py.astype(jnp.float32)[:, None, :]

    def bin_round(r, best):
        entry = bin_start[:, None] + r * capacity + jnp.arange(capacity)[None, :]  # (nt, cap)
        ok = entry < bin_end[:, None]
        tri = sorted_tri[jnp.minimum(entry, sorted_tri.shape[0] - 1)]
        t = _TriSetup(*[a[tri][..., None] for a in s])
        keys = _candidate_keys(t, tri[..., None], pxf, pyf, ok[..., None] & pix_ok[:, None, :],
                               depth_bits, nb)
        return jnp.minimum(best, jnp.min(keys, axis=1))

    best = jnp.full((n_tiles, tile * tile), BACKGROUND_KEY, jnp.int32)
    best = jax.lax.fori_loop(0, n_rounds, bin_round, best)
    # Tiles back to an image.
    img = best.reshape(nty, ntx, tile, tile).transpose(0, 2, 1, 3).reshape(nty * tile, ntx * tile)
    img = img[:height, :width].reshape(-1)

    # Large triangles against the whole image, `large_capacity` at a time.
    n_large = jnp.sum(large).astype(jnp.int32)
    order = jnp.argsort(~large, stable=True).astype(jnp.int32)   # large ones first
    all_y, all_x = jnp.meshgrid(jnp.arange(height, dtype=jnp.float32),
                                jnp.arange(width, dtype=jnp.float32), indexing="ij")
    all_x, all_y = all_x.reshape(1, -1), all_y.reshape(1, -1)

    def large_round(r, best):
        k = r * large_capacity + jnp.arange(large_capacity)
        ok = k < n_large
        tri = order[jnp.minimum(k, n_tri - 1)]
        t = _TriSetup(*[a[tri][:, None] for a in s])
        in_box = (ok[:, None] & (all_x >= t.c_lo) & (all_x <= t.c_hi)
                  & (all_y >= t.r_lo) & (all_y <= t.r_hi))
        keys = _candidate_keys(t, tri[:, None], all_x, all_y, in_box, depth_bits, nb)
        return jnp.minimum(best, jnp.min(keys, axis=0))

    img = jax.lax.fori_loop(0, -(-n_large // large_capacity), large_round, img)
    return _keys_to_ids(img, nb).reshape(height, width), n_large


# ------------------------------------------------------------------------------------ front door

@functools.partial(jax.jit, static_argnames=("height", "width", "backend", "window", "chunk",
                                              "tile", "tile_capacity", "large_capacity"))
def rasterize(screen, triangles, *, height: int, width: int, tri_mask=None,
              backend: str = "scatter", window: int = 3, chunk: int = 1 << 15, tile: int = 16,
              tile_capacity: int = 64, large_capacity: int = 8) -> Fragments:
    """Triangle id per pixel.

    Args:
      screen: (B, V, 3) or (V, 3) vertices as (x_img, y_img, z_cam); not differentiated.
      triangles: (T, 3) int32.
      tri_mask: optional (T,) or (B, T) bool, triangles that may be drawn.
    Returns Fragments(tri_id (B, H, W) int32 with -1 for background, n_large (B,) the number of
    triangles that needed more than the fast path (several scatter jobs / no 2 x 2 tile bin)).
    """
    screen = jax.lax.stop_gradient(jnp.asarray(screen, jnp.float32))
    squeeze = screen.ndim == 2
    if squeeze:
        screen = screen[None]
    triangles = jnp.asarray(triangles, jnp.int32)
    n_tri = triangles.shape[0]
    if id_bits(n_tri) > 24:
        raise ValueError(f"{n_tri} triangles leave too few bits for depth in a 32-bit key")
    if tri_mask is not None:
        tri_mask = jnp.broadcast_to(jnp.asarray(tri_mask, bool), screen.shape[:1] + (n_tri,))
    s = _setup(screen, triangles, height, width, tri_mask)
    if backend == "scatter":
        frags = _rasterize_scatter(s, n_tri, height, width, window, chunk)
    elif backend == "tiled":
        ids, large = jax.vmap(lambda one: _rasterize_tiled_one(
            one, n_tri, height, width, tile, tile_capacity, large_capacity))(s)
        frags = Fragments(ids, large)
    else:
        raise ValueError(f"unknown rasterizer backend {backend!r}: use 'scatter' or 'tiled'")
    if squeeze:
        frags = Fragments(frags.tri_id[0], frags.n_large[0])
    return frags


def rasterize_reference(screen, triangles, height: int, width: int) -> np.ndarray:
    """Brute force in numpy: every pixel against every triangle, exact float depth.

    For tests on small meshes only (memory is pixels x triangles). Same coverage rule as
    `rasterize`; the nearest depth wins. Returns (H, W) ids and (H, W) depth (inf = none).
    """
    screen = np.asarray(screen, np.float64)
    tri = np.asarray(triangles)
    v = screen[tri]                                   # (T, 3, 3)
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    area = _edge(x[:, 0], y[:, 0], x[:, 1], y[:, 1], x[:, 2], y[:, 2])
    ok = (np.abs(area) > 1e-12) & np.all(z > NEAR, -1)
    py, px = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    px, py = px.reshape(-1, 1).astype(np.float64), py.reshape(-1, 1).astype(np.float64)
    inv_area = np.where(ok, 1.0 / np.where(ok, area, 1.0), 0.0)
    w0 = _edge(x[:, 1], y[:, 1], x[:, 2], y[:, 2], px, py) * inv_area
    w1 = _edge(x[:, 2], y[:, 2], x[:, 0], y[:, 0], px, py) * inv_area
    w2 = _edge(x[:, 0], y[:, 0], x[:, 1], y[:, 1], px, py) * inv_area
    inside = (w0 >= 0) & (w1 >= 0) & (w2 >= 0) & ok
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = 1.0 / (w0 / z[:, 0] + w1 / z[:, 1] + w2 / z[:, 2])
    depth = np.where(inside, depth, np.inf)
    ids = np.argmin(depth, axis=1)
    best = depth[np.arange(len(ids)), ids]
    ids = np.where(np.isfinite(best), ids, -1)
    return ids.reshape(height, width), best.reshape(height, width)
