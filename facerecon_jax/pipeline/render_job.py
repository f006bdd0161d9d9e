"""facerecon-render's job: a face's coefficients (the mean face lit and turned a little, a
random face, or a <name>_coeffs.npz), rendered and exported (the launcher only parses flags)."""
from __future__ import annotations

import os
import time

import jax.numpy as jnp
import numpy as np
from absl import logging

from facerecon_jax.geometry import camera as cam
from facerecon_jax.geometry import coefficients
from facerecon_jax.io import export
from facerecon_jax.render import renderer


def face_parts(model, layout, coeffs_file=None, random: bool = False, seed: int = 0):
    """(layout, parts (1, ...) per field): from a coefficient file (its light layout wins),
    else the mean face turned and lit from the side, with random identity, expression,
    texture, pose and light when `random`."""
    if coeffs_file:
        parts = {k: jnp.asarray(v)[None] if np.ndim(v) == 1 else jnp.asarray(v)
                 for k, v in export.load_coefficients(coeffs_file).items()
                 if k in coefficients.FIELDS}
        if parts["gamma"].shape[-1] != layout.n_gamma:
            layout = coefficients.CoeffLayout.for_model(
                model, "mono" if parts["gamma"].shape[-1] == 9 else "rgb")
        return layout, parts
    parts = layout.split(layout.zeros((1,)))
    parts["angles"] = jnp.array([[0.05, 0.35, 0.0]])
    g = np.zeros(layout.n_gamma, np.float32)
    for c in range(layout.n_gamma // 9):
        g[c * 9 + 1], g[c * 9 + 2], g[c * 9 + 3] = -0.15, 0.1, -0.12
    parts["gamma"] = jnp.asarray(g)[None]
    if random:
        rng = np.random.default_rng(seed)
        parts["id"] = jnp.asarray(rng.normal(size=(1, model.n_id)), jnp.float32)
        parts["tex"] = jnp.asarray(rng.normal(size=(1, model.n_tex)), jnp.float32)
        exp = rng.normal(size=(1, model.n_exp)) * 0.5
        if model.is_blendshape:
            exp = np.clip(rng.uniform(-0.3, 0.6, (1, model.n_exp)), 0, 1)
        parts["exp"] = jnp.asarray(exp, jnp.float32)
        parts["angles"] = jnp.asarray(rng.uniform(-0.3, 0.3, (1, 3)) * [0.5, 1, 0.3],
                                      jnp.float32)
        shared = np.tile(rng.normal(size=9) * 0.08, layout.n_gamma // 9)
        tint = rng.normal(size=layout.n_gamma) * 0.01
        parts["gamma"] = parts["gamma"] + jnp.asarray(shared + tint, jnp.float32)[None]
    return layout, parts


def render_and_write(model, layout, parts, cfg, out_dir, name: str) -> list:
    """<name>.png, .obj, .ply, _albedo.obj and _coeffs.npz in out_dir; returns the paths.
    `cfg`: configs/render.py's fields (size, camera, backend, soft)."""
    x = layout.join(parts)
    camera = cam.Camera(**cfg.camera).scaled(cfg.size)
    rcfg = renderer.RenderConfig(camera=camera, backend=cfg.backend, soft=cfg.soft)
    bg = export.gradient_background(camera.height, camera.width)
    t1 = time.time()
    out = renderer.render_jit(model.to_jax(), x, layout, rcfg, jnp.asarray(bg)[None])
    image = np.asarray(out["image"][0])
    logging.info("rendered %dx%d in %.2fs (with compilation)", camera.width, camera.height,
                 time.time() - t1)
    verts = renderer.face_vertices(model.to_jax(), layout.split(x), camera)
    shape = np.asarray(verts["posed"][0])
    colours = np.asarray(verts["colour"][0])
    base = os.path.join(out_dir, name)
    return [
        export.save_png(base + ".png", image),
        export.save_mesh(base + ".obj", shape, model.triangles, colours),
        export.save_mesh(base + ".ply", shape, model.triangles, colours),
        export.save_mesh(base + "_albedo.obj", shape, model.triangles,
                         np.asarray(verts["albedo"][0])),
        export.save_coefficients(base + "_coeffs.npz",
                                 {k: np.asarray(v[0]) for k, v in layout.split(x).items()}),
    ]
