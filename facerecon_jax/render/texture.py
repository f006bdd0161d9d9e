"""Texture maps in a face model's UV layout: baked from a photo, filled, averaged, re-rendered.

A texel of an S x S map has its centre at u = (j + 0.5) / S, v = 1 - (i + 0.5) / S (row i, column
j; v up as in OBJ). `texel_map` finds, once per layout and size, the model triangle under each
texel centre and its barycentric weights (the UV triangles drawn by `rasterizer` as if they were
a screen; kept in `assets.cache_dir()` like the converted model), so any per-vertex or per-corner
quantity can be read at every texel.

Baking (`bake_photo`): each texel's surface point (the barycentric mix of the posed vertices) is
projected through the fitted camera into the aligned crop and from there, by the alignment's
inverse map, into the original photo, which is sampled bilinearly at full resolution. A texel
counts as seen when its point lies inside the crop and the photo, its normal faces the camera and
it passes a depth test against the fitted render's z-buffer (the surface drawn at its pixel is
its own, within a tolerance). The sample's weight fades to zero at grazing
angles and over `feather` texels towards unseen texels, so fills blend in without hard seams.
With the fitted spherical-harmonics irradiance given, the sample is divided by it (an albedo
texture); without, it is the photo's colour (light baked in).

Filling (`fill`): an unseen texel takes its mirror texel's sample (the texel whose surface point
is its reflection, through `mirror.mirror_partners`) when that one is seen, else the fallback
colour (the fitted albedo); weights blend the three.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
from typing import Optional

import cv2
import jax
import jax.numpy as jnp
import numpy as np

from facerecon_jax.io import assets, atomic_file
from facerecon_jax.geometry import camera as cam
from facerecon_jax.models import mirror
from facerecon_jax.render import interpolate, rasterizer
from facerecon_jax.models.uv_layout import UVLayout


@dataclasses.dataclass(frozen=True, eq=False)
class TexelMap:
    size: int
    tri: np.ndarray     # (S, S) int32 model triangle under each texel centre, -1 off the chart
    bary: np.ndarray    # (S, S, 3) float32 barycentric weights of that triangle's corners

    @property
    def chart(self) -> np.ndarray:
        return self.tri >= 0

    @functools.cached_property
    def texels(self):
        """(rows, columns, triangle (N,), barycentrics (N, 3)) of the N chart texels."""
        rows, cols = np.nonzero(self.tri >= 0)
        return rows, cols, self.tri[rows, cols], self.bary[rows, cols]

    def scatter(self, values) -> np.ndarray:
        """Values of the chart texels (N, C) -> (S, S, C), 0 off the chart."""
        rows, cols, _, _ = self.texels
        v = np.asarray(values)
        out = np.zeros((self.size, self.size) + v.shape[1:], v.dtype)
        out[rows, cols] = v
        return out


def uv_to_texel(uv, size: int) -> np.ndarray:
    """(..., 2) UV (v up) -> (..., 2) texel coordinates (x = column, y = row, centres at
    integers)."""
    uv = np.asarray(uv, np.float64)
    return np.stack([uv[..., 0] * size - 0.5, (1.0 - uv[..., 1]) * size - 0.5], axis=-1)


_TEXEL_MAPS: dict = {}
TEXEL_MAP_VERSION = 1      # part of the cache key: bump when texel maps are drawn differently


@functools.partial(jax.jit, static_argnames=("size",))
def _draw_flat(screen, triangles, size: int):
    tri = rasterizer.rasterize(screen, triangles, height=size, width=size, window=8).tri_id
    pix = interpolate.barycentrics(screen[None], triangles, tri[None])
    return tri, pix.bary[0]


def texel_map(layout: UVLayout, size: int, cache: bool = True) -> TexelMap:
    """The triangle and barycentrics under every texel centre of a `size` x `size` map (kept in
    memory, and on disk under `assets.cache_dir()` unless `cache` is False)."""
    key = (id(layout), size)
    if cache and key in _TEXEL_MAPS and _TEXEL_MAPS[key][0] is layout:
        return _TEXEL_MAPS[key][1]
    digest = hashlib.sha1(f"texel map v{TEXEL_MAP_VERSION}".encode())
    digest.update(np.ascontiguousarray(layout.corner_coords, np.float64).tobytes())
    path = assets.cache_dir() / f"texel_map_{digest.hexdigest()[:12]}_{size}.npz"
    tm = None
    if cache and path.exists():
        try:
            with np.load(path) as d:
                tm = TexelMap(size, d["tri"], d["bary"])
        except (OSError, ValueError, KeyError):
            tm = None           # a damaged cache file: draw again
    if tm is None:
        corners = uv_to_texel(layout.corner_coords, size).reshape(-1, 2)      # (3T, 2)
        screen = np.concatenate([corners, np.ones((len(corners), 1))], axis=1)  # z = 1: flat
        flat_tris = np.arange(len(corners), dtype=np.int32).reshape(-1, 3)
        tri, bary = _draw_flat(jnp.asarray(screen, jnp.float32), jnp.asarray(flat_tris), size)
        tm = TexelMap(size, np.asarray(tri, np.int32), np.asarray(bary, np.float32))
        if cache:
            def write(tmp):
                with open(tmp, "wb") as f:
                    np.savez(f, tri=tm.tri, bary=tm.bary)
            atomic_file.write(path, write)
            _TEXEL_MAPS[key] = (layout, tm)
    return tm


def at_texels(tm: TexelMap, triangles, values) -> np.ndarray:
    """Per-vertex values (V, C) -> (S, S, C) at the texel centres (0 off the chart)."""
    _, _, tri, bary = tm.texels
    corner = np.asarray(values, np.float64)[np.asarray(triangles)[tri]]      # (N, 3, C)
    return tm.scatter(np.einsum("nk,nkc->nc", bary, corner))


def corners_at_texels(tm: TexelMap, corner_values) -> np.ndarray:
    """Per-corner values (T, 3, C) -> (S, S, C) at the texel centres (0 off the chart)."""
    _, _, tri, bary = tm.texels
    corner = np.asarray(corner_values, np.float64)[tri]
    return tm.scatter(np.einsum("nk,nkc->nc", bary, corner))


def sample(image, x, y) -> np.ndarray:
    """Bilinear samples of an (H, W, C) image at float pixel coordinates (x column, y row;
    centres at integers); 0 outside. uint8 images are sampled as uint8 and returned in [0, 1]."""
    img = np.asarray(image)
    scale = 255.0 if img.dtype == np.uint8 else 1.0
    if img.dtype not in (np.uint8, np.float32):
        img = img.astype(np.float32)
    img = img[..., None] if img.ndim == 2 else img
    mx, my = np.asarray(x, np.float32), np.asarray(y, np.float32)
    chans = [cv2.remap(np.ascontiguousarray(img[..., c:c + 4]), mx, my, cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)
             for c in range(0, img.shape[-1], 4)]
    chans = [c[..., None] if c.ndim == 2 else c for c in chans]
    return np.concatenate(chans, axis=-1).astype(np.float64) / scale


@dataclasses.dataclass
class Bake:
    colour: np.ndarray   # (S, S, 3) the photo's sample (divided by the irradiance if given)
    weight: np.ndarray   # (S, S) its blend weight in [0, 1]: seen, faded at grazing angles and
    #                      over `feather` texels towards unseen texels
    cosine: np.ndarray   # (S, S) normal . direction to the camera where seen, else 0
    seen: np.ndarray     # (S, S) bool


def ramp(x, lo, hi):
    return np.clip((np.asarray(x, np.float64) - lo) / (hi - lo), 0.0, 1.0)


def feather_weight(seen, chart, feather: float) -> np.ndarray:
    """1 deep inside the seen texels, falling linearly to 0 over `feather` texels towards an
    unseen texel of the chart (texels off the chart do not count as unseen)."""
    if feather <= 0:
        return seen.astype(np.float64)
    src = (seen | ~chart).astype(np.uint8)
    dist = cv2.distanceTransform(src, cv2.DIST_L2, 5)
    return np.where(seen, np.clip(dist / feather, 0.0, 1.0), 0.0)


def bake_photo(tm: TexelMap, triangles, posed, normals, camera: cam.Camera, photo,
               crop_to_photo, depth, irradiance=None, depth_tolerance: float = 0.05,
               feather: Optional[float] = None, cos_lo: float = 0.05,
               cos_hi: float = 0.25) -> Bake:
    """Sample the photo for every texel of the chart.

    posed, normals: (V, 3) the fitted posed vertices and their (posed) unit normals, in the
    camera's world frame; camera: the fitted camera (crop pixels); photo: (H, W, 3) original
    image (uint8, or float in [0, 1]); crop_to_photo: maps (..., 2) crop pixels to photo pixels;
    depth: (camera.height, camera.width) z-buffer of the posed mesh seen by the camera (z_cam;
    0 or inf where no surface), e.g. the renderer's "depth"; irradiance: (V, 3) per-vertex SH
    shading or None; depth_tolerance: how far behind the z-buffer a texel may lie and still be
    the surface seen (model units).
    """
    tris = np.asarray(triangles)
    chart = tm.chart
    if feather is None:
        feather = max(2.0, tm.size / 128)
    p = at_texels(tm, tris, posed)                                           # (S, S, 3)
    n = at_texels(tm, tris, normals)
    n = n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)
    to_cam = np.array([0.0, 0.0, camera.distance]) - p
    to_cam /= np.maximum(np.linalg.norm(to_cam, axis=-1, keepdims=True), 1e-12)
    cosine = np.sum(n * to_cam, axis=-1)
    # where each texel lands in the photo
    crop_xyz = np.asarray(cam.to_screen(jnp.asarray(p, jnp.float32), camera), np.float64)
    photo_xy = crop_to_photo(crop_xyz[..., :2])
    h, w = np.asarray(photo).shape[:2]
    inside = ((photo_xy[..., 0] >= 0) & (photo_xy[..., 0] <= w - 1)
              & (photo_xy[..., 1] >= 0) & (photo_xy[..., 1] <= h - 1))
    # depth test against the fitted render's z-buffer at the texel's pixel
    zb = np.asarray(depth, np.float64)
    covered = np.isfinite(zb) & (zb > 0)
    hz, wz = zb.shape
    xi = np.round(crop_xyz[..., 0]).astype(np.int64)
    yi = np.round(crop_xyz[..., 1]).astype(np.int64)
    in_crop = (xi >= 0) & (xi < wz) & (yi >= 0) & (yi < hz)
    xi, yi = np.clip(xi, 0, wz - 1), np.clip(yi, 0, hz - 1)
    clear = (in_crop & covered[yi, xi]
             & (crop_xyz[..., 2] <= zb[yi, xi] + depth_tolerance))
    seen = chart & inside & (cosine > 0) & clear
    colour = sample(photo, photo_xy[..., 0], photo_xy[..., 1])[..., :3]
    if irradiance is not None:
        irr = at_texels(tm, tris, irradiance)
        colour = colour / np.maximum(irr, 0.05)
    colour = np.where(seen[..., None], np.clip(colour, 0.0, 1.0), 0.0)
    weight = feather_weight(seen, chart, feather) * ramp(cosine, cos_lo, cos_hi)
    return Bake(colour, weight, np.where(seen, cosine, 0.0), seen)


_MIRRORS: dict = {}


def mirror_texels(tm: TexelMap, layout: UVLayout, mean_shape) -> np.ndarray:
    """(S, S, 2) texel coordinates of each texel's mirror texel: per corner, the UV of the
    vertex's mirror partner on the mean shape, interpolated with the texel's barycentrics."""
    ms = np.asarray(mean_shape, np.float64)
    key = (id(layout), tm.size, hash(ms.tobytes()))
    if key in _MIRRORS and _MIRRORS[key][0] is layout:
        return _MIRRORS[key][1]
    partner, _ = mirror.mirror_partners(ms)
    vuv = layout.vertex_uv(len(ms))
    corner_mirror_uv = vuv[partner[layout.triangles]]                       # (T, 3, 2)
    uv = corners_at_texels(tm, corner_mirror_uv)
    out = uv_to_texel(uv, tm.size)
    _MIRRORS[key] = (layout, out)
    return out


def fill(colour, weight, mirror_xy, fallback) -> np.ndarray:
    """Blend the photo samples with their mirror texels' samples and the fallback:
    out = w c + (1 - w) (w_m c_m + (1 - w_m) fallback), w_m and c_m read at the mirror texel."""
    c = np.asarray(colour, np.float64)
    w = np.asarray(weight, np.float64)[..., None]
    m = sample(np.concatenate([c * w, w], axis=-1).astype(np.float32),
               mirror_xy[..., 0], mirror_xy[..., 1])
    w_m = np.clip(m[..., 3:4], 0.0, 1.0)
    other = m[..., :3] + (1.0 - w_m) * np.asarray(fallback, np.float64)
    return np.clip(w * c + (1.0 - w) * other, 0.0, 1.0)


def pad_chart(image, chart) -> np.ndarray:
    """Texels off the chart take the colour of the nearest chart texel, so bilinear filtering and
    mipmaps near the chart's border never mix in the background."""
    img = np.asarray(image)
    if chart.all() or not chart.any():
        return img
    _, labels = cv2.distanceTransformWithLabels((~chart).astype(np.uint8), cv2.DIST_L2, 5,
                                                labelType=cv2.DIST_LABEL_PIXEL)
    ys, xs = np.nonzero(chart)
    # every chart texel has a label of its own; every other texel the label of the nearest one
    order = np.zeros(labels.max() + 1, np.int64)
    zero_labels = labels[ys, xs]
    order[zero_labels] = np.arange(len(ys))
    nearest = order[labels]
    return img[ys[nearest], xs[nearest]]


def average(textures, weights):
    """Weighted texel average of textures (each (S, S, 3) in [0, 1]) with weights (S, S):
    (average (S, S, 3), total weight (S, S)); 0 where every weight is 0."""
    num, den = 0.0, 0.0
    for t, w in zip(textures, weights):
        w = np.asarray(w, np.float64)
        num = num + np.asarray(t, np.float64) * w[..., None]
        den = den + w
    avg = np.where(np.asarray(den)[..., None] > 0, num / np.maximum(den, 1e-12)[..., None], 0.0)
    return avg, np.asarray(den, np.float64)


def render_textured(screen, triangles, corner_uv, tri_id, texture, irradiance=None) -> np.ndarray:
    """Draw a textured mesh for a given visibility: screen (V, 3) (x_img, y_img, z_cam),
    corner_uv (T, 3, 2), tri_id (H, W) -> (H, W, 3), the texture sampled at the perspective-correct
    interpolated UV (times the interpolated irradiance (V, 3) if given); 0 where no triangle."""
    tid = jnp.asarray(tri_id)[None]
    pix = interpolate.barycentrics(jnp.asarray(screen, jnp.float32)[None], jnp.asarray(triangles),
                                   tid)
    bary = np.asarray(pix.bary[0], np.float64)
    mask = np.asarray(pix.mask[0])
    cuv = np.asarray(corner_uv, np.float64)[np.maximum(np.asarray(tri_id), 0)]  # (H, W, 3, 2)
    uv = np.einsum("hwk,hwkc->hwc", bary, cuv)
    size = np.asarray(texture).shape[0]
    txy = uv_to_texel(uv, size)
    colour = sample(texture, txy[..., 0], txy[..., 1])[..., :3]
    if irradiance is not None:
        corners = np.asarray(irradiance, np.float64)[np.asarray(pix.corners[0])]
        colour = colour * np.einsum("hwk,hwkc->hwc", bary, corners)
    return np.where(mask[..., None], colour, 0.0)


def psnr(a, b, mask=None) -> float:
    """Peak signal-to-noise ratio in dB of two images in [0, 1], over a mask if given."""
    d = (np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2
    if mask is not None:
        m = np.asarray(mask, bool)
        if not m.any():
            return float("nan")
        d = d[m]
    mse = float(np.mean(d))
    return float("inf") if mse == 0 else float(10.0 * np.log10(1.0 / mse))
