"""Skin attention for the photometric loss (docs/design.md §7.1): ``A = 1 where P > 0.5 else P``,
``P`` the skin probability of each pixel from a naive-Bayes classifier (scikit-learn
``GaussianNB``) on the pixel's colour.

Colour features: OpenCV's 8-bit YCrCb (full-range BT.601: ``Y = .299 R + .587 G + .114 B``,
``Cr = (R - Y) * .713 + 128``, ``Cb = (B - Y) * .564 + 128``), the three numbers as they are.

Where the classifier's training samples come from:

* **Per image, self-supervised from the image's own 68 landmarks** (when given): positives are the
  pixels of skin regions drawn from the landmarks -- both cheeks, a forehead band above the brows,
  the nose and the chin -- each polygon shrunk towards its centre and with eyes, brows and mouth
  (dilated) cut out; then outliers are dropped (more than 3 robust standard deviations, median /
  MAD, from the median in Cr, Cb or Y: hair over the forehead, glasses, deep shadow).  Negatives
  are the pixels outside the face (outside the landmarks' convex hull, with the forehead, grown
  by 35 % about its centre, and not in the neck / collar zone straight below the jaw, nor in the
  ears' band beside it, which are often skin) plus the pixels inside the eyes and the mouth.  At
  most ``max_samples`` of each (random, fixed seed).
* **A generic prior from published skin-colour statistics**: Chai & Ngan (1999, IEEE TCSVT 9(4),
  "Face segmentation using skin-color map in videophone applications") found skin pixels of all
  ethnicities in ``Cr in [133, 173]``, ``Cb in [77, 127]``.  The prior's samples are the colours
  of a regular 32^3 grid over the RGB cube: skin = those whose Cr and Cb fall in that box (and
  ``Y`` in [40, 250], neither black nor blown out), non-skin = all others.

Blend (documented choice): when the landmarks give at least ``min_region_pixels`` positives and
negatives, one GaussianNB is fitted on the image's samples together with the prior's, the prior
carrying ``prior_weight`` (default 0.15) of each class's total sample weight (``sample_weight``;
a pseudo-count prior that keeps the classifier sane when a region is contaminated, e.g. bangs
over the forehead).  Otherwise (no landmarks, face regions too small or off the image) the prior
model alone is used.  Class priors are ``(1 - prior_skin, prior_skin)``, default 0.5 / 0.5.
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np

# Chai & Ngan (1999) skin chrominance box, 8-bit YCrCb
CR_RANGE = (133.0, 173.0)
CB_RANGE = (77.0, 127.0)
Y_RANGE = (40.0, 250.0)     # ours: exclude near-black and blown-out colours from the skin prior
PRIOR_GRID = 32             # colours per RGB axis for the prior's samples

PRIOR_WEIGHT = 0.15
MAX_SAMPLES = 4000
MIN_REGION_PIXELS = 60


# -- features -------------------------------------------------------------------------------

def ycrcb(image_rgb_uint8) -> np.ndarray:
    """(H, W, 3) float32 [Y, Cr, Cb] of an RGB uint8 image (OpenCV's conversion)."""
    import cv2  # noqa: PLC0415

    img = np.ascontiguousarray(np.asarray(image_rgb_uint8))
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] < 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {img.shape}")
    img = img[:, :, :3]
    if img.dtype != np.uint8:
        f = img.astype(np.float64)
        img = np.clip(np.round(f * 255.0 if f.max(initial=0) <= 1.0 else f), 0, 255)
        img = img.astype(np.uint8)
    return cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2YCrCb).astype(np.float32)


# -- the prior ------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _prior_samples() -> tuple[np.ndarray, np.ndarray]:
    """(features (N, 3), labels (N,) 1 = skin) from a regular grid over the RGB cube (cached:
    do not modify the returned arrays)."""
    v = np.round(np.linspace(0, 255, PRIOR_GRID)).astype(np.uint8)
    r, g, b = np.meshgrid(v, v, v, indexing="ij")
    rgb = np.stack([r, g, b], -1).reshape(1, -1, 3)
    f = ycrcb(rgb).reshape(-1, 3)
    y, cr, cb = f[:, 0], f[:, 1], f[:, 2]
    skin = ((cr >= CR_RANGE[0]) & (cr <= CR_RANGE[1]) & (cb >= CB_RANGE[0]) & (cb <= CB_RANGE[1])
            & (y >= Y_RANGE[0]) & (y <= Y_RANGE[1]))
    return f, skin.astype(np.int64)


@functools.lru_cache(maxsize=4)
def prior_classifier(prior_skin: float = 0.5):
    """The generic GaussianNB (classes 0 = non-skin, 1 = skin) fitted on the prior's samples."""
    from sklearn.naive_bayes import GaussianNB  # noqa: PLC0415

    x, y = _prior_samples()
    return GaussianNB(priors=[1.0 - prior_skin, prior_skin]).fit(x, y)


# -- regions from landmarks ---------------------------------------------------------------------

def _scaled(poly: np.ndarray, factor: float) -> np.ndarray:
    c = poly.mean(0)
    return c + (poly - c) * factor


def _fill(shape, polys, value=1) -> np.ndarray:
    import cv2  # noqa: PLC0415

    mask = np.zeros(shape, np.uint8)
    for p in polys:
        pts = np.round(np.asarray(p, np.float64) * 16).astype(np.int32).reshape(-1, 1, 2)
        cv2.fillPoly(mask, [pts], value, lineType=cv2.LINE_8, shift=4)
    return mask.astype(bool)


@dataclasses.dataclass(frozen=True)
class Regions:
    """Boolean (H, W) masks drawn from 68 landmarks."""
    skin: np.ndarray          # positive sample region
    non_skin: np.ndarray      # negative sample region
    face: np.ndarray          # grown face hull (neither class is sampled in face \\ skin)


def face_geometry(lm68) -> dict[str, np.ndarray | float]:
    """Up direction (unit, image coordinates, y down), eye-to-mouth length and forehead band."""
    lm = np.asarray(lm68, np.float64)
    eyes = lm[36:48].mean(0)
    mouth = lm[48:60].mean(0)
    up = eyes - mouth
    length = float(np.linalg.norm(up))
    up = up / max(length, 1e-9)
    brows = lm[18:26]
    lower = brows + 0.2 * length * up
    upper = brows + 0.6 * length * up
    return {"up": up, "length": length, "forehead": np.concatenate([lower, upper[::-1]], 0),
            "forehead_top": brows + 0.9 * length * up}


def skin_regions(lm68, shape) -> Regions:
    """Positive and negative sample regions of an image of ``shape`` (H, W) from its 68 landmarks
    (image pixels, y down)."""
    import cv2  # noqa: PLC0415

    lm = np.asarray(lm68, np.float64).reshape(68, 2)
    h, w = int(shape[0]), int(shape[1])
    geo = face_geometry(lm)
    up, length = geo["up"], geo["length"]
    ids = lambda *i: lm[list(i)]  # noqa: E731
    skin_polys = [
        _scaled(ids(1, 2, 3, 4, 48, 31, 40, 41, 36), 0.85),         # image-left cheek
        _scaled(ids(15, 14, 13, 12, 54, 35, 47, 46, 45), 0.85),     # image-right cheek
        _scaled(ids(27, 31, 32, 33, 34, 35), 0.8),                   # nose
        _scaled(np.concatenate([ids(6, 7, 8, 9, 10), ids(57)], 0), 0.8),   # chin
        _scaled(geo["forehead"], 0.9),                                # forehead band
    ]
    skin = _fill((h, w), skin_polys)
    # cut out eyes, brows and mouth, dilated
    cut = _fill((h, w), [_scaled(lm[36:42], 1.8), _scaled(lm[42:48], 1.8),
                         _scaled(lm[48:60], 1.25)]).astype(np.uint8)
    thick = max(1, int(round(0.15 * length)))
    for a, b in ((17, 22), (22, 27)):
        pts = np.round(lm[a:b] * 16).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(cut, [pts], False, 1, thickness=thick, shift=4)
    skin &= ~cut.astype(bool)

    # the face: convex hull of the landmarks and the forehead top, grown 35 %
    pts = np.concatenate([lm, geo["forehead_top"]], 0)
    hull = cv2.convexHull(np.round(pts).astype(np.float32)).reshape(-1, 2)
    face = _fill((h, w), [_scaled(hull.astype(np.float64), 1.35)])
    # neck / collar straight below the jaw and the ears beside it: skin-coloured, not sampled
    jaw = lm[2:15]
    neck = np.concatenate([jaw, (jaw - 2.4 * length * up)[::-1]], 0)
    width = float(np.linalg.norm(lm[16] - lm[0]))
    across = (lm[16] - lm[0]) / max(width, 1e-9)       # image-left to image-right
    ears = []
    for k, out in ((0, -across), (16, across)):
        lo, hi = lm[k] - 0.5 * length * up, lm[k] + 0.9 * length * up
        ears.append(np.stack([lo, hi, hi + 0.35 * width * out, lo + 0.35 * width * out], 0))
    protect = _fill((h, w), [neck] + ears)
    non_skin = ~face & ~protect
    non_skin |= _fill((h, w), [lm[36:42], lm[42:48], lm[48:60]])
    non_skin &= ~skin
    return Regions(skin=skin, non_skin=non_skin, face=face)


# -- the classifier -------------------------------------------------------------------------

def _robust_keep(f: np.ndarray, k: float = 3.0, floor: float = 2.0) -> np.ndarray:
    """Rows of f within k robust standard deviations (1.4826 MAD, at least ``floor``) of the
    median in every column."""
    med = np.median(f, axis=0)
    sig = np.maximum(1.4826 * np.median(np.abs(f - med), axis=0), floor)
    return np.all(np.abs(f - med) <= k * sig, axis=1)


def _sample(idx: np.ndarray, n: int, rng) -> np.ndarray:
    return idx if len(idx) <= n else rng.choice(idx, size=n, replace=False)


@dataclasses.dataclass
class SkinClassifier:
    """A fitted GaussianNB (classes 0 = non-skin, 1 = skin) and where its samples came from:
    ``source`` is "image+prior" or "prior"; ``n_skin`` / ``n_non_skin`` the image samples."""
    model: object
    source: str
    n_skin: int = 0
    n_non_skin: int = 0

    def probability(self, image_rgb_uint8) -> np.ndarray:
        """(H, W) float32 P(skin | colour)."""
        f = ycrcb(image_rgb_uint8)
        return posterior(self.model, f.reshape(-1, 3)).reshape(f.shape[:2])


def posterior(model, feats: np.ndarray, chunk: int = 1 << 18) -> np.ndarray:
    """P(class 1 | x) of a 2-class GaussianNB for (N, D) features, float32, computed in chunks
    with the model's own parameters (the same log-likelihoods as ``predict_proba``)."""
    theta = np.asarray(model.theta_, np.float64)
    var = np.asarray(model.var_, np.float64)
    logp = np.log(np.asarray(model.class_prior_, np.float64))
    # log-odds = a + sum_j (b_j x_j + c_j x_j^2), quadratic per feature
    inv0, inv1 = 1.0 / var[0], 1.0 / var[1]
    c = -0.5 * (inv1 - inv0)
    b = theta[1] * inv1 - theta[0] * inv0
    a = (logp[1] - logp[0] - 0.5 * np.sum(np.log(var[1]) - np.log(var[0]))
         - 0.5 * np.sum(theta[1] ** 2 * inv1 - theta[0] ** 2 * inv0))
    out = np.empty(len(feats), np.float32)
    for s in range(0, len(feats), chunk):
        x = np.asarray(feats[s:s + chunk], np.float64)
        z = a + x @ b + (x * x) @ c
        out[s:s + chunk] = 0.5 * (1.0 + np.tanh(0.5 * z))     # stable sigmoid
    return out


def fit_skin_classifier(image_rgb_uint8, landmarks68=None, *, prior_weight: float = PRIOR_WEIGHT,
                        prior_skin: float = 0.5, max_samples: int = MAX_SAMPLES,
                        min_region_pixels: int = MIN_REGION_PIXELS, seed: int = 0
                        ) -> SkinClassifier:
    """The classifier for one image (see the module docstring for samples and blend)."""
    if landmarks68 is None:
        return SkinClassifier(prior_classifier(prior_skin), "prior")
    lm = np.asarray(landmarks68, np.float64)
    if lm.shape != (68, 2) or not np.all(np.isfinite(lm)):
        raise ValueError(f"landmarks68 must be (68, 2) finite image pixels, got {lm.shape}")
    f = ycrcb(image_rgb_uint8)
    regions = skin_regions(lm, f.shape[:2])
    flat = f.reshape(-1, 3)
    rng = np.random.default_rng(seed)
    pos_idx = np.flatnonzero(regions.skin.reshape(-1))
    if len(pos_idx) >= min_region_pixels:
        pos_idx = pos_idx[_robust_keep(flat[pos_idx])]
    neg_idx = np.flatnonzero(regions.non_skin.reshape(-1))
    if len(pos_idx) < min_region_pixels or len(neg_idx) < min_region_pixels:
        return SkinClassifier(prior_classifier(prior_skin), "prior")
    pos = flat[_sample(pos_idx, max_samples, rng)]
    neg = flat[_sample(neg_idx, max_samples, rng)]
    from sklearn.naive_bayes import GaussianNB  # noqa: PLC0415

    px, py = _prior_samples()
    xs = [neg, pos]
    ys = [np.zeros(len(neg), np.int64), np.ones(len(pos), np.int64)]
    ws = [np.full(len(neg), (1.0 - prior_weight) / len(neg)),
          np.full(len(pos), (1.0 - prior_weight) / len(pos))]
    if prior_weight > 0:
        for label in (0, 1):
            sel = px[py == label]
            xs.append(sel)
            ys.append(np.full(len(sel), label, np.int64))
            ws.append(np.full(len(sel), prior_weight / len(sel)))
    model = GaussianNB(priors=[1.0 - prior_skin, prior_skin])
    model.fit(np.concatenate(xs), np.concatenate(ys), sample_weight=np.concatenate(ws))
    return SkinClassifier(model, "image+prior" if prior_weight > 0 else "image",
                          n_skin=len(pos), n_non_skin=len(neg))


def skin_probability(image_rgb_uint8, landmarks68=None, **kwargs) -> np.ndarray:
    """(H, W) float32 skin probability P of every pixel of an RGB uint8 image; with the image's
    68 landmarks (image pixels, y down) the classifier is trained on the image itself (blended
    with the generic prior), else the generic prior alone.  Keyword arguments: see
    :func:`fit_skin_classifier`."""
    return fit_skin_classifier(image_rgb_uint8, landmarks68, **kwargs).probability(
        image_rgb_uint8)


def attention_mask(prob):
    """The paper's skin attention ``A = 1 where P > 0.5 else P`` (numpy or jax arrays)."""
    if type(prob).__module__.startswith("jax"):
        import jax.numpy as jnp  # noqa: PLC0415
        return jnp.where(prob > 0.5, jnp.ones_like(prob), prob)
    p = np.asarray(prob)
    if not np.issubdtype(p.dtype, np.floating):
        p = p.astype(np.float32)
    return np.where(p > 0.5, np.ones_like(p), p)
