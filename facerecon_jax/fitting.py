"""Analysis by synthesis: optimise coefficients per image against the hybrid loss.

This is how a fresh install reconstructs faces without a trained R-Net: start from the mean face
(or from an R-Net prediction), then run Adam (optax) on the coefficients of a whole batch at once,
jitted, in two stages:
  1. landmarks + regularisers, pose / identity / expression only (gets the face in place);
  2. the full hybrid loss of DESIGN section 5: photometric with the skin attention mask,
     landmarks, perceptual (dlib's face embedding on landmark-aligned chips), regularisers.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Callable, Dict, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from facerecon_jax import camera as cam
from facerecon_jax import face_embedding, losses
from facerecon_jax.coefficients import CoeffLayout
from facerecon_jax.face_model import FaceModel


@dataclasses.dataclass(frozen=True)
class FitConfig:
    steps_landmark: int = 150        # stage 1
    steps: int = 200                 # stage 2
    lr: float = 0.02
    lr_pose: float = 0.01
    weights: losses.LossWeights = losses.LossWeights()
    perceptual: bool = True
    soft: bool = False
    backend: str = "scatter"
    camera: cam.Camera = cam.Camera()


def _field_mask(layout: CoeffLayout, fields) -> np.ndarray:
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


def initial_coefficients(layout: CoeffLayout, batch_size: int) -> jnp.ndarray:
    return layout.zeros((batch_size,))


def fit(model: FaceModel, layout: CoeffLayout, batch: Dict[str, jnp.ndarray],
        cfg: FitConfig = FitConfig(), init: Optional[jnp.ndarray] = None, embed_params=None,
        progress: Optional[Callable[[str, int, int, Dict[str, float], float], None]] = None):
    """Fit coefficients (B, layout.size) to a prepared batch. Returns (x, history).

    `progress(stage_name, step, n_steps, terms, seconds_per_step)` is called now and then.
    history: per stage, per step, the mean of each loss term.
    """
    model = model.to_jax()
    b = batch["image"].shape[0]
    x = jnp.asarray(init if init is not None else initial_coefficients(layout, b), jnp.float32)
    blend = model.is_blendshape
    exp_sl = layout.slices()["exp"]
    history = {}
    stages = [("landmarks", 1, cfg.steps_landmark, ("id", "exp", "angles", "trans")),
              ("hybrid", 2, cfg.steps, ("id", "exp", "tex", "angles", "gamma", "trans"))]
    pose_mask = jnp.asarray(_field_mask(layout, ("angles", "trans")))
    for name, stage, n_steps, fields in stages:
        if n_steps <= 0:
            continue
        loss_fn = losses.make_hybrid_loss(
            model, layout, camera=cfg.camera, weights=cfg.weights, soft=cfg.soft,
            backend=cfg.backend, embed_params=embed_params if cfg.perceptual else None,
            landmarks_only=stage == 1)
        mask = jnp.asarray(_field_mask(layout, fields))
        sched = optax.cosine_decay_schedule(1.0, n_steps, alpha=0.1)
        opt = optax.chain(optax.scale_by_adam(), optax.scale_by_schedule(sched))
        state = opt.init(x)
        lr_vec = cfg.lr * (1 - pose_mask) + cfg.lr_pose * pose_mask

        @jax.jit
        def step(x, state, batch):
            (val, terms), g = jax.value_and_grad(loss_fn, has_aux=True)(x, batch)
            g = g * mask
            upd, state = opt.update(g, state, x)
            x = x - lr_vec * upd
            if blend:
                x = x.at[:, exp_sl].set(jnp.clip(x[:, exp_sl], 0.0, 1.0))
            return x, state, val, {k: jnp.mean(v) for k, v in terms.items()}

        rec = []
        t0 = time.perf_counter()
        t_first = None
        for i in range(n_steps):
            x, state, val, terms = step(x, state, batch)
            if i == 0:
                jax.block_until_ready(x)
                t_first = time.perf_counter()
            terms = {k: float(v) for k, v in terms.items()}
            terms["total"] = float(val)
            rec.append(terms)
            if progress is not None and (i % 10 == 0 or i == n_steps - 1):
                sps = (time.perf_counter() - t_first) / max(i, 1) if i else float("nan")
                progress(name, i + 1, n_steps, terms, sps)
        history[name] = rec
        history[name + "_seconds"] = time.perf_counter() - t0
        history[name + "_compile_seconds"] = (t_first - t0) if t_first else 0.0
    return x, history
