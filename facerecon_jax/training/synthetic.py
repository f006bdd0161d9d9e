"""Synthetic faces with ground truth: the "generate and render" data source (paper section 2.1).

Faces are sampled from the face model (random identity, expression, albedo, pose and light),
rendered with the project's renderer at the camera of docs/design.md §4 (the render *is* the
aligned crop: no alignment step), composited over varied backgrounds and partly occluded.  Each
example comes with its ground truth: the coefficient vector, the 68 projected landmarks, the face
mask of the render and the occlusion mask; the meshes follow from the coefficients
(:func:`gt_vertices`), so they need not be stored.

Used by the tests, the evaluation issue (scores against known shapes) and training on synthetic
data (`launch/prepare_data.py --synthetic N`).

Conditions (:data:`CONDITIONS`), after MICC Florence's three scenarios:
  - ``cooperative``: near frontal (|yaw| < 10 deg, small pitch and roll), even light: a soft
    key light within 35 deg of the camera over ambient (as a studio or a bright room lights a
    face: no hard shadows, but the face's form shows; ambient light alone, the earlier choice,
    draws a flat mask that dlib missed on 8 of 100 benchmark pictures), mild expressions;
  - ``indoor``: moderate pose (|yaw| up to 30 deg) and light from a moderate directional source;
  - ``outdoor``: strong directional light (deep shadows), larger pose (|yaw| up to 45 deg);
  - ``train``: each face draws one of the three (25 % / 45 % / 30 %).
Angles are drawn uniformly within each condition's limits.

Light: ambient plus one directional light, written in the 9 SH coefficients the way a clamped
cosine lobe expands (irradiance E(n) = A + K max(0, n . d) ~ A + K (1/4 + n.d / 2 + 5/16 P2(n.d))),
so band 1 holds the direction and band 2 the lobe's sharpening.  RGB layouts get the same light
per channel with a small per-channel tint.

Determinism: example ``i`` of seed ``s`` depends only on ``(s, i)`` (its own random stream), so
``generate(..., n=10, seed=s)`` starts with ``generate(..., n=5, seed=s)`` and shards can be written
chunk by chunk (``start``).
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Dict, Optional, Sequence

import numpy as np

from facerecon_jax.geometry import lighting
from facerecon_jax.geometry.coefficients import CoeffLayout

# -- conditions ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Condition:
    """Ranges of one capture condition (angles in degrees, uniform in +-max)."""
    max_yaw: float
    max_pitch: float
    max_roll: float
    ambient: tuple          # irradiance A of the ambient part (the renderer's default is 0.709)
    directional: tuple      # intensity K of the directional light
    light_cone: float       # largest angle (deg) between the light and the camera axis
    tint: float             # std of the per-channel light tint (RGB layouts)
    max_active_exp: int     # blendshape models: at most this many active blendshapes
    exp_max: float          # blendshape models: largest weight of an active blendshape
    exp_std: float          # PCA expression models: std of the N(0, s) coefficients


CONDITIONS: Dict[str, Condition] = {
    "cooperative": Condition(max_yaw=10.0, max_pitch=6.0, max_roll=4.0, ambient=(0.45, 0.65),
                             directional=(0.2, 0.4), light_cone=35.0, tint=0.02,
                             max_active_exp=2, exp_max=0.5, exp_std=0.3),
    "indoor": Condition(max_yaw=30.0, max_pitch=15.0, max_roll=10.0, ambient=(0.45, 0.75),
                        directional=(0.2, 0.4), light_cone=60.0, tint=0.05,
                        max_active_exp=4, exp_max=1.0, exp_std=0.5),
    "outdoor": Condition(max_yaw=45.0, max_pitch=20.0, max_roll=12.0, ambient=(0.2, 0.5),
                         directional=(0.4, 0.9), light_cone=80.0, tint=0.08,
                         max_active_exp=4, exp_max=1.0, exp_std=0.5),
}
TRAIN_MIX = {"cooperative": 0.25, "indoor": 0.45, "outdoor": 0.30}
CONDITION_NAMES = tuple(CONDITIONS) + ("train",)

# constants of lighting.sh_basis, for writing a directional light in SH coefficients
_A0C0 = lighting._A[0] * lighting._C[0]
_A1C1 = lighting._A[1] * lighting._C[1]
_A2C2 = lighting._A[2] * lighting._C[2]


def as_rng(key_or_rng) -> np.random.Generator:
    """A numpy Generator from a Generator, an int seed, a sequence of ints or a JAX PRNG key."""
    if isinstance(key_or_rng, np.random.Generator):
        return key_or_rng
    if isinstance(key_or_rng, (int, np.integer)):
        return np.random.default_rng(int(key_or_rng))
    try:
        import jax  # noqa: PLC0415
        if hasattr(key_or_rng, "dtype") and jax.dtypes.issubdtype(key_or_rng.dtype,
                                                                   jax.dtypes.prng_key):
            key_or_rng = jax.random.key_data(key_or_rng)
    except ImportError:  # pragma: no cover
        pass
    words = np.asarray(key_or_rng).astype(np.uint64).reshape(-1)
    return np.random.default_rng([int(w) for w in words])


def directional_sh(direction, ambient: float, intensity: float) -> np.ndarray:
    """9 mono SH coefficients (the layout's gamma, before the renderer's +0.8 ambient offset) for
    irradiance A + K max(0, n . d): d a unit vector towards the light (camera at +z)."""
    dx, dy, dz = (float(v) for v in direction)
    k = float(intensity)
    g = np.zeros(9, np.float64)
    g[0] = (ambient + k / 4.0) / _A0C0 - lighting.AMBIENT
    g[1:4] = k / (2.0 * _A1C1) * np.array([-dy, dz, -dx])
    band2 = np.array([dx * dy, -dy * dz, (3 * dz * dz - 1) / (2 * math.sqrt(3.0)), -dx * dz,
                      (dx * dx - dy * dy) / 2])
    g[4:9] = 15.0 * k / (16.0 * _A2C2) * band2
    return g


def sample_light(rng, cond: Condition, light: str) -> np.ndarray:
    """SH coefficients (9 mono / 27 RGB) of an ambient + directional light of a condition."""
    theta = math.radians(cond.light_cone) * math.sqrt(rng.uniform())
    phi = rng.uniform(0, 2 * math.pi)
    d = np.array([math.sin(theta) * math.cos(phi), math.sin(theta) * math.sin(phi),
                  math.cos(theta)])
    mono = directional_sh(d, rng.uniform(*cond.ambient), rng.uniform(*cond.directional))
    if light == "mono":
        return mono
    tint = 1.0 + rng.normal(0.0, cond.tint, 3)
    out = np.tile(mono, (3, 1)) * tint[:, None]
    # the tint scales the whole channel, the renderer's ambient offset included
    out[:, 0] = (mono[0] + lighting.AMBIENT) * tint - lighting.AMBIENT
    return out.reshape(-1)      # channel-major (R 0:9, G 9:18, B 18:27)


def sample_coefficients(key_or_rng, model, layout: CoeffLayout, n: int,
                        condition: str = "indoor", *, id_scale: float = 1.0,
                        tex_scale: float = 1.0, max_shift: float = 0.06,
                        max_depth: float = 0.4, return_conditions: bool = False):
    """(n, layout.size) float32 ground-truth coefficient vectors for `condition`.

    identity / texture ~ N(0, 1) * scale; expression: models whose ``info['expression_kind']``
    says "blendshape" get a few active blendshapes with weights in (0, exp_max] (the rest 0),
    other models N(0, exp_std); angles uniform in the condition's limits (pitch, yaw, roll =
    rotations about x, y, z); translation uniform in +-max_shift dm sideways (about +-6 px at 224)
    and +-max_depth dm in depth (about +-4 % in scale); light as in the module docstring.
    With ``return_conditions`` also the condition each row was drawn from.
    """
    if condition not in CONDITION_NAMES:
        raise ValueError(f"condition must be one of {CONDITION_NAMES}, got {condition!r}")
    rng = as_rng(key_or_rng)
    blend = model.is_blendshape
    sl = layout.slices()
    out = np.zeros((n, layout.size), np.float64)
    names = []
    mix_names, mix_p = list(TRAIN_MIX), np.array(list(TRAIN_MIX.values()))
    for i in range(n):
        name = (mix_names[rng.choice(len(mix_names), p=mix_p / mix_p.sum())]
                if condition == "train" else condition)
        names.append(name)
        c = CONDITIONS[name]
        row = out[i]
        row[sl["id"]] = rng.normal(0.0, 1.0, layout.n_id) * id_scale
        row[sl["tex"]] = rng.normal(0.0, 1.0, layout.n_tex) * tex_scale
        if blend:
            exp = np.zeros(layout.n_exp)
            k = int(rng.integers(0, min(c.max_active_exp, layout.n_exp) + 1))
            if k:
                idx = rng.choice(layout.n_exp, size=k, replace=False)
                exp[idx] = rng.uniform(0.1, 1.0, k) * c.exp_max
            row[sl["exp"]] = exp
        else:
            row[sl["exp"]] = rng.normal(0.0, c.exp_std, layout.n_exp)
        row[sl["angles"]] = np.radians([rng.uniform(-c.max_pitch, c.max_pitch),
                                        rng.uniform(-c.max_yaw, c.max_yaw),
                                        rng.uniform(-c.max_roll, c.max_roll)])
        row[sl["gamma"]] = sample_light(rng, c, layout.light)
        row[sl["trans"]] = [rng.uniform(-max_shift, max_shift), rng.uniform(-max_shift, max_shift),
                            rng.uniform(-max_depth, max_depth)]
    out = out.astype(np.float32)
    return (out, np.array(names)) if return_conditions else out


def gt_vertices(model, layout: CoeffLayout, coeffs) -> np.ndarray:
    """Ground-truth meshes (n, V, 3) float32, unposed (identity + expression), in the model's
    units (decimetres), for coefficient vectors (n, layout.size) or (layout.size,)."""
    x = np.asarray(coeffs, np.float32)
    single = x.ndim == 1
    x = x.reshape(-1, layout.size)
    sl = layout.slices()
    v = model.n_vertices
    idb = np.asarray(model.id_basis, np.float32).reshape(model.n_id, v * 3)
    exb = np.asarray(model.exp_basis, np.float32).reshape(model.n_exp, v * 3)
    flat = x[:, sl["id"]] @ idb + x[:, sl["exp"]] @ exb
    out = np.asarray(model.mean_shape, np.float32)[None] + flat.reshape(-1, v, 3)
    return out[0] if single else out


# -- backgrounds --------------------------------------------------------------------------------

# Public-domain / CC0 pictures that ship inside scikit-image, none showing a human face
# (never data.astronaut() or data.camera()).
PHOTO_NAMES = ("coffee", "chelsea", "rocket", "brick", "grass", "gravel", "coins", "moon",
               "hubble_deep_field", "immunohistochemistry")
BACKGROUND_KINDS = ("photo", "noise", "stripes", "checker", "gradient")
BACKGROUND_P = (0.4, 0.2, 0.13, 0.12, 0.15)


@functools.lru_cache(maxsize=None)
def _photo(name: str) -> np.ndarray:
    import skimage.data  # noqa: PLC0415
    img = np.asarray(getattr(skimage.data, name)())
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = img[..., :3]
    if img.dtype != np.uint8:
        img = (np.clip(img, 0, 1) * 255).astype(np.uint8) if img.dtype.kind == "f" else \
            img.astype(np.uint8)
    img.setflags(write=False)
    return img


def _colour(rng) -> np.ndarray:
    return rng.uniform(0.0, 1.0, 3)


def _coords(rng, size):
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    a = rng.uniform(0, np.pi)
    return xx * np.cos(a) + yy * np.sin(a), -xx * np.sin(a) + yy * np.cos(a)


def _smooth_noise(rng, size, octaves=4) -> np.ndarray:
    import cv2  # noqa: PLC0415
    out = np.zeros((size, size, 3), np.float32)
    total = 0.0
    for o in range(octaves):
        cells = int(2 ** (o + 1) * rng.uniform(1, 2))
        w = 0.55 ** o
        field = rng.normal(0, 1, (cells, cells, 3)).astype(np.float32)
        out += w * cv2.resize(field, (size, size), interpolation=cv2.INTER_CUBIC)
        total += w
    out /= total
    lo, hi = _colour(rng), _colour(rng)
    t = 1 / (1 + np.exp(-1.5 * out))
    return lo + (hi - lo) * t


def _jitter(rng, img: np.ndarray) -> np.ndarray:
    """Brightness, contrast, saturation and per-channel gain jitter of an image in [0, 1]."""
    grey = img.mean(axis=2, keepdims=True)
    img = grey + (img - grey) * rng.uniform(0.4, 1.4)
    img = (img - img.mean()) * rng.uniform(0.6, 1.3) + img.mean()
    img = img * rng.uniform(0.6, 1.3) * rng.uniform(0.85, 1.15, 3)
    return img


def _photo_crop(rng, size) -> np.ndarray:
    import cv2  # noqa: PLC0415
    photo = _photo(PHOTO_NAMES[rng.integers(len(PHOTO_NAMES))])
    h, w = photo.shape[:2]
    side = int(min(h, w) * rng.uniform(0.25, 1.0))
    y0, x0 = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
    crop = photo[y0:y0 + side, x0:x0 + side]
    if rng.uniform() < 0.5:
        crop = crop[:, ::-1]
    img = cv2.resize(np.ascontiguousarray(crop), (size, size),
                     interpolation=cv2.INTER_AREA if side > size else cv2.INTER_LINEAR)
    img = img.astype(np.float32) / 255.0
    if np.ptp(img.reshape(-1, 3).mean(0)) < 1e-3 or rng.uniform() < 0.2:  # grey: tint it
        img = img.mean(axis=2, keepdims=True) * (0.4 + 0.8 * _colour(rng))
    return _jitter(rng, img)


def background(rng, size: int, kind: Optional[str] = None) -> np.ndarray:
    """One (size, size, 3) float32 background in [0, 1] of `kind` (random when None): "photo"
    (a randomly scaled, cropped, flipped and colour-jittered crop of a scikit-image picture),
    "noise" (smoothed multi-octave colour noise), "stripes", "checker" or "gradient"."""
    rng = as_rng(rng)
    if kind is None:
        kind = BACKGROUND_KINDS[rng.choice(len(BACKGROUND_KINDS), p=BACKGROUND_P)]
    if kind == "photo":
        img = _photo_crop(rng, size)
    elif kind == "noise":
        img = _smooth_noise(rng, size)
    elif kind in ("stripes", "checker"):
        u, v = _coords(rng, size)
        freq = rng.uniform(3, 20)
        if kind == "stripes":
            t = 0.5 + 0.5 * np.sin(2 * np.pi * freq * u + rng.uniform(0, 2 * np.pi))
            t = np.clip((t - 0.5) * rng.uniform(1, 6) + 0.5, 0, 1)
        else:
            t = ((np.floor(u * freq) + np.floor(v * freq)) % 2).astype(np.float32)
        a, b = _colour(rng), _colour(rng)
        img = a + (b - a) * t[..., None]
    elif kind == "gradient":
        u, _ = _coords(rng, size)
        u = (u - u.min()) / max(np.ptp(u), 1e-6)
        a, b = _colour(rng), _colour(rng)
        img = a + (b - a) * u[..., None]
    else:
        raise ValueError(f"background kind must be one of {BACKGROUND_KINDS}, got {kind!r}")
    img = img + rng.normal(0, rng.uniform(0.0, 0.03), img.shape)
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def backgrounds(rng, n: int, size: int) -> np.ndarray:
    """(n, size, size, 3) float32 varied backgrounds in [0, 1] (see :func:`background`)."""
    rng = as_rng(rng)
    return np.stack([background(rng, size) for _ in range(n)]) if n else \
        np.zeros((0, size, size, 3), np.float32)


# -- occlusions ---------------------------------------------------------------------------------

OCCLUDER_KINDS = ("rectangle", "ellipse", "hand", "sunglasses")


def _skin_tone(rng) -> np.ndarray:
    base = np.array([0.85, 0.64, 0.52]) * rng.uniform(0.35, 1.1)
    return np.clip(base * rng.uniform(0.9, 1.1, 3), 0, 1)


def _draw_occluder(rng, kind, size, centre, scale, angle, landmarks) -> tuple:
    """(mask uint8 (size, size), fill (size, size, 3) float32) of one occluder."""
    import cv2  # noqa: PLC0415
    mask = np.zeros((size, size), np.uint8)
    cx, cy = centre
    if kind == "rectangle":
        w, h = scale * rng.uniform(0.5, 1.2), scale * rng.uniform(0.3, 1.0)
        box = cv2.boxPoints(((cx, cy), (w, h), angle))
        cv2.fillPoly(mask, [np.round(box).astype(np.int32)], 1)
        fill = background(rng, size)
    elif kind == "ellipse":
        axes = (max(1, int(scale * rng.uniform(0.3, 0.6))),
                max(1, int(scale * rng.uniform(0.2, 0.5))))
        cv2.ellipse(mask, (int(cx), int(cy)), axes, angle, 0, 360, 1, -1)
        fill = background(rng, size)
    elif kind == "hand":
        # palm plus four fingers fanning out, entering from one side at `angle`
        a = np.radians(angle)
        fwd = np.array([np.cos(a), np.sin(a)])
        side = np.array([-fwd[1], fwd[0]])
        palm = np.array([cx, cy]) - fwd * scale * 0.35
        pr = scale * 0.3
        cv2.ellipse(mask, tuple(int(v) for v in palm), (int(pr * 1.1), int(pr)), angle, 0, 360,
                    1, -1)
        # the arm, out of the picture
        arm_end = palm - fwd * size * 2
        cv2.line(mask, tuple(int(v) for v in palm), tuple(int(v) for v in arm_end), 1,
                 max(1, int(pr * 1.3)))
        for k in range(4):
            off = (k - 1.5) * pr * 0.5
            spread = np.radians((k - 1.5) * rng.uniform(4, 12))
            d = fwd * np.cos(spread) + side * np.sin(spread)
            base = palm + side * off + fwd * pr * 0.6
            length = scale * rng.uniform(0.35, 0.55) * (0.8 if k in (0, 3) else 1.0)
            tip = base + d * length
            cv2.line(mask, tuple(int(v) for v in base), tuple(int(v) for v in tip), 1,
                     max(1, int(pr * 0.35)))
        tone = _skin_tone(rng)
        u, _ = _coords(rng, size)
        shade = 0.75 + 0.3 * (u - u.min()) / max(np.ptp(u), 1e-6)
        fill = tone * shade[..., None] + rng.normal(0, 0.015, (size, size, 3))
    elif kind == "sunglasses":
        if landmarks is not None:
            lm = np.asarray(landmarks, np.float64)
            left, right = lm[36:42].mean(0), lm[42:48].mean(0)
        else:
            left = np.array([cx - scale * 0.35, cy])
            right = np.array([cx + scale * 0.35, cy])
        d = right - left
        dist = max(np.linalg.norm(d), 2.0)
        tilt = float(np.degrees(np.arctan2(d[1], d[0])))
        ax = (max(1, int(dist * 0.42)), max(1, int(dist * 0.3)))
        for p in (left, right):
            cv2.ellipse(mask, tuple(int(v) for v in p), ax, tilt, 0, 360, 1, -1)
        cv2.line(mask, tuple(int(v) for v in left), tuple(int(v) for v in right), 1,
                 max(1, int(dist * 0.08)))
        # the temples, towards the sides of the head
        for p, sgn in ((left, -1), (right, 1)):
            end = p + sgn * d / dist * dist * 0.9
            cv2.line(mask, tuple(int(v) for v in p), tuple(int(v) for v in end), 1,
                     max(1, int(dist * 0.06)))
        dark = rng.uniform(0.02, 0.18) * rng.uniform(0.8, 1.2, 3)
        u, _ = _coords(rng, size)
        fill = dark + 0.12 * np.clip(np.sin(u * 9.0), 0, 1)[..., None] ** 4
    else:
        raise ValueError(f"occluder kind must be one of {OCCLUDER_KINDS}, got {kind!r}")
    return mask, np.clip(fill, 0, 1).astype(np.float32)


def occlude(rng, image, face_mask, landmarks=None, *, max_fraction: float = 0.3,
            kind: Optional[str] = None, tries: int = 6):
    """Draw one random partial occluder over a face.

    image (H, W, 3) float in [0, 1]; face_mask (H, W) (1 on the rendered face); landmarks (68, 2)
    crop pixels, y down (for the sunglasses; optional).  Kinds: "rectangle" / "ellipse" filled
    with a random texture, "hand" (a skin-coloured palm, fingers and arm coming in from a
    side), "sunglasses" (two dark lenses, bridge and temples across the eyes).  The occluder
    covers at most `max_fraction` of the face mask's pixels: too large a draw is shrunk and
    redrawn, and after `tries` failures nothing is drawn.  Returns (occluded image float32,
    occlusion mask (H, W) float32 in {0, 1}).
    """
    rng = as_rng(rng)
    image = np.asarray(image, np.float32)
    size = image.shape[0]
    face = np.asarray(face_mask) > 0.5
    n_face = int(face.sum())
    empty = np.zeros(image.shape[:2], np.float32)
    if n_face == 0:
        return image.copy(), empty
    if kind is None:
        kind = OCCLUDER_KINDS[rng.choice(len(OCCLUDER_KINDS), p=(0.3, 0.25, 0.25, 0.2))]
    ys, xs = np.nonzero(face)
    face_size = float(max(np.ptp(xs), np.ptp(ys), 1))
    scale = face_size * rng.uniform(0.3, 0.7)
    j = rng.integers(n_face)
    centre = (float(xs[j]), float(ys[j]))
    angle = float(rng.uniform(0, 360))
    for _ in range(tries):
        mask, fill = _draw_occluder(rng, kind, size, centre, scale, angle, landmarks)
        cover = float((mask.astype(bool) & face).sum()) / n_face
        if cover <= max_fraction:
            m = mask.astype(np.float32)
            out = image * (1 - m[..., None]) + fill * m[..., None]
            return out.astype(np.float32), m
        scale *= 0.7
        if landmarks is not None and kind == "sunglasses":
            kind = "ellipse"        # lenses are sized by the eyes: fall back to a shape
    return image.copy(), empty


# -- generation ---------------------------------------------------------------------------------

def identity_trans_params(size: int) -> np.ndarray:
    """Deep3DFaceRecon trans_params (w0, h0, scale, tx, ty) of a crop that is the whole image."""
    return np.array([size, size, 1.0, size / 2.0, size / 2.0], np.float32)


def generate(model, layout: CoeffLayout, n: int, seed: int = 0, condition: str = "train",
             size: int = 224, *, start: int = 0, batch_size: int = 8,
             occlusion_prob: float = 0.5, max_occlusion: float = 0.3,
             noise: float = 0.02, backend: str = "scatter",
             override: Optional[Dict[str, np.ndarray]] = None,
             views_per_person: int = 1) -> Dict[str, np.ndarray]:
    """Render `n` synthetic faces (examples start .. start + n - 1 of `seed`) with ground truth.

    Returns a dict of numpy arrays:
      image           (n, size, size, 3) uint8: render over a background, occluded, light noise
      coeffs          (n, layout.size) float32: the ground-truth coefficient vectors
      landmarks       (n, 68, 2) float32: projected landmark vertices, crop pixels, y down (the
                      crop is the render: no alignment); self-occluded points are kept
      attention       (n, size, size) float32: face mask minus occluders, an *oracle* skin mask
                      (it is known exactly here; photos get the naive-Bayes estimate instead)
      face_mask       (n, size, size) float32: the render's coverage (eyes / mouth holes of the
                      model are not face)
      occlusion_mask  (n, size, size) float32: pixels covered by the occluder
      trans_params    (n, 5) float32: the identity alignment (the crop is the whole image)
      name            (n,) str: "synth-<seed>-<index>"
      condition       (n,) str: the condition each face was drawn from
      person          (n,) int64: who is pictured: index // views_per_person
    Meshes: :func:`gt_vertices` (model, layout, coeffs).

    Rendering runs in batches of `batch_size` through one jitted function (the last batch is
    padded), so it compiles once per (model, layout, size, batch_size).

    `override`: {field: (n, field size)} values that replace the sampled ones.
    `views_per_person` k > 1: examples j k .. j k + k - 1 picture one person (identity and
    texture drawn from (seed, person)), each in its own pose, expression, light and scene.
    """
    import jax.numpy as jnp  # noqa: PLC0415

    from facerecon_jax.geometry import camera as cam  # noqa: PLC0415
    from facerecon_jax.render import renderer  # noqa: PLC0415

    if condition not in CONDITION_NAMES:
        raise ValueError(f"condition must be one of {CONDITION_NAMES}, got {condition!r}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    m = model.to_jax()
    config = renderer.RenderConfig(camera=cam.Camera().scaled(size), backend=backend)
    out = {
        "image": np.zeros((n, size, size, 3), np.uint8),
        "coeffs": np.zeros((n, layout.size), np.float32),
        "landmarks": np.zeros((n, 68, 2), np.float32),
        "attention": np.zeros((n, size, size), np.float32),
        "face_mask": np.zeros((n, size, size), np.float32),
        "occlusion_mask": np.zeros((n, size, size), np.float32),
        "trans_params": np.tile(identity_trans_params(size), (n, 1)),
        "name": np.array([f"synth-{seed}-{start + i:08d}" for i in range(n)]),
        "condition": np.array([""] * n, dtype="<U16"),
        "person": (start + np.arange(n, dtype=np.int64)) // max(1, int(views_per_person)),
    }
    def prepare(b0):
        """The batch's draws (coefficients, scene) from each example's own generator."""
        idx = list(range(b0, min(n, b0 + batch_size)))
        rngs = [np.random.default_rng([int(seed), start + i, 0x5EED]) for i in idx]
        coeffs = np.zeros((batch_size, layout.size), np.float32)
        bgs = np.zeros((batch_size, size, size, 3), np.float32)
        for k, r in enumerate(rngs):
            x, cname = sample_coefficients(r, model, layout, 1, condition, return_conditions=True)
            coeffs[k] = x[0]
            if views_per_person > 1:
                p = np.random.default_rng([int(seed), int(out["person"][idx[k]]), 0x1D])
                coeffs[k, layout.slices()["id"]] = p.normal(0.0, 1.0, layout.n_id)
                coeffs[k, layout.slices()["tex"]] = p.normal(0.0, 1.0, layout.n_tex)
            for field, values in (override or {}).items():
                coeffs[k, layout.slices()[field]] = np.asarray(values)[idx[k]]
            out["condition"][idx[k]] = cname[0]
            bgs[k] = background(r, size)
        return idx, rngs, coeffs, bgs

    def finish(idx, rngs, coeffs, res):
        """Occluders and sensor noise on the batch's renders (the generators go on where
        `prepare` left them), written into `out`."""
        images = np.clip(np.asarray(res["image"]), 0.0, 1.0)
        masks = np.asarray(res["mask"], np.float32)
        lms = np.asarray(res["landmarks"], np.float32)
        for k, r in enumerate(rngs):
            i = idx[k]
            img, occ = images[k], np.zeros((size, size), np.float32)
            if r.uniform() < occlusion_prob:
                img, occ = occlude(r, img, masks[k], lms[k], max_fraction=max_occlusion)
            if noise > 0:
                img = img + r.normal(0.0, r.uniform(0.0, noise), img.shape)
            out["image"][i] = np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)
            out["coeffs"][i] = coeffs[k]
            out["landmarks"][i] = lms[k]
            out["face_mask"][i] = masks[k]
            out["occlusion_mask"][i] = occ
            out["attention"][i] = masks[k] * (1.0 - occ)

    # A software pipeline on JAX's asynchronous dispatch: while batch b renders, the host
    # finishes batch b - 1 and draws batch b + 1 (each example's generator is its own, so the
    # order of the work does not change what is drawn). 1.47x the faces/s of the plain loop on
    # a 2-core CPU at 96 px (benchmarks/synthetic_faces.py).
    pending = None
    for b0 in range(0, n, batch_size):
        idx, rngs, coeffs, bgs = prepare(b0)
        res = renderer.render_jit(m, jnp.asarray(coeffs), layout, config, jnp.asarray(bgs))
        if pending is not None:
            finish(*pending)
        pending = (idx, rngs, coeffs, res)
    if pending is not None:
        finish(*pending)
    return out


def write_synthetic_shards(out_dir, model, layout: CoeffLayout, n: int, seed: int = 0,
                           condition: str = "train", shard_size: int = 1000, *,
                           size: int = 224, chunk: int = 64, progress=None,
                           overwrite: bool = False, **generate_kwargs) -> dict:
    """Generate `n` examples and write them as shards (facerecon_jax.training.data format) with
    their ground-truth coefficients and who is pictured (`generate`'s person, e.g. with
    views_per_person); returns the index written to ``out_dir/index.json``.
    `progress`: optional facerecon_jax.io.progress.Progress (updated per example)."""
    from facerecon_jax.training import data  # noqa: PLC0415

    meta = {"synthetic": {"seed": int(seed), "condition": condition, "size": int(size),
                          "face_model": model.info.get("name", ""),
                          "layout": dataclasses.asdict(layout),
                          "coeff_order": list(layout.sizes()),
                          "attention": "oracle: face mask minus occluders",
                          **{k: v for k, v in generate_kwargs.items()
                             if isinstance(v, (int, float, str, bool))}}}
    views = int(generate_kwargs.get("views_per_person", 1))
    shard_size = max(views, shard_size - shard_size % views)   # a person's images in one shard
    writer = data.ShardWriter(out_dir, shard_size, source="synthetic", metadata=meta,
                              overwrite=overwrite)
    for s in range(0, n, chunk):
        k = min(chunk, n - s)
        ex = generate(model, layout, k, seed, condition, size, start=s, **generate_kwargs)
        writer.add_batch({key: ex[key] for key in
                          ("image", "landmarks", "attention", "trans_params", "name", "coeffs",
                           "person")})
        if progress is not None:
            progress.update(k)
    return writer.close()


__all__: Sequence[str] = (
    "CONDITIONS", "CONDITION_NAMES", "TRAIN_MIX", "Condition", "sample_coefficients",
    "directional_sh", "gt_vertices", "background", "backgrounds", "occlude", "generate",
    "write_synthetic_shards", "identity_trans_params", "PHOTO_NAMES", "as_rng")
