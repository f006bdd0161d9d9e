"""dlib's face-recognition ResNet in Flax, and a differentiable face-chip cutter.

The network is the one dlib ships as ``dlib_face_recognition_resnet_model_v1.dat`` (public
domain; docs/design.md §14): a ResNet-34 with layers removed and half the filters, 29 conv
layers, 5,614,592 parameters, 150x150 RGB input, 128-D output (not normalised).  The weights are
read with our own parser (:mod:`facerecon_jax.photo.dlib_format`) and checked layer by layer
against the architecture below before use.

Layout: NHWC activations, HWIO kernels (dlib stores OIHW; dlib's convolution is a correlation like
``lax.conv``, so the kernels are only transposed, not flipped).

The face chip: :func:`face_chip_transform` reproduces dlib's ``get_face_chip_details(det, size=150,
padding=0.25)`` + ``extract_image_chips`` geometry (a least-squares similarity from 33 of the 68
landmarks to dlib's mean face), returned as a 2x3 matrix mapping chip pixel (col, row, 1) to image
(x, y); :func:`extract_chip` samples the chip bilinearly (differentiable w.r.t. the image).
"""
from __future__ import annotations

import functools
import os
import pathlib
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from facerecon_jax.photo import dlib_format
from facerecon_jax.io import assets
from facerecon_jax.io.assets import AssetMissingError

MODEL_PACKAGE = "face_recognition_models"
MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"
LANDMARK_FILE = "shape_predictor_68_face_landmarks.dat"
CHIP_SIZE = 150
CHIP_PADDING = 0.25
# input_rgb_image_sized's per-channel means, as stored in the .dat file; input = (rgb - mean) / 256
DEFAULT_MEANS = (122.782, 117.001, 104.298)

# (filters, number of plain residual blocks, starts with a down-sampling block), input side first.
STAGES: tuple[tuple[int, int, bool], ...] = (
    (32, 3, False),
    (64, 3, True),
    (128, 2, True),
    (256, 2, True),
    (256, 0, True),
)
STEM_FILTERS = 32
EMBEDDING_DIM = 128


def _blocks() -> list[tuple[int, bool]]:
    """(filters, is_down) of every residual block, input side first."""
    out = []
    for filters, n_plain, down in STAGES:
        if down:
            out.append((filters, True))
        out.extend([(filters, False)] * n_plain)
    return out


def _add_zero_extend(a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
    """dlib's add_prev: the sum over the larger shape, the smaller operand zero-extended at the
    end of each of H, W and C (dlib aligns tensors at index 0)."""
    shape = tuple(max(x, y) for x, y in zip(a.shape, b.shape))

    def grow(t):
        pads = [(0, s - d) for s, d in zip(shape, t.shape)]
        return jnp.pad(t, pads) if any(p[1] for p in pads) else t

    return grow(a) + grow(b)


class Affine(nn.Module):
    """dlib's affine_ layer (frozen batch norm): x * scale + bias per channel."""

    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (c,), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (c,), jnp.float32)
        return x * scale + bias


class ResBlock(nn.Module):
    """conv3x3(stride s) - affine - relu - conv3x3 - affine, plus skip, then relu.

    With ``down``, the first conv has stride 2 and no padding, and the skip is a 2x2/2 average
    pool of the input; otherwise both convs have padding 1 and the skip is the identity.
    """

    filters: int
    down: bool

    @nn.compact
    def __call__(self, x):
        if self.down:
            y = nn.Conv(self.filters, (3, 3), strides=(2, 2), padding="VALID", name="conv1")(x)
        else:
            y = nn.Conv(self.filters, (3, 3), padding=((1, 1), (1, 1)), name="conv1")(x)
        y = nn.relu(Affine(name="affine1")(y))
        y = nn.Conv(self.filters, (3, 3), padding=((1, 1), (1, 1)), name="conv2")(y)
        y = Affine(name="affine2")(y)
        skip = nn.avg_pool(x, (2, 2), strides=(2, 2), padding="VALID") if self.down else x
        return nn.relu(_add_zero_extend(y, skip))


class FaceEmbeddingNet(nn.Module):
    """dlib_face_recognition_resnet_model_v1 in Flax.  Input (B,150,150,3) RGB 0..255 float."""

    means: Sequence[float] = DEFAULT_MEANS

    @nn.compact
    def __call__(self, chips):
        x = (jnp.asarray(chips, jnp.float32) - jnp.asarray(self.means, jnp.float32)) / 256.0
        x = nn.Conv(STEM_FILTERS, (7, 7), strides=(2, 2), padding="VALID", name="stem_conv")(x)
        x = nn.relu(Affine(name="stem_affine")(x))
        x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")
        for i, (filters, down) in enumerate(_blocks()):
            x = ResBlock(filters, down, name=f"block{i}")(x)
        x = jnp.mean(x, axis=(1, 2))
        return nn.Dense(EMBEDDING_DIM, use_bias=False, name="fc")(x)


# -- conversion ---------------------------------------------------------------------------

def _expected_records() -> list[tuple[str, Any]]:
    """The (kind, detail) sequence the .dat must hold, input side first.

    detail: for con (out, in, k, stride, pad); for pools (window, stride); for affine channels.
    """
    seq: list[tuple[str, Any]] = [("con", (STEM_FILTERS, 3, 7, 2, 0)), ("affine", STEM_FILTERS),
                                  ("relu", None), ("max_pool", (3, 2))]
    c_in = STEM_FILTERS
    for filters, down in _blocks():
        seq.append(("tag_or_skip", None))
        seq += [("con", (filters, c_in, 3, 2 if down else 1, 0 if down else 1)),
                ("affine", filters), ("relu", None),
                ("con", (filters, filters, 3, 1, 1)), ("affine", filters)]
        if down:
            seq += [("tag_or_skip", None), ("tag_or_skip", None), ("avg_pool", (2, 2))]
        seq += [("add_prev", None), ("relu", None)]
        c_in = filters
    seq += [("avg_pool", (0, 1)), ("fc", (c_in, EMBEDDING_DIM))]
    return seq


def _describe(layer: dlib_format.Layer) -> tuple[str, Any]:
    c = layer.config
    if layer.kind == "con":
        f = layer.params["filters"].shape
        if c["nr"] != c["nc"] or c["stride_y"] != c["stride_x"] or c["padding_y"] != c["padding_x"]:
            return ("con", ("non-square", c))
        return ("con", (f[0], f[1], c["nr"], c["stride_y"], c["padding_y"]))
    if layer.kind == "affine":
        if c.get("mode") != 0:   # CONV_MODE: one scale/shift per channel
            return ("affine", ("mode", c.get("mode")))
        return ("affine", layer.params["gamma"].size)
    if layer.kind in ("max_pool", "avg_pool"):
        if c["nr"] != c["nc"] or c["stride_y"] != c["stride_x"] or c["padding_y"] or c["padding_x"]:
            return (layer.kind, ("unsupported", c))
        return (layer.kind, (c["nr"], c["stride_y"]))
    if layer.kind == "fc":
        if "biases" in layer.params:
            return ("fc", ("has bias",))
        return ("fc", layer.params["weights"].shape)
    return (layer.kind, None)


def params_from_dlib(net: dlib_format.DlibNet) -> dict:
    """Flax params (``{'params': ...}``) for :class:`FaceEmbeddingNet` from a parsed .dat.

    Raises ValueError when the file's layers are not exactly the expected architecture.
    """
    expected = _expected_records()
    found = [_describe(layer) for layer in net.layers]
    if found != expected:
        for i, (f, e) in enumerate(zip(found, expected)):
            if f != e:
                raise ValueError(f"{net.path}: layer {i} (byte offset {net.layers[i].offset}) is "
                                 f"{f}, expected {e} for dlib's face-recognition ResNet")
        raise ValueError(f"{net.path}: {len(found)} layers, expected {len(expected)} for dlib's "
                         "face-recognition ResNet")
    if net.input.get("nr", CHIP_SIZE) != CHIP_SIZE or net.input.get("nc", CHIP_SIZE) != CHIP_SIZE:
        raise ValueError(f"{net.path}: input size {net.input}, expected {CHIP_SIZE}x{CHIP_SIZE}")

    convs = iter(net.layers_of("con"))
    affines = iter(net.layers_of("affine"))

    def conv():
        layer = next(convs)
        return {"kernel": jnp.asarray(np.transpose(layer.params["filters"], (2, 3, 1, 0))),
                "bias": jnp.asarray(layer.params["biases"])}

    def affine():
        layer = next(affines)
        return {"scale": jnp.asarray(layer.params["gamma"]),
                "bias": jnp.asarray(layer.params["beta"])}

    p: dict[str, Any] = {"stem_conv": conv(), "stem_affine": affine()}
    for i, _ in enumerate(_blocks()):
        c1, a1, c2, a2 = conv(), affine(), conv(), affine()
        p[f"block{i}"] = {"conv1": c1, "affine1": a1, "conv2": c2, "affine2": a2}
    p["fc"] = {"kernel": jnp.asarray(net.layers_of("fc")[0].params["weights"])}
    return {"params": p}


def default_model_dir() -> pathlib.Path:
    """The ``models`` folder of the installed face_recognition_models package."""
    return assets.dlib_models_dir()


def default_model_path(name: str = MODEL_FILE) -> pathlib.Path:
    return assets.dlib_model_file(name)


def load_face_embedding(path: str | os.PathLike | None = None) -> dict:
    """Flax params of dlib's face-recognition ResNet, read from ``path`` (default: the .dat in
    the installed face_recognition_models package)."""
    path = default_model_path() if path is None else pathlib.Path(path)
    if not pathlib.Path(path).is_file():
        raise AssetMissingError(f"face-embedding model not found: {path}")
    net = dlib_format.read_dnn(path)
    params = params_from_dlib(net)
    return params


_MODEL = FaceEmbeddingNet()


@jax.jit
def _embed(params, chips):
    return _MODEL.apply(params, chips)


def embed(params: dict, chips) -> jnp.ndarray:
    """128-D descriptors (B,128) of (B,150,150,3) RGB chips with values 0..255 (float).

    Not normalised (like dlib; same person ~0.45 apart, different people 0.6-0.9).
    Differentiable w.r.t. ``chips``.  A single (150,150,3) chip gives a (128,) vector.
    """
    chips = jnp.asarray(chips, jnp.float32)
    single = chips.ndim == 3
    if single:
        chips = chips[None]
    if chips.ndim != 4 or chips.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
        raise ValueError(f"chips must be (B,{CHIP_SIZE},{CHIP_SIZE},3), got {chips.shape}")
    out = _embed(params, chips)
    return out[0] if single else out


# -- face chips -----------------------------------------------------------------------------

# dlib's mean face shape (landmarks 17..67, unit square), from dlib's get_face_chip_details
# (dlib/image_transforms/interpolation.h, Boost Software License).
_MEAN_FACE_X = np.array([
    0.000213256, 0.0752622, 0.18113, 0.29077, 0.393397, 0.586856, 0.689483, 0.799124,
    0.904991, 0.98004, 0.490127, 0.490127, 0.490127, 0.490127, 0.36688, 0.426036,
    0.490127, 0.554217, 0.613373, 0.121737, 0.187122, 0.265825, 0.334606, 0.260918,
    0.182743, 0.645647, 0.714428, 0.793132, 0.858516, 0.79751, 0.719335, 0.254149,
    0.340985, 0.428858, 0.490127, 0.551395, 0.639268, 0.726104, 0.642159, 0.556721,
    0.490127, 0.423532, 0.338094, 0.290379, 0.428096, 0.490127, 0.552157, 0.689874,
    0.553364, 0.490127, 0.42689])
_MEAN_FACE_Y = np.array([
    0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891,
    0.0187482, 0.038915, 0.106454, 0.203352, 0.307009, 0.409805, 0.515625, 0.587326,
    0.609345, 0.628106, 0.609345, 0.587326, 0.216423, 0.178758, 0.179852, 0.231733,
    0.245099, 0.244077, 0.231733, 0.179852, 0.178758, 0.216423, 0.244077, 0.245099,
    0.780233, 0.745405, 0.727388, 0.742578, 0.727388, 0.745405, 0.780233, 0.864805,
    0.902192, 0.909281, 0.902192, 0.864805, 0.784792, 0.778746, 0.785343, 0.778746,
    0.784792, 0.824182, 0.831803, 0.824182])
# landmarks used for the fit: 27..67 without the lower lip (55..59, 65..67); eyebrows unused.
CHIP_LANDMARKS = np.array([i for i in range(27, 68) if not (55 <= i <= 59 or 65 <= i <= 67)])


def similarity_fit(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares similarity (Umeyama 1991) with dst ~ M @ src + t; returns (M 2x2, t)."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    var_s = np.mean(np.sum(s0 * s0, axis=1))
    cov = d0.T @ s0 / len(src)
    u, sv, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(cov) < 0 or (np.linalg.det(cov) == 0
                                  and np.linalg.det(u) * np.linalg.det(vt) < 0):
        sign[np.argmin(sv)] = -1.0   # reflection fix on the weaker direction
    rot = (u * sign) @ vt
    c = float(np.sum(sv * sign) / var_s) if var_s != 0 else 1.0
    m = c * rot
    return m, mu_d - m @ mu_s


def face_chip_details(landmarks68, size: int = CHIP_SIZE, padding: float = CHIP_PADDING):
    """dlib's chip_details for a 68-point face: (center_xy, width, height, angle)."""
    pts = np.asarray(landmarks68, np.float64).reshape(-1, 2)
    if pts.shape != (68, 2):
        raise ValueError(f"need 68 (x, y) landmarks, got {pts.shape}")
    ref = np.stack([_MEAN_FACE_X, _MEAN_FACE_Y], 1)[CHIP_LANDMARKS - 17]
    chip_pts = (padding + ref) / (2 * padding + 1) * size
    m, t = similarity_fit(chip_pts, pts[CHIP_LANDMARKS])
    p = m @ np.array([1.0, 0.0])
    angle = float(np.arctan2(p[1], p[0]))
    scale = float(np.hypot(p[0], p[1]))
    center = m @ np.array([size / 2.0, size / 2.0]) + t
    return center, size * scale, size * scale, angle


def face_chip_transform(landmarks68, size: int = CHIP_SIZE,
                        padding: float = CHIP_PADDING) -> np.ndarray:
    """2x3 matrix A with image (x, y) = A @ (col, row, 1) for chip pixels, as dlib's
    ``get_face_chip(img, shape, size, padding)`` samples them.

    dlib builds a rectangle of width ``size*scale`` around the mapped chip centre (its
    ``centered_drect`` spans width-1 between the first and last pixel centres) and maps chip
    corner pixels (0,0), (size-1,0), (0,size-1) onto its rotated corners, so the pixel step is
    ``(size*scale - 1)/(size - 1)``, not exactly ``scale``.  Pixel centres are integers in both
    images (no half-pixel shift).  Computed in float64 numpy; not differentiated.
    """
    center, w, h, angle = face_chip_details(landmarks68, size, padding)
    ca, sa = np.cos(angle), np.sin(angle)
    rot = np.array([[ca, -sa], [sa, ca]])
    step = np.diag([(w - 1.0) / (size - 1), (h - 1.0) / (size - 1)])
    lin = rot @ step
    offset = center - rot @ np.array([(w - 1.0) / 2.0, (h - 1.0) / 2.0])
    return np.concatenate([lin, offset[:, None]], axis=1)


def _bilinear_zero_outside(image, x, y):
    """Bilinear samples of image (H,W,C) at float coords; 0 where a 2x2 neighbourhood leaves
    the image (dlib's interpolate_bilinear)."""
    h, w = image.shape[0], image.shape[1]
    x0f, y0f = jnp.floor(x), jnp.floor(y)
    fx, fy = (x - x0f)[..., None], (y - y0f)[..., None]
    x0, y0 = x0f.astype(jnp.int32), y0f.astype(jnp.int32)
    inside = (x0 >= 0) & (y0 >= 0) & (x0 + 1 < w) & (y0 + 1 < h)
    x0c, y0c = jnp.clip(x0, 0, w - 2), jnp.clip(y0, 0, h - 2)
    tl = image[y0c, x0c]
    tr = image[y0c, x0c + 1]
    bl = image[y0c + 1, x0c]
    br = image[y0c + 1, x0c + 1]
    top = tl * (1 - fx) + tr * fx
    bot = bl * (1 - fx) + br * fx
    out = top * (1 - fy) + bot * fy
    return jnp.where(inside[..., None], out, 0.0)


@functools.partial(jax.jit, static_argnames=("size",))
def _extract(image, transform, size):
    rows, cols = jnp.meshgrid(jnp.arange(size, dtype=jnp.float32),
                              jnp.arange(size, dtype=jnp.float32), indexing="ij")
    a = transform.astype(jnp.float32)
    x = a[0, 0] * cols + a[0, 1] * rows + a[0, 2]
    y = a[1, 0] * cols + a[1, 1] * rows + a[1, 2]
    return _bilinear_zero_outside(image, x, y)


def extract_chip(image, transform, size: int = CHIP_SIZE) -> jnp.ndarray:
    """Sample a ``size`` x ``size`` chip from ``image`` (H,W,C float) with the 2x3 ``transform``
    of :func:`face_chip_transform` by bilinear interpolation (zero outside the image).

    Differentiable w.r.t. ``image``; the transform is held constant (stop_gradient).  Batched
    use: image (B,H,W,C) with transform (B,2,3).

    Unlike dlib, no image pyramid is used: when the face is more than ~2x the chip size
    (source rectangle wider than ~2*size pixels) dlib first downsamples the image, so there the
    chips differ (ours aliases); shrink such images first.
    """
    image = jnp.asarray(image, jnp.float32)
    transform = jax.lax.stop_gradient(jnp.asarray(transform, jnp.float32))
    if image.ndim == 4:
        return jax.vmap(lambda im, tf: _extract(im, tf, size))(image, transform)
    squeeze = image.ndim == 2
    if squeeze:
        image = image[..., None]
    out = _extract(image, transform, size)
    return out[..., 0] if squeeze else out


def landmarks_to_numpy(shape) -> np.ndarray:
    """(68,2) float array of a dlib full_object_detection's parts."""
    return np.array([[shape.part(i).x, shape.part(i).y] for i in range(shape.num_parts)],
                    np.float64)


def face_chip_transforms(landmarks68, size: int = CHIP_SIZE,
                         padding: float = CHIP_PADDING) -> jnp.ndarray:
    """Batched, jittable :func:`face_chip_transform`: (B, 68, 2) landmarks -> (B, 2, 3).

    The same geometry in jnp (float32) so a jitted train step can cut chips from landmarks that
    arrive as device arrays; not differentiated (stop_gradient).
    """
    pts = jax.lax.stop_gradient(jnp.asarray(landmarks68, jnp.float32))
    ref = np.stack([_MEAN_FACE_X, _MEAN_FACE_Y], 1)[CHIP_LANDMARKS - 17]
    src = jnp.asarray((padding + ref) / (2 * padding + 1) * size, jnp.float32)   # (n, 2)
    dst = pts[:, CHIP_LANDMARKS, :]                                               # (B, n, 2)
    mu_s, mu_d = src.mean(0), dst.mean(1)
    s0, d0 = src - mu_s, dst - mu_d[:, None, :]
    var_s = jnp.mean(jnp.sum(s0 * s0, axis=1))
    cov = jnp.einsum("bni,nj->bij", d0, s0) / src.shape[0]                        # (B, 2, 2)
    u, sv, vt = jnp.linalg.svd(cov)
    det = jnp.linalg.det(cov)
    flip = (det < 0) | ((det == 0) & (jnp.linalg.det(u) * jnp.linalg.det(vt) < 0))
    sign = jnp.stack([jnp.ones_like(det), jnp.where(flip, -1.0, 1.0)], -1)       # sv sorted desc
    rot = jnp.einsum("bij,bj,bjk->bik", u, sign, vt)
    c = jnp.sum(sv * sign, -1) / var_s
    m = c[:, None, None] * rot
    t = mu_d - jnp.einsum("bij,j->bi", m, mu_s)
    p = m[:, :, 0]
    angle = jnp.arctan2(p[:, 1], p[:, 0])
    w = size * jnp.hypot(p[:, 0], p[:, 1])
    center = jnp.einsum("bij,j->bi", m, jnp.full((2,), size / 2.0)) + t
    ca, sa = jnp.cos(angle), jnp.sin(angle)
    rot2 = jnp.stack([jnp.stack([ca, -sa], -1), jnp.stack([sa, ca], -1)], -2)   # (B, 2, 2)
    step = (w - 1.0) / (size - 1)
    lin = rot2 * step[:, None, None]
    offset = center - jnp.einsum("bij,bj->bi", rot2, jnp.stack([(w - 1) / 2, (w - 1) / 2], -1))
    return jnp.concatenate([lin, offset[..., None]], axis=-1)
