"""The hybrid loss of docs/design.md §7, as pure functions; shared by fitting and training.

L = w_photo L_photo + w_lan L_lan + w_per L_per + w_coef L_coef + w_tex L_tex (+ w_gamma L_gamma)

Images are RGB in [0, 1]; landmarks are image pixels of the 224 x 224 crop, y down.
"""
from __future__ import annotations

import dataclasses
from typing import Dict

import jax
import jax.numpy as jnp
import numpy as np

from facerecon_jax.geometry import camera as cam

NOSE_AND_INNER_MOUTH = tuple(range(28, 31)) + tuple(range(60, 68))   # 0-based, weight 20


@dataclasses.dataclass(frozen=True)
class LossWeights:
    """Paper weights by default; `deep3d()` gives Deep3DFaceRecon's."""
    photo: float = 1.9
    lan: float = 1.6e-3
    per: float = 0.2
    coef: float = 3e-4
    tex: float = 5.0
    gamma: float = 0.0
    w_id: float = 1.0
    w_exp: float = 0.8
    w_third: float = 1.7e-3
    third: str = "gamma"          # paper: light; Deep3DFaceRecon: "tex"
    # fitting priors beyond the paper's loss (0 / 1 = the paper's loss)
    exp_l1: float = 0.0           # w ||beta||_1: keeps unused blendshape weights at 0
    lan_contour: float = 1.0      # weight of the 17 jaw-contour landmarks (0-based 0..16)
    lan_nose_mouth: float = 20.0  # weight of the nose and inner-mouth landmarks (paper: 20)
    lan_noise: tuple = ()         # per-landmark detector scatter (68 floats, any unit):
                                  # weights x (median / noise)^2 (inverse variance); () = none
    lan_covariance: tuple = ()    # the detector's error covariance over the 136 coordinates
                                  # (x0, y0, x1, ...; flattened 136 x 136, any unit): the term
                                  # becomes the Mahalanobis distance (`landmark_precision`),
                                  # in place of lan_noise's per-point weights; () = none
    lan_shape: float = 1.0        # share of the landmark term's gradient that reaches identity
                                  # and expression (the value is unchanged; pose keeps all of
                                  # it: the landmarks place the head, the dense terms the shape)
    lan_exp: float = 1.0          # multiplies that share for expression alone
    lan_robust: float = 0.0       # > 0: a Cauchy kernel on each point's weighted squared error,
                                  # its scale this many inter-ocular distances for a point of
                                  # weight 1 (`landmark`); errors well below it count as
                                  # before, gross ones (a point dlib put off the face) grow
                                  # only logarithmically; 0 = squared error (the paper's)
    lan_gain: float = 1.0         # the detector's gain on identity: its points follow this share
                                  # of a face's deviation from the mean face, so they are
                                  # compared with the model's landmarks moved only that far
                                  # from the mean identity's (same pose and expression)
    lan_yaw_noise: tuple = ()     # the detector's scatter by head yaw: knots ((|yaw| degrees,
                                  # scatter / the frontal scatter), ...); each picture's
                                  # landmark weights / that ratio^2 at its fitted yaw; () = none
    lan_open: float = 0.0         # the eyes' and the mouth's openings (`landmark_openings`),
                                  # this many times the landmark term's weight; 0 = none
    photo_kernel: str = "distance"  # per-pixel photometric error: "distance" (the paper's
                                  # colour distance) or "squared" (`photometric`)

    @classmethod
    def paper(cls) -> "LossWeights":
        return cls()

    @classmethod
    def named(cls, name: str) -> "LossWeights":
        """"paper" or "deep3d" (the one place weights are chosen by name)."""
        if name not in ("paper", "deep3d"):
            raise ValueError(f"loss weights must be 'paper' or 'deep3d', got {name!r}")
        return cls.paper() if name == "paper" else cls.deep3d()

    @classmethod
    def deep3d(cls) -> "LossWeights":
        return cls(photo=1.92, lan=1.6e-3, per=0.2, coef=3e-4, tex=1.7e-2, gamma=10.0,
                   w_id=1.0, w_exp=0.8, w_third=1.7e-2, third="tex")


def landmark_weights(contour: float = 1.0, nose_mouth: float = 20.0, noise=()) -> np.ndarray:
    """(68,) per-landmark weights: 1, `nose_mouth` for the nose and inner mouth, `contour` for
    the jaw contour; with `noise` (68 spreads of the detector's points) each is multiplied by
    (median spread / its spread)^2, so a point weighs by how much it can be trusted."""
    w = np.ones(68, np.float32)
    w[list(NOSE_AND_INNER_MOUTH)] = nose_mouth
    w[:17] = contour
    if len(noise):
        noise = np.asarray(noise, np.float64)
        w = (w * (np.median(noise) / noise) ** 2).astype(np.float32)
    return w


def landmark_precision(covariance, contour: float = 1.0, nose_mouth: float = 20.0) -> np.ndarray:
    """(136, 136) the landmark term's weight matrix for a detector whose errors have
    `covariance` (over x0, y0, x1, y1, ...): its inverse, scaled by the median point's variance
    per axis, so that with a diagonal covariance r^T P r is what `landmark_weights` gives for
    the same scatter (the term's overall weight unchanged) and correlated errors (a shift or
    scale of the whole shape, the jaw contour moving as one) count once, not once per point.
    `contour` and `nose_mouth` scale those points' residuals' weight as in `landmark_weights`."""
    cov = np.asarray(covariance, np.float64).reshape(136, 136)
    if not np.allclose(cov, cov.T, atol=1e-12) or np.linalg.eigvalsh(cov)[0] <= 0:
        raise ValueError("the landmark error covariance must be symmetric positive definite")
    per_axis = np.median(np.sqrt(np.diag(cov).reshape(68, 2).sum(1))) ** 2 / 2.0
    p = per_axis * np.linalg.inv(cov)
    w = np.sqrt(np.repeat(landmark_weights(contour, nose_mouth), 2).astype(np.float64))
    return (w[:, None] * p * w[None, :]).astype(np.float32)


def photometric(image, target, region, attention=None, eps: float = 1e-8,
                kernel: str = "distance"):
    """sum_{i in M} A_i ||I_i - I'_i||_2 / sum_{i in M} A_i, per image (B,).

    region: (B, H, W) the rendered face region M (may be soft); attention: (B, H, W) skin A.
    `kernel` "squared": each pixel's distance d_i enters as d_i^2 / (2 m), m the image's mean
    distance (the same weighted mean, not differentiated), so a pixel at the mean distance pulls
    as hard as under the distance itself and farther ones harder (the Gaussian likelihood of
    pixel noise; docs/accuracy.md item 22).
    """
    if kernel not in ("distance", "squared"):
        raise ValueError(f"photometric kernel must be 'distance' or 'squared', got {kernel!r}")
    a = region if attention is None else region * attention
    diff = jnp.sqrt(jnp.sum((target - image) ** 2, axis=-1) + eps)
    den = jnp.maximum(jnp.sum(a, axis=(-1, -2)), 1.0)
    if kernel == "squared":
        m = jax.lax.stop_gradient(jnp.sum(a * diff, axis=(-1, -2)) / den)
        diff = diff ** 2 / (2.0 * jnp.maximum(m, 1e-6)[..., None, None])
    return jnp.sum(a * diff, axis=(-1, -2)) / den


# iBUG-68 (0-based) points facing each other across an opening: the upper and lower eyelids
# (right eye 37/41, 38/40; left eye 43/47, 44/46) and the inner lips (61/67, 62/66, 63/65)
OPENING_PAIRS = ((37, 41), (38, 40), (43, 47), (44, 46), (61, 67), (62, 66), (63, 65))


def landmark_openings(pred, target):
    """(1/P) sum over the P `OPENING_PAIRS` (a, b) of ||(q_a - q_b) - (q'_a - q'_b)||^2 per
    image (B,), pixels^2: how far the eyes' and the mouth's openings differ from the detector's,
    an error that a shift, and mostly a scale or turn, of all its points leaves out (DECA's eye
    closure term, with the mouth)."""
    a, b = np.asarray(OPENING_PAIRS).T
    d = (pred[..., a, :] - pred[..., b, :]) - (target[..., a, :] - target[..., b, :])
    return jnp.mean(jnp.sum(d ** 2, axis=-1), axis=-1)


def landmark(pred, target, weights=None, robust: float = 0.0, scale=None):
    """(1/N) sum_n w_n ||q_n - q'_n||^2 per image (B,), pixels; with weights a (2N, 2N)
    matrix P (`landmark_precision`), (1/N) r^T P r for r the N points' differences
    (x0, y0, x1, ...).

    `robust` c > 0 (per-point weights only): each e_n = w_n ||q_n - q'_n||^2 becomes
    (c D)^2 log(1 + e_n / (c D)^2), D the target's inter-ocular distance (pixels; eye centres
    36-41 and 42-47): the same for errors well below c D / sqrt(w_n), logarithmic beyond.
    `scale` (B,) multiplies each image's weights (`LossWeights.lan_yaw_noise`)."""
    if weights is None:
        weights = jnp.asarray(landmark_weights())
    if weights.ndim == 2:
        if robust:
            raise ValueError("a robust landmark kernel needs per-point weights, not a matrix")
        r = (pred - target).reshape(*pred.shape[:-2], -1)
        q = jnp.einsum("...i,ij,...j->...", r, weights, r) / pred.shape[-2]
        return q if scale is None else q * scale
    e = jnp.sum((pred - target) ** 2, axis=-1) * weights
    if scale is not None:
        e = e * scale[..., None]
    if robust:
        t = jax.lax.stop_gradient(target)
        iod = jnp.linalg.norm(t[..., 36:42, :].mean(-2) - t[..., 42:48, :].mean(-2), axis=-1)
        s2 = (robust * jnp.maximum(iod, 1e-6))[..., None] ** 2   # no 0 / 0 on empty points
        e = s2 * jnp.log1p(e / s2)
    return jnp.mean(e, axis=-1)


def perceptual(feat_a, feat_b, eps: float = 1e-8):
    """1 - cos(f(I), f(I')) per image (B,)."""
    num = jnp.sum(feat_a * feat_b, axis=-1)
    den = jnp.linalg.norm(feat_a, axis=-1) * jnp.linalg.norm(feat_b, axis=-1)
    return 1.0 - num / jnp.maximum(den, eps)


def coefficient_reg(parts: Dict[str, jnp.ndarray], w: LossWeights, shared_scale=None):
    """w_a ||alpha||^2 + w_b ||beta||^2 + w_third ||gamma or delta||^2 (+ exp_l1 ||beta||_1),
    per image (B,). `shared_scale` (B,) scales the identity (and texture) prior: a joint fit of
    n images of one person counts the prior of what they share once, 1/n per image."""
    third = parts["gamma"] if w.third == "gamma" else parts["tex"]
    one = 1.0 if shared_scale is None else shared_scale
    r = (one * w.w_id * jnp.sum(parts["id"] ** 2, -1)
         + w.w_exp * jnp.sum(parts["exp"] ** 2, -1)
         + (one if w.third == "tex" else 1.0) * w.w_third * jnp.sum(third ** 2, -1))
    if w.exp_l1:
        r = r + w.exp_l1 / w.coef * jnp.sum(jnp.abs(parts["exp"]), -1)
    return r


def texture_variance(albedo, skin_mask):
    """sum over r, g, b of the variance of the albedo over the skin region R, per image (B,)."""
    m = skin_mask[None, :, None]
    n = jnp.maximum(jnp.sum(skin_mask), 1.0)
    mean = jnp.sum(albedo * m, axis=-2, keepdims=True) / n
    return jnp.sum(((albedo - mean) * m) ** 2, axis=(-1, -2)) / n


def gamma_channel_variance(gamma):
    """Deep3DFaceRecon's light regulariser: variance of the SH coefficients across channels."""
    if gamma.shape[-1] != 27:
        return jnp.zeros(gamma.shape[:-1], gamma.dtype)
    g = gamma.reshape(gamma.shape[:-1] + (3, 9))
    return jnp.mean((g - jnp.mean(g, axis=-2, keepdims=True)) ** 2, axis=(-1, -2))


SHAPE_FIELDS = ("id", "exp", "tex")
POSE_FIELDS = ("angles", "gamma", "trans")


def supervised_coefficients(x, target, layout, shape_valid=None, pose_valid=None):
    """Squared error of predicted coefficients x (B, D) against ground truth target (B, D), per
    image (B,): identity, expression and texture count where `shape_valid` (B,) is 1 (not a
    mirrored picture), pose, light and translation where `pose_valid` is 1 (the picture was
    not moved). For generated faces, whose coefficients are known."""
    sl = layout.slices()
    d2 = (x - target) ** 2
    one = jnp.ones(x.shape[:1], x.dtype)
    sv = one if shape_valid is None else shape_valid
    pv = one if pose_valid is None else pose_valid
    shape = sum(jnp.sum(d2[:, sl[f]], -1) for f in SHAPE_FIELDS)
    pose = sum(jnp.sum(d2[:, sl[f]], -1) for f in POSE_FIELDS)
    return sv * shape + pv * pose


def group_consistency(values, views: int, valid=None):
    """Squared distance of each row of values (B, F) from the mean of its group, per row (B,):
    rows j k .. j k + k - 1 (k = `views`) are one person's images. `valid` (B,) 0 leaves a row
    out of its group's mean and of the term (e.g. a mirrored picture, whose identity is
    another face's)."""
    b, f = values.shape
    g = values.reshape(b // views, views, f)
    v = (jnp.ones((b,), values.dtype) if valid is None else valid).reshape(b // views, views, 1)
    mean = jnp.sum(g * v, axis=1, keepdims=True) / jnp.maximum(jnp.sum(v, axis=1, keepdims=True),
                                                               1.0)
    return (jnp.sum((g - mean) ** 2, axis=-1) * v[..., 0]).reshape(b)


def total(terms: Dict[str, jnp.ndarray], w: LossWeights):
    """The weighted sum of the (B,) terms present in `terms` -> (B,)."""
    weights = {"photo": w.photo, "lan": w.lan, "per": w.per, "coef": w.coef, "tex": w.tex,
               "gamma": w.gamma, "open": w.lan * w.lan_open}
    return sum(weights[k] * v for k, v in terms.items() if k in weights)


def make_hybrid_loss(model, layout, *, camera, weights: LossWeights = LossWeights(),
                     soft: bool = False, backend: str = "scatter", embed_params=None,
                     landmarks_only: bool = False, landmark_map=None):
    """loss(x, batch) -> (mean total, {term: (B,)}) for coefficient vectors x (B, layout.size).

    batch: image (B, H, W, 3) in [0, 1], landmarks (B, 68, 2) crop pixels y down, attention
    (B, H, W); for the perceptual term optionally chip (B, 2, 3) and target_feat (B, 128), else
    computed here from the landmarks and the input image (not differentiated). The render is
    composited over the input image, so the embedding sees the same background in both.
    `landmarks_only`: landmark and coefficient terms only (no rendering).
    `landmark_map`: where the detector's 68 landmarks lie on the model (a
    `landmark_embedding.LandmarkMap`); None: the model's landmark vertices.
    batch may hold shared_scale (B,): see `coefficient_reg`.
    """
    from facerecon_jax.photo import face_embedding  # renderer imports nothing from here
    from facerecon_jax.render import renderer  # renderer imports nothing from here

    w = weights
    rcfg = renderer.RenderConfig(camera=camera, soft=soft, backend=backend, colour_only=True)
    use_per = (not landmarks_only) and embed_params is not None and w.per > 0
    lan_w = jnp.asarray(
        landmark_precision(w.lan_covariance, w.lan_contour, w.lan_nose_mouth)
        if len(w.lan_covariance) else
        landmark_weights(w.lan_contour, w.lan_nose_mouth, w.lan_noise))

    def loss(x, batch):
        parts = layout.split(x)
        verts = renderer.face_vertices(model, parts, camera)
        posed, rot = verts["posed"], verts["rotation"]
        if w.lan_shape != 1.0 or w.lan_exp != 1.0:  # same landmark positions; the shape's
            share = {"id": w.lan_shape, "exp": w.lan_shape * w.lan_exp}  # gradient scaled
            damp = {k: s * parts[k] + (1.0 - s) * jax.lax.stop_gradient(parts[k])
                    for k, s in share.items()}
            _, rot, posed, _ = renderer.screen_vertices(model, dict(parts, **damp), camera)

        def landmarks_of(posed_, rot_):
            if landmark_map is None:
                return cam.to_screen(posed_[..., model.landmarks, :], camera)[..., :2]
            return landmark_map.locate(posed_, rot_, parts["angles"], camera)
        lm = landmarks_of(posed, rot)
        if w.lan_gain != 1.0:                       # what the detector would return
            mean_id = dict(parts, id=jnp.zeros_like(parts["id"]))
            _, rot_m, posed_m, _ = renderer.screen_vertices(model, mean_id, camera)
            lm = w.lan_gain * lm + (1.0 - w.lan_gain) * landmarks_of(posed_m, rot_m)
        lan_scale = None
        if w.lan_yaw_noise:
            knots = np.asarray(w.lan_yaw_noise, np.float32)
            yaw = jnp.abs(jnp.degrees(jax.lax.stop_gradient(parts["angles"][..., 1])))
            lan_scale = 1.0 / jnp.interp(yaw, knots[:, 0], knots[:, 1]) ** 2
        terms = {"lan": landmark(lm, batch["landmarks"], lan_w, w.lan_robust, lan_scale),
                 "coef": coefficient_reg(parts, w, batch.get("shared_scale"))}
        if w.lan_open:
            terms["open"] = landmark_openings(lm, batch["landmarks"])
        if not landmarks_only:
            out = renderer.render_vertices(model, verts, rcfg, background=batch["image"])
            region = out["alpha"] if soft else out["alpha"] * out["front"]
            terms["photo"] = photometric(out["image"], batch["image"], region,
                                         batch["attention"], kernel=w.photo_kernel)
            terms["tex"] = texture_variance(verts["albedo"], model.skin_mask)
            if w.gamma:
                terms["gamma"] = gamma_channel_variance(parts["gamma"])
            if use_per:
                chip = batch.get("chip")
                if chip is None:
                    chip = face_embedding.face_chip_transforms(batch["landmarks"])
                target = batch.get("target_feat")
                if target is None:
                    real = face_embedding.extract_chip(batch["image"] * 255.0, chip)
                    target = jax.lax.stop_gradient(
                        face_embedding.FaceEmbeddingNet().apply(embed_params, real))
                chips = face_embedding.extract_chip(out["image"] * 255.0, chip)
                feat = face_embedding.FaceEmbeddingNet().apply(embed_params, chips)
                terms["per"] = perceptual(feat, target)
        return jnp.mean(total(terms, w)), terms

    return loss
