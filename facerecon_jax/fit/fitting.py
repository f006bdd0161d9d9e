"""Analysis by synthesis: optimise coefficients per image against the hybrid loss.

This is how a fresh install reconstructs faces without a trained R-Net: start from the mean face
(or from an R-Net prediction), then run Adam (optax) on the coefficients of a whole batch at once
in two stages:
  1. ``landmarks``: landmarks + regularisers, pose / identity / expression only (gets the face in
     place);
  2. ``hybrid``: the full hybrid loss of docs/design.md §7: photometric with the skin attention
     mask, landmarks, perceptual (dlib's face embedding on landmark-aligned chips), regularisers.

The solver is compiled once: :func:`fit_stage` is a module-level jitted function of explicit
pytrees (the face model, the embedding parameters, the starting coefficients and the batch) with
the layout, the config and the stage static (all hashable), and the steps of a stage run inside
``lax.scan``, so one call is one device program. The loss terms of every step come back as arrays
from the scan (one transfer per stage, no host sync per step). A batch of the same size, model and
config never compiles again; callers pad a short last batch (:func:`pad_batch`).

Progress inside a stage is reported through ``jax.debug.callback`` every ``report_every`` steps to
the listeners registered with :func:`reporting` (the compiled program is the same whether anyone
listens or not).
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import time
from typing import Callable, Dict, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from facerecon_jax.geometry import camera as cam
from facerecon_jax.fit import losses
from facerecon_jax.io import config_files
from facerecon_jax.photo import face_embedding
from facerecon_jax.geometry.coefficients import CoeffLayout
from facerecon_jax.models.face_model import FaceModel


@dataclasses.dataclass(frozen=True)
class FitConfig:
    """Static (hashable) settings of the solver; one compilation per distinct config. The
    settings a user tunes have no defaults here: they come from configs/reconstruct.py
    (`from_config`, or `default(**changes)` for the packaged defaults)."""
    steps_landmark: int              # stage 1
    steps: int                       # stage 2
    lr: float
    lr_pose: float
    weights: losses.LossWeights
    perceptual: bool
    backend: str
    expression: str                  # "free", or "neutral": blendshapes held at their start
    shared: tuple                    # joint fit: fields one value per group (e.g. id, tex)
    soft: bool = False
    camera: cam.Camera = cam.Camera()
    report_every: int = 10           # progress callback every n steps (0: never)
    size: Optional[int] = None       # picture size the fit compares at (`at_fit_size`);
                                     # None: the camera's (the crop's own size)
    shared_correlation: float = 0.0  # joint fit: rho of `shared_prior_scale`

    @classmethod
    def from_config(cls, c) -> "FitConfig":
        """From a fitting ConfigDict (configs/reconstruct.py's fields)."""
        w = losses.LossWeights.named(c.weights)
        if c.get("landmark_noise") == "covariance" and c.get("landmark_robust", 0.0):
            raise ValueError("landmark_noise 'covariance' weighs the whole shape's error at once "
                             "and takes no robust kernel: set landmark_robust 0 with it "
                             "(--config.landmark_robust=0)")
        w = dataclasses.replace(w, lan=w.lan * c.landmark_scale, exp_l1=c.exp_l1,
                                coef=w.coef * c.prior_scale,
                                lan_nose_mouth=c.nose_mouth_weight,
                                lan_contour=c.contour_weight, lan_shape=c.landmark_shape,
                                lan_exp=c.get("landmark_expression", 1.0),
                                lan_gain=c.get("landmark_gain", 1.0),
                                lan_robust=c.get("landmark_robust", 0.0),
                                lan_yaw_noise=landmark_noise_by_yaw(
                                    c.get("landmark_noise_by_yaw", False),
                                    c.get("landmarks", "mesh")),
                                lan_open=c.get("landmark_openings", 0.0),
                                photo_kernel=c.get("photometric_kernel", "distance"),
                                **landmark_noise(c.get("landmark_noise", "none"),
                                                 c.get("landmarks", "mesh")))
        return cls(steps_landmark=c.steps_landmark, steps=c.steps, lr=c.lr, lr_pose=c.lr_pose,
                   weights=w, perceptual=c.perceptual, backend=c.backend,
                   expression=c.expression, shared=tuple(c.shared),
                   size=_fit_size(int(c.get("fit_size", 0))),
                   shared_correlation=float(c.get("shared_correlation", 0.0)))

    @classmethod
    def default(cls, **changes) -> "FitConfig":
        """configs/reconstruct.py's settings, with `changes` (FitConfig fields) applied. The
        config's `fit_size` is a size for the pipeline's 224 crop: with another `camera` the
        fit compares at that camera's own size unless `size` is given too."""
        if "camera" in changes and "size" not in changes:
            changes = dict(changes, size=None)
        return dataclasses.replace(cls.from_config(config_files.packaged("reconstruct")),
                                   **changes)


class Stage(NamedTuple):
    name: str
    fields: tuple                    # coefficient fields optimised in this stage
    landmarks_only: bool             # no rendering (landmark and coefficient terms only)


STAGES = (Stage("landmarks", ("id", "exp", "angles", "trans"), True),
          Stage("hybrid", ("id", "exp", "tex", "angles", "gamma", "trans"), False))
STAGE_NAMES = tuple(s.name for s in STAGES)


def landmark_noise(name: str, landmarks: str = "mesh") -> dict:
    """The detector noise model a config names, as `losses.LossWeights` fields: "none" (every
    point as the paper weighs it), "calibrated" (`landmark_embedding.detector_noise`: each
    point weighed by its own measured scatter, the jaw contour ~1/5 of an inner point) or
    "covariance" (`landmark_embedding.detector_covariance`: the measured covariance of dlib's
    errors about the calibrated offsets' points, so errors the points share count once), each
    from the calibration of the config's landmark source (`landmarks`: "mesh", "dlib")."""
    from facerecon_jax.fit import landmark_embedding  # noqa: PLC0415
    map_file, offsets_file = landmark_embedding.files(landmarks)
    if name == "none":
        return {}
    if name == "calibrated":
        return {"lan_noise": tuple(float(v)
                                   for v in landmark_embedding.detector_noise(map_file))}
    if name == "covariance":
        return {"lan_covariance": tuple(
            float(v) for v in landmark_embedding.detector_covariance(offsets_file).reshape(-1))}
    raise ValueError(f"landmark_noise must be 'none', 'calibrated' or 'covariance', got "
                     f"{name!r}")


def landmark_noise_by_yaw(on: bool, landmarks: str = "mesh") -> tuple:
    """`losses.LossWeights.lan_yaw_noise` for a config's `landmark_noise_by_yaw`: the shipped
    calibration's knots (`landmark_embedding.detector_noise_by_yaw`) or () (the same at every
    yaw)."""
    from facerecon_jax.fit import landmark_embedding  # noqa: PLC0415
    if not on:
        return ()
    return landmark_embedding.detector_noise_by_yaw(landmark_embedding.files(landmarks)[1])


def landmark_map_for(model: FaceModel, name: str, landmarks: str = "mesh"):
    """The landmark embedding a config names: "model" (None: the model's landmark vertices),
    "learned" (the shipped embedding of dlib's points: other vertices, the contour's by yaw) or
    "calibrated" (the model's landmark vertices and the shipped 3D offset of each of dlib's
    points from them, the contour's by yaw); both are None for models they were not made for.
    The files are those of the landmark source (`landmarks`: "mesh", "dlib")."""
    from facerecon_jax.fit import landmark_embedding  # noqa: PLC0415
    map_file, offsets_file = landmark_embedding.files(landmarks)
    if name == "model":
        return None
    if name == "learned":
        return landmark_embedding.for_model(model, map_file)
    if name == "calibrated":
        return landmark_embedding.for_model(model, offsets_file)
    raise ValueError(f"landmark_map must be 'model', 'learned' or 'calibrated', got {name!r}")


def _fit_size(size: int) -> Optional[int]:
    return None if size in (0, cam.Camera().width) else size


def at_fit_size(cfg: FitConfig):
    """(camera, weights) of the fit at `cfg.size`: the crop camera scaled to that size (the
    same field of view), and the landmark weight times (crop width / size)^2, since the
    landmark term is in squared pixels of the fitted picture while the photometric term is a
    mean over its pixels: at any size the two weigh each other as at the crop's."""
    if cfg.size is None or cfg.size == cfg.camera.width:
        return cfg.camera, cfg.weights
    f = (cfg.camera.width / cfg.size) ** 2
    return cfg.camera.resampled(cfg.size), dataclasses.replace(cfg.weights,
                                                               lan=cfg.weights.lan * f)


def resize_batch(batch: Dict[str, jnp.ndarray], size: int) -> Dict[str, jnp.ndarray]:
    """A fitting batch of crops resized to `size` (antialiased linear resampling of the images
    and the attention mask, landmarks scaled, face-chip transforms recomputed from them; the
    perceptual target features, taken from the full-size crops, are kept). Pixel centres map
    as x' = (x + 0.5) s - 0.5, the landmarks with them (`Camera.resampled`)."""
    b, h, w = batch["image"].shape[:3]
    if h == size and w == size:
        return batch
    out = dict(batch)
    out["image"] = jax.image.resize(batch["image"], (b, size, size, 3), "linear", antialias=True)
    out["attention"] = jax.image.resize(batch["attention"], (b, size, size), "linear",
                                        antialias=True)
    scale = jnp.asarray([size / w, size / h], jnp.float32)
    out["landmarks"] = (batch["landmarks"] + 0.5) * scale - 0.5
    if "chip" in batch:
        out["chip"] = face_embedding.face_chip_transforms(out["landmarks"])
    return out


def stage_steps(cfg: FitConfig, stage: str) -> int:
    return {"landmarks": cfg.steps_landmark, "hybrid": cfg.steps}[stage]


def field_mask(layout: CoeffLayout, fields) -> np.ndarray:
    """(layout.size,) float32: 1 on the entries of `fields`, else 0."""
    m = np.zeros(layout.size, np.float32)
    for f in fields:
        m[layout.slices()[f]] = 1.0
    return m


def prepare_batch(images, landmarks, attention, embed_params=None) -> Dict[str, jnp.ndarray]:
    """Batch dict for `fit`: images (B,224,224,3) float [0,1], landmarks (B,68,2) crop px."""
    batch = {"image": jnp.asarray(images, jnp.float32),
             "landmarks": jnp.asarray(landmarks, jnp.float32),
             "attention": jnp.asarray(attention, jnp.float32)}
    if embed_params is not None:
        tf = np.stack([face_embedding.face_chip_transform(lm) for lm in np.asarray(landmarks)])
        batch["chip"] = jnp.asarray(tf, jnp.float32)
        chips = face_embedding.extract_chip(batch["image"] * 255.0, batch["chip"])
        batch["target_feat"] = face_embedding.embed(embed_params, chips)
    return batch


def pad_batch(arrays, size: int):
    """Pad every (B, ...) leaf of `arrays` to (size, ...) by repeating its last row, so a short
    last batch runs the program compiled for full batches. Returns (padded, B)."""
    leaves = jax.tree_util.tree_leaves(arrays)
    b = int(np.shape(leaves[0])[0])
    if b > size:
        raise ValueError(f"batch of {b} is larger than the batch size {size}")
    if b == size:
        return arrays, b

    def pad(a):
        idx = np.minimum(np.arange(size), b - 1)
        return a[idx] if isinstance(a, np.ndarray) else jnp.asarray(a)[idx]
    return jax.tree_util.tree_map(pad, arrays), b


def initial_coefficients(layout: CoeffLayout, batch_size: int) -> jnp.ndarray:
    return layout.zeros((batch_size,))


# --------------------------------------------------------------------------- the solver

def stage_fields(cfg: FitConfig, stage: str) -> tuple:
    fields = STAGES[STAGE_NAMES.index(stage)].fields
    if cfg.expression == "neutral":
        fields = tuple(f for f in fields if f != "exp")
    elif cfg.expression != "free":
        raise ValueError(f"expression must be 'free' or 'neutral', got {cfg.expression!r}")
    return fields


def stage_program(model: FaceModel, embed_params, batch, *, layout: CoeffLayout,
                  cfg: FitConfig, stage: str, landmark_map=None):
    """(init(x) -> carry, step(carry, i) -> (carry, terms)) of one stage: the one definition of
    a fitting step, which :func:`fit_stage` scans (and a plain loop may call, for testing).
    terms: {name: (B,)} per face, with "total" the weighted sum."""
    spec = STAGES[STAGE_NAMES.index(stage)]
    n_steps = stage_steps(cfg, stage)
    camera, weights = at_fit_size(cfg)
    loss_fn = losses.make_hybrid_loss(
        model, layout, camera=camera, weights=weights, soft=cfg.soft,
        backend=cfg.backend, embed_params=embed_params, landmarks_only=spec.landmarks_only,
        landmark_map=landmark_map)
    fields = stage_fields(cfg, stage)
    mask = jnp.asarray(field_mask(layout, fields))
    shared = jnp.asarray(field_mask(layout, [f for f in cfg.shared if f in fields]))
    pose = field_mask(layout, ("angles", "trans"))
    lr = jnp.asarray(cfg.lr * (1.0 - pose) + cfg.lr_pose * pose)
    sched = optax.cosine_decay_schedule(1.0, max(n_steps, 1), alpha=0.1)
    opt = optax.chain(optax.scale_by_adam(), optax.scale_by_schedule(sched))
    exp_sl = layout.slices()["exp"]
    blend = model.is_blendshape
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def init(x):
        return x, opt.init(x)

    def step(carry, i):
        del i
        x, state = carry
        (_, terms), g = grad_fn(x, batch)
        # the loss is a mean over the batch: scaled back to per-face gradients, so a face's fit
        # does not depend on the batch it is in (nor on padding)
        g = g * (mask * x.shape[0])
        if cfg.shared:
            group = batch["group"]
            pooled = jax.ops.segment_sum(g, group, num_segments=x.shape[0])[group]
            g = jnp.where(shared > 0, pooled, g)
        upd, state = opt.update(g, state, x)
        x = x - lr * upd
        if blend:           # blendshape weights live in [0, 1]
            x = x.at[:, exp_sl].set(jnp.clip(x[:, exp_sl], 0.0, 1.0))
        terms = dict(terms, total=losses.total(terms, weights))
        return (x, state), terms

    return init, step


@functools.partial(jax.jit, static_argnames=("layout", "cfg", "stage"))
def fit_stage(model: FaceModel, embed_params, landmark_map, x, batch, *, layout: CoeffLayout,
              cfg: FitConfig, stage: str):
    """Run all steps of one stage in one device program. Returns (x (B, D), terms {name:
    (n_steps, B)})."""
    init, step = stage_program(model, embed_params, batch, layout=layout, cfg=cfg, stage=stage,
                               landmark_map=landmark_map)
    n_steps = stage_steps(cfg, stage)
    every = cfg.report_every
    stage_id = STAGE_NAMES.index(stage)

    def body(carry, i):
        carry, terms = step(carry, i)
        if every > 0:
            done = i + 1
            jax.lax.cond((done % every == 0) | (done == n_steps),
                         lambda: jax.debug.callback(_report, stage_id, done, n_steps,
                                                    jnp.mean(terms["total"])),
                         lambda: None)
        return carry, terms

    (x, _), terms = jax.lax.scan(body, init(x), jnp.arange(n_steps))
    return x, terms


_LISTENERS: list = []


def _report(stage_id, step, n_steps, loss):
    for fn in tuple(_LISTENERS):
        fn(STAGE_NAMES[int(stage_id)], int(step), int(n_steps), float(loss))


@contextlib.contextmanager
def reporting(fn: Optional[Callable[[str, int, int, float], None]]):
    """Within the block, `fn(stage, step, n_steps, mean_loss)` hears the solver's progress."""
    if fn is None:
        yield
        return
    _LISTENERS.append(fn)
    try:
        yield
    finally:
        _LISTENERS.remove(fn)


def shared_prior_scale(n, correlation: float = 0.0) -> np.ndarray:
    """Per picture of a joint fit, the share of the prior of the shared fields it carries,
    for a person with n pictures: (1 + (n - 1) rho) / n, so the person's prior counts
    1 + (n - 1) rho times in all.

    Why: with n pictures whose landmark errors are independent, the prior is counted once
    (rho = 0) and the identity leaves the mean face as the pictures add up. But the detector's
    error on one face is partly the same in every picture of it (its bias for that face's
    features); if a share rho of the error variance is common, n pictures carry the
    information of n / (1 + (n - 1) rho) independent ones (the design effect of correlated
    samples), and so does the landmark term's pull against the prior."""
    n = np.asarray(n, np.float64)
    if not 0.0 <= correlation <= 1.0:
        raise ValueError(f"shared_correlation must be in [0, 1], got {correlation}")
    return (1.0 + (n - 1.0) * correlation) / np.maximum(n, 1.0)


def fit(model: FaceModel, layout: CoeffLayout, batch: Dict[str, jnp.ndarray],
        cfg: Optional[FitConfig] = None, init: Optional[jnp.ndarray] = None, embed_params=None,
        progress: Optional[Callable[[str, int, int, float, Optional[float]], None]] = None,
        landmark_map=None, group=None):
    """Fit coefficients (B, layout.size) to a prepared batch. Returns (x, history).

    `landmark_map`: a `landmark_embedding.LandmarkMap` for the detector's landmarks (None: the
    model's landmark vertices). `group` (B,) ints, with `cfg.shared`: images of one person
    share those fields (joint fit; their starting values are averaged over the group, and
    the prior of the shared fields is counted 1 + (n - 1) `cfg.shared_correlation` times per
    group of n: `shared_prior_scale`).

    `progress(stage, step, n_steps, mean_loss, seconds_per_step)` is called every
    `cfg.report_every` steps; seconds_per_step is None until two reports of a stage have come
    (the first one includes the compilation, if any).
    history[stage]: {term: (n_steps, B) numpy}; history[stage + "_seconds"]: wall time.
    `cfg` None: configs/reconstruct.py's settings.
    """
    cfg = cfg if cfg is not None else FitConfig.default()
    model = model.to_jax()
    if cfg.size is not None:
        if cfg.size > cfg.camera.width:
            raise ValueError(f"fitting at size {cfg.size} would enlarge the camera's "
                             f"{cfg.camera.width} px pictures; give a size up to "
                             f"{cfg.camera.width}, or None to fit at the camera's size")
        if batch["image"].shape[2] != cfg.camera.width:
            raise ValueError(f"fitting at size {cfg.size} resizes crops of the camera's "
                             f"{cfg.camera.width} px, got pictures of "
                             f"{batch['image'].shape[2]} px")
        batch = resize_batch(batch, cfg.size)
    b = batch["image"].shape[0]
    x = jnp.asarray(init if init is not None else initial_coefficients(layout, b), jnp.float32)
    if cfg.shared:
        group = np.arange(b) if group is None else np.asarray(group)
        _, group = np.unique(group, return_inverse=True)
        counts = np.bincount(group, minlength=b)
        cols = field_mask(layout, cfg.shared) > 0
        mean = jax.ops.segment_sum(x, group, num_segments=b) / np.maximum(counts, 1)[:, None]
        x = jnp.where(cols, mean[group], x)
        batch = dict(batch, group=jnp.asarray(group, jnp.int32),
                     shared_scale=jnp.asarray(shared_prior_scale(counts[group],
                                                                 cfg.shared_correlation),
                                              jnp.float32))
    history = {}
    # the compiled stages do not depend on shared_correlation (only the batch's shared_scale
    # does): one compilation serves every value
    stage_cfg = dataclasses.replace(cfg, shared_correlation=0.0)
    for spec in STAGES:
        n_steps = stage_steps(cfg, spec.name)
        if n_steps <= 0:
            continue
        ep = embed_params if (cfg.perceptual and not spec.landmarks_only) else None
        listener = None
        if progress is not None:
            last = {}

            def listener(stage, step, n, loss, last=last):
                now = time.perf_counter()
                sps = None
                if "t" in last and step > last["step"]:
                    sps = (now - last["t"]) / (step - last["step"])
                last.update(t=now, step=step)
                progress(stage, step, n, loss, sps)
        t0 = time.perf_counter()
        with reporting(listener):
            x, terms = fit_stage(model, ep, landmark_map, x, batch, layout=layout,
                                 cfg=stage_cfg, stage=spec.name)
            terms = jax.device_get(terms)
        history[spec.name] = {k: np.asarray(v) for k, v in terms.items()}
        history[spec.name + "_seconds"] = time.perf_counter() - t0
    return x, history
