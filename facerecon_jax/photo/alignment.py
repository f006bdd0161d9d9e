"""Deep3DFaceRecon's face alignment (docs/design.md §8), so users' data and numbers carry over.

What Deep3DFaceRecon (``util/preprocess.py``: ``POS``, ``resize_n_crop_img``, ``align_img``;
``util/load_mats.py``: ``load_lm3d``) does, and what this module reproduces:

1. Landmarks arrive in image pixels, y down; they are flipped to y up, ``y_up = H - 1 - y``.
   68 points are reduced to 5: [mean(36, 39), mean(42, 45), 30, 48, 54] (0-based).
2. ``POS``: the 5 image points ``p`` (y up) and the 5 reference 3D points ``X`` are fitted by
   least squares with 8 parameters, ``p_x = r1 . X + a``, ``p_y = r2 . X + b`` (an affine
   orthographic camera); ``s = (|r1| + |r2|) / 2`` and ``t = (a, b)``, the image position (y up)
   of the reference's origin.  Reference points: Deep3DFaceRecon takes them from
   ``similarity_Lm3D_all.mat``; we take them from the face model's own mean shape
   (:func:`reference_points`), so a model in decimetres (BFM or ICT) gives similar numbers.
3. Image scale ``scale = rescale / s`` (rescale = 102: one decimetre of face becomes 102 crop
   pixels).  The image is resized with PIL bicubic to ``(int(w0 * scale), int(h0 * scale))`` and
   cropped (PIL ``crop``, black outside the image) to ``target_size`` squared at
   ``left = int(w / 2 - T / 2 + (tx - w0 / 2) * scale)``,
   ``up = int(h / 2 - T / 2 + (h0 / 2 - ty) * scale)`` (``int`` truncates towards zero, as numpy's
   ``astype(np.int32)`` does), so the crop is centred on ``t``.
4. ``trans_params = (w0, h0, scale, tx, ty)`` (ty y up): :meth:`Alignment.to_array`; every other
   number is recomputed from these five (:meth:`Alignment.from_array`).

Points: :func:`image_to_crop` / :func:`crop_to_image` use the very affine map that the resize and
crop apply to the pixels.  PIL's resize maps pixel centres, ``x' = (x + 0.5) * w / w0 - 0.5``
(likewise y with ``h / h0``), then the crop subtracts ``(left, up)``; all y down.  Deep3DFaceRecon
moves its landmarks differently (:func:`deep3d_crop_landmarks`): in the y-up frame,
``lm' = (lm - t + (w0/2, h0/2)) * scale - (w/2 - T/2, h/2 - T/2)``, i.e. with ``scale`` instead
of ``w / w0``, without the half-pixel terms and with the un-truncated crop corner.  Converted to
crop rows (``T - 1 - y'``), ours minus theirs is exactly (:func:`deep3d_landmark_offset`)

    x: 0.5 * (scale - 1) + fl - gw * (x + 0.5) / w0
    y: 0.5 * (1 - scale) + fu + gh * (1 - (y + 0.5) / h0)

with ``fl, fu`` what the truncation of ``left`` / ``up`` cut off (in (-1, 1)) and ``gw, gh`` the
fractional parts of ``w0 * scale`` and ``h0 * scale`` (in [0, 1)): up to about 2 px, typically
about 1 px (mostly in y).  The pixels follow our map, so ours keeps landmarks on the pixels they
mark.

:func:`paste_back` draws a render of the crop back onto the original image (the inverse map with
``cv2.warpAffine``, premultiplied alpha blending).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from facerecon_jax.photo.detection import as_rgb_uint8, five_from_68, landmarks5

TARGET_SIZE = 224
RESCALE = 102.0


# -- reference points and POS ------------------------------------------------------------------

def reference_points(model) -> np.ndarray:
    """(5, 3) reference 3D points from a face model's mean shape (its units, y up):
    [mean(lm 36, 39), mean(lm 42, 45), lm 30, lm 48, lm 54] of ``mean_shape[landmarks]``."""
    shape = np.asarray(model.mean_shape, np.float64)
    lms = np.asarray(model.landmarks).astype(np.int64)
    return five_from_68(shape[lms])


def pos(points2d, points3d) -> tuple[np.ndarray, float]:
    """Deep3DFaceRecon's ``POS``: least-squares affine camera from (N, 3) points to (N, 2) image
    points (same y direction as the 3D points: y up), returned as (t (2,), s).

    The 8 unknowns split into two independent 4-unknown problems with the same matrix
    ``[X 1]`` (the 2N x 8 system is block-diagonal), solved together here: rows r1, r2 and
    offsets (a, b); ``s = (|r1| + |r2|) / 2``, ``t = (a, b)``.  Minimum-norm solution when the
    3D points are coplanar (as ``np.linalg.lstsq``).
    """
    p = np.asarray(points2d, np.float64).reshape(-1, 2)
    x = np.asarray(points3d, np.float64).reshape(-1, 3)
    if len(p) != len(x):
        raise ValueError(f"{len(p)} image points but {len(x)} 3D points")
    design = np.concatenate([x, np.ones((len(x), 1))], axis=1)        # (N, 4)
    sol, *_ = np.linalg.lstsq(design, p, rcond=None)                  # (4, 2): columns x, y
    r1, r2 = sol[:3, 0], sol[:3, 1]
    s = 0.5 * (np.linalg.norm(r1) + np.linalg.norm(r2))
    return sol[3].copy(), float(s)


# -- the alignment record ---------------------------------------------------------------------

def _trunc(v: float) -> int:
    return int(v)  # towards zero, as numpy's astype(np.int32)


@dataclasses.dataclass(frozen=True)
class Alignment:
    """Where a ``target_size`` crop sits in an image of ``w0 x h0`` pixels.

    ``scale``, ``tx``, ``ty`` are Deep3DFaceRecon's ``trans_params`` (``ty`` y up, in the
    ``H - 1 - y`` frame); ``width`` x ``height`` is the resized image and ``(left, up)`` the crop's
    top-left corner in it (both recomputed from the five numbers).
    """
    w0: int
    h0: int
    scale: float
    tx: float
    ty: float
    target_size: int = TARGET_SIZE
    width: int = dataclasses.field(init=False)
    height: int = dataclasses.field(init=False)
    left: int = dataclasses.field(init=False)
    up: int = dataclasses.field(init=False)

    def __post_init__(self):
        w0, h0, s, T = int(self.w0), int(self.h0), float(self.scale), int(self.target_size)
        if w0 <= 0 or h0 <= 0 or not np.isfinite(s) or s <= 0:
            raise ValueError(f"invalid alignment: image {w0}x{h0}, scale {s}")
        w, h = _trunc(w0 * s), _trunc(h0 * s)
        if w <= 0 or h <= 0:
            raise ValueError(f"alignment scale {s} shrinks the {w0}x{h0} image to nothing")
        object.__setattr__(self, "w0", w0)
        object.__setattr__(self, "h0", h0)
        object.__setattr__(self, "scale", s)
        object.__setattr__(self, "tx", float(self.tx))
        object.__setattr__(self, "ty", float(self.ty))
        object.__setattr__(self, "target_size", T)
        object.__setattr__(self, "width", w)
        object.__setattr__(self, "height", h)
        object.__setattr__(self, "left", _trunc(w / 2 - T / 2 + (self.tx - w0 / 2) * s))
        object.__setattr__(self, "up", _trunc(h / 2 - T / 2 + (h0 / 2 - self.ty) * s))

    def to_array(self) -> np.ndarray:
        """Deep3DFaceRecon's trans_params: float64 [w0, h0, scale, tx, ty]."""
        return np.array([self.w0, self.h0, self.scale, self.tx, self.ty], np.float64)

    @classmethod
    def from_array(cls, params, target_size: int = TARGET_SIZE) -> "Alignment":
        v = np.asarray(params, np.float64).reshape(-1)
        if v.shape != (5,):
            raise ValueError(f"trans_params must hold 5 numbers (w0, h0, s, tx, ty), got {v.shape}")
        return cls(int(round(v[0])), int(round(v[1])), float(v[2]), float(v[3]), float(v[4]),
                   target_size)

    @property
    def matrix(self) -> np.ndarray:
        """2x3 affine map, image pixel (x, y, 1) -> crop pixel (x, y); y down in both."""
        ax, ay = self.width / self.w0, self.height / self.h0
        return np.array([[ax, 0.0, 0.5 * ax - 0.5 - self.left],
                         [0.0, ay, 0.5 * ay - 0.5 - self.up]], np.float64)

    @property
    def inverse_matrix(self) -> np.ndarray:
        """2x3 affine map, crop pixel (x, y, 1) -> image pixel (x, y); y down in both."""
        bx, by = self.w0 / self.width, self.h0 / self.height
        return np.array([[bx, 0.0, (self.left + 0.5) * bx - 0.5],
                         [0.0, by, (self.up + 0.5) * by - 0.5]], np.float64)


def fit_alignment(landmarks, ref5, image_size: tuple[int, int],
                  target_size: int = TARGET_SIZE, rescale: float = RESCALE) -> Alignment:
    """The :class:`Alignment` for landmarks (5 or 68, 2) in image pixels y down, reference
    points ``ref5`` (5, 3) and ``image_size = (w0, h0)``."""
    w0, h0 = int(image_size[0]), int(image_size[1])
    lm = landmarks5(np.asarray(landmarks, np.float64).reshape(-1, 2))
    ref = np.asarray(ref5, np.float64).reshape(-1, 3)
    if ref.shape[0] == 68:
        ref = five_from_68(ref)
    if ref.shape != (5, 3):
        raise ValueError(f"ref5 must be (5, 3) reference points, got {ref.shape}")
    if not np.all(np.isfinite(lm)):
        raise ValueError("landmarks hold non-finite values")
    lm_up = np.stack([lm[:, 0], h0 - 1 - lm[:, 1]], axis=1)
    t, s = pos(lm_up, ref)
    span = float(np.ptp(ref[:, :2], axis=0).max())
    if not np.isfinite(s) or s * span < 1.0:
        raise ValueError(f"degenerate landmarks: fitted scale {s:.3g} makes the face smaller "
                         f"than a pixel ({lm.tolist()})")
    return Alignment(w0, h0, rescale / s, float(t[0]), float(t[1]), target_size)


# -- pixels ---------------------------------------------------------------------------------

WINDOW_ABOVE_PIXELS = 4_000_000


def crop_image(image, alignment: Alignment, method: str = "auto") -> np.ndarray:
    """The (T, T, 3) uint8 crop: Deep3DFaceRecon's resize (PIL bicubic to ``width x height``)
    then crop (black outside the image).

    ``method="full"`` does exactly that (pixel for pixel Deep3DFaceRecon's crop);
    ``"window"`` resamples only the part of the image the crop covers (PIL ``resize(box=...)``:
    same filter positions and weights; PIL's 8-bit fixed-point intermediate rounding makes ~1 %
    of the values differ by 1-2 grey levels) and costs nothing for large photos; ``"auto"`` is
    "full" while the resized image has at most 4 megapixels, else "window".
    """
    img = as_rgb_uint8(image)
    a = alignment
    if img.shape[:2] != (a.h0, a.w0):
        raise ValueError(f"image is {img.shape[1]}x{img.shape[0]} but the alignment is for "
                         f"{a.w0}x{a.h0}")
    if method == "auto":
        method = "full" if a.width * a.height <= WINDOW_ABOVE_PIXELS else "window"
    if method == "full":
        return crop_image_reference(img, a)
    if method != "window":
        raise ValueError(f"method must be 'auto', 'full' or 'window', got {method!r}")
    from PIL import Image  # noqa: PLC0415

    T = a.target_size
    out = np.zeros((T, T, 3), np.uint8)
    cx0, cx1 = max(0, -a.left), min(T, a.width - a.left)
    cy0, cy1 = max(0, -a.up), min(T, a.height - a.up)
    if cx1 <= cx0 or cy1 <= cy0:
        return out
    bx, by = a.w0 / a.width, a.h0 / a.height
    box = ((a.left + cx0) * bx, (a.up + cy0) * by,
           min(float(a.w0), (a.left + cx1) * bx), min(float(a.h0), (a.up + cy1) * by))
    bicubic = getattr(Image, "Resampling", Image).BICUBIC
    part = Image.fromarray(img).resize((cx1 - cx0, cy1 - cy0), resample=bicubic, box=box)
    out[cy0:cy1, cx0:cx1] = np.asarray(part)
    return out


def crop_image_reference(image, alignment: Alignment) -> np.ndarray:
    """Deep3DFaceRecon's literal way: resize the whole image, then crop (memory-hungry when a
    large photo is enlarged)."""
    from PIL import Image  # noqa: PLC0415

    a = alignment
    bicubic = getattr(Image, "Resampling", Image).BICUBIC
    pil = Image.fromarray(as_rgb_uint8(image)).resize((a.width, a.height), resample=bicubic)
    T = a.target_size
    return np.asarray(pil.crop((a.left, a.up, a.left + T, a.up + T)))


def align(image, landmarks, ref5, target_size: int = TARGET_SIZE,
          rescale: float = RESCALE) -> tuple[np.ndarray, Alignment]:
    """Deep3DFaceRecon's ``align_img``: (crop (T, T, 3) uint8, :class:`Alignment`) for an
    (H, W, 3) uint8 RGB image, landmarks (5 or 68, 2) in image pixels y down and reference 3D
    points ``ref5`` (5, 3), e.g. :func:`reference_points`.  Crop landmarks:
    ``image_to_crop(landmarks, alignment)``."""
    img = as_rgb_uint8(image)
    a = fit_alignment(landmarks, ref5, (img.shape[1], img.shape[0]), target_size, rescale)
    return crop_image(img, a), a


# -- points ---------------------------------------------------------------------------------

def _apply(m: np.ndarray, points) -> np.ndarray:
    p = np.asarray(points, np.float64)
    flat = p.reshape(-1, 2)
    out = flat @ m[:, :2].T + m[:, 2]
    return out.reshape(p.shape)


def image_to_crop(points, alignment: Alignment) -> np.ndarray:
    """Image pixels (..., 2) y down -> crop pixels y down, by the map the pixels went through."""
    return _apply(alignment.matrix, points)


def crop_to_image(points, alignment: Alignment) -> np.ndarray:
    """Crop pixels (..., 2) y down -> image pixels y down (inverse of :func:`image_to_crop`)."""
    return _apply(alignment.inverse_matrix, points)


def deep3d_crop_landmarks(points, alignment: Alignment) -> np.ndarray:
    """Deep3DFaceRecon's own landmark formula (``resize_n_crop_img``), for comparison: image
    pixels (N, 2) y down -> crop pixels y down (their output is y up; flipped back here with
    ``T - 1 - y``).  Differs from :func:`image_to_crop` as the module docstring says."""
    a = alignment
    p = np.asarray(points, np.float64).reshape(-1, 2)
    T = a.target_size
    x = (p[:, 0] - a.tx + a.w0 / 2) * a.scale - (a.width / 2 - T / 2)
    y_up = ((a.h0 - 1 - p[:, 1]) - a.ty + a.h0 / 2) * a.scale - (a.height / 2 - T / 2)
    return np.stack([x, T - 1 - y_up], axis=1)


def deep3d_landmark_offset(points, alignment: Alignment) -> np.ndarray:
    """``image_to_crop(points) - deep3d_crop_landmarks(points)`` in closed form (module
    docstring), (N, 2)."""
    a = alignment
    p = np.asarray(points, np.float64).reshape(-1, 2)
    T = a.target_size
    fl = (a.width / 2 - T / 2 + (a.tx - a.w0 / 2) * a.scale) - a.left
    fu = (a.height / 2 - T / 2 + (a.h0 / 2 - a.ty) * a.scale) - a.up
    gw, gh = a.w0 * a.scale - a.width, a.h0 * a.scale - a.height
    dx = 0.5 * (a.scale - 1) + fl - gw * (p[:, 0] + 0.5) / a.w0
    dy = 0.5 * (1 - a.scale) + fu + gh * (1 - (p[:, 1] + 0.5) / a.h0)
    return np.stack([dx, dy], axis=1)


# -- drawing results back -------------------------------------------------------------------

def _as_unit_float(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    return img.astype(np.float32)


def paste_back(original_image, crop_render, crop_alpha, alignment: Alignment) -> np.ndarray:
    """Blend a render of the crop onto the original image.

    ``crop_render``: (T, T, 3) uint8 (0..255) or float ([0, 1]); ``crop_alpha``: (T, T) in
    [0, 1] (e.g. the renderer's mask).  Render and alpha are warped to the original frame with
    ``cv2.warpAffine`` (bilinear, the inverse of :func:`image_to_crop`, zero outside the crop) as
    premultiplied colour, then ``out = render * alpha + original * (1 - alpha)``.  Returns the
    original's dtype: uint8 in, uint8 out; float in, float out (same scale as given, [0, 1]
    assumed for the render).
    """
    import cv2  # noqa: PLC0415

    a = alignment
    orig = np.asarray(original_image)
    gray = orig.ndim == 2
    base = orig[:, :, None] if gray else orig
    if base.shape[:2] != (a.h0, a.w0):
        raise ValueError(f"original image is {base.shape[1]}x{base.shape[0]} but the alignment "
                         f"is for {a.w0}x{a.h0}")
    T = a.target_size
    render = np.asarray(crop_render)
    alpha = np.asarray(crop_alpha, np.float32)
    if render.shape[:2] != (T, T) or alpha.shape[:2] != (T, T):
        raise ValueError(f"render {render.shape} and alpha {alpha.shape} must be {T}x{T}")
    if alpha.ndim == 3:
        alpha = alpha[:, :, 0]
    rend = _as_unit_float(render)
    if rend.ndim == 2:
        rend = rend[:, :, None]
    alpha = np.clip(alpha, 0.0, 1.0)
    premult = np.concatenate([rend * alpha[:, :, None], alpha[:, :, None]], axis=2)
    warped = np.stack([
        cv2.warpAffine(np.ascontiguousarray(premult[:, :, c]), a.matrix, (a.w0, a.h0),
                       flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
        for c in range(premult.shape[2])], axis=2)
    colour, wa = warped[:, :, :-1], np.clip(warped[:, :, -1:], 0.0, 1.0)
    is_uint8 = base.dtype == np.uint8
    b = _as_unit_float(base) if is_uint8 else base.astype(np.float32)
    if colour.shape[2] == 1 and b.shape[2] == 3:
        colour = np.repeat(colour, 3, axis=2)
    elif colour.shape[2] == 3 and b.shape[2] == 1:
        colour = colour.mean(axis=2, keepdims=True)
    out = colour + b * (1.0 - wa)
    if is_uint8:
        out = np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)
    else:
        out = out.astype(orig.dtype if np.issubdtype(orig.dtype, np.floating) else np.float32)
    return out[:, :, 0] if gray else out


def as_dict(alignment: Alignment) -> dict[str, Any]:
    """Every field, for logs and JSON."""
    return dataclasses.asdict(alignment)
