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

from facerecon_jax.io import cli

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
    from facerecon_jax.geometry import coefficients
    from facerecon_jax.pipeline import render_job
    from facerecon_jax.models.model_loading import load_face_model

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
    layout, parts = render_job.face_parts(
        model, coefficients.CoeffLayout.for_model(model, cfg.light), _COEFFS.value,
        _RANDOM.value, _SEED.value)
    for w in render_job.render_and_write(model, layout, parts, cfg, out_dir, _NAME.value):
        print(f"wrote {w}")


def run():
    cli.run(main, TOOL)


if __name__ == "__main__":
    run()
