"""Render a face from the default face model (or a BFM) and export it.

  facerecon-render --output_dir out/            # the mean face, lit and turned a little
  facerecon-render --random --seed 3 --output_dir out/
  facerecon-render --coeffs face_coeffs.npz --model /path/to/BFM --output_dir out/

Writes <name>.obj and <name>.ply (vertex colours), <name>_coeffs.npz and <name>.png.
"""
import os
import pathlib
import time

from absl import flags, logging

from facerecon_jax import cli

_CONFIG = cli.define_config(
    "facerecon-render", os.path.join(os.path.dirname(__file__), "..", "configs", "render.py"),
    "Render config (configs/render.py).")
_MODEL = flags.DEFINE_string("model", "default",
                             "'default' (ICT Face Model Light), a face-model .npz, or BFM files "
                             "(BFM_model_front.mat, or a folder with 01_MorphableModel.mat).")
_OUT = flags.DEFINE_string("output_dir", "out", "Where to write results.")
_NAME = flags.DEFINE_string("name", "face", "Base name of the files written.")
_COEFFS = flags.DEFINE_string("coeffs", None, "A <name>_coeffs.npz to render instead.")
_RANDOM = flags.DEFINE_bool("random", False, "Random identity, expression, texture and light.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed for --random.")

TOOL = cli.Tool("facerecon-render", __doc__, {
    "size": "image size in pixels",
    "light": "mono (9 SH coefficients) or rgb (27)",
    "backend": "rasterizer: scatter (CPU/GPU) or tiled (TPU)",
})


def main(argv):
    del argv
    import jax.numpy as jnp
    import numpy as np

    from facerecon_jax import camera as cam
    from facerecon_jax import coefficients, export, renderer
    from facerecon_jax.model_loading import load_face_model

    cfg = _CONFIG.value
    if _COEFFS.value:
        coeffs = pathlib.Path(_COEFFS.value).expanduser()
        if not coeffs.exists():
            raise cli.UsageError(f"--coeffs {_COEFFS.value}: no such file")
        if coeffs.is_dir():
            raise cli.UsageError(f"--coeffs {_COEFFS.value} is a folder; give one "
                                 "<name>_coeffs.npz file (facerecon-reconstruct writes them)")
    out_dir = cli.output_dir(_OUT.value)
    t0 = time.time()
    model = load_face_model(_MODEL.value)
    logging.info("face model: %s (%d vertices, %d triangles) in %.1fs", model.info.get("name"),
                 model.n_vertices, model.n_triangles, time.time() - t0)
    layout = coefficients.CoeffLayout.for_model(model, cfg.light)
    if _COEFFS.value:
        parts = {k: jnp.asarray(v)[None] if np.ndim(v) == 1 else jnp.asarray(v)
                 for k, v in export.load_coefficients(_COEFFS.value).items()
                 if k in coefficients.FIELDS}
        if parts["gamma"].shape[-1] != layout.n_gamma:
            layout = coefficients.CoeffLayout.for_model(
                model, "mono" if parts["gamma"].shape[-1] == 9 else "rgb")
    else:
        parts = layout.split(layout.zeros((1,)))
        parts["angles"] = jnp.array([[0.05, 0.35, 0.0]])
        g = np.zeros(layout.n_gamma, np.float32)
        for c in range(layout.n_gamma // 9):
            g[c * 9 + 1], g[c * 9 + 2], g[c * 9 + 3] = -0.15, 0.1, -0.12
        parts["gamma"] = jnp.asarray(g)[None]
        if _RANDOM.value:
            rng = np.random.default_rng(_SEED.value)
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
    base = os.path.join(out_dir, _NAME.value)
    written = [
        export.save_png(base + ".png", image),
        export.save_mesh(base + ".obj", shape, model.triangles, colours),
        export.save_mesh(base + ".ply", shape, model.triangles, colours),
        export.save_mesh(base + "_albedo.obj", shape, model.triangles,
                         np.asarray(verts["albedo"][0])),
        export.save_coefficients(base + "_coeffs.npz",
                                 {k: np.asarray(v[0]) for k, v in layout.split(x).items()}),
    ]
    for w in written:
        print(f"wrote {w}")


def run():
    cli.run(main, TOOL)


if __name__ == "__main__":
    run()
