"""How much each identity mode changes a picture, by picture size: why small R-Nets see mode 1 only.

  python benchmarks/identity_visibility.py [--sizes 64 128 224] [--modes 10] [--faces 16]

Generated faces of the debug config's condition ("indoor": the training data of configs/debug.py)
are rendered at each size with the project's renderer, then again with one identity coefficient
raised by 1 (one prior standard deviation: generated identities are N(0, 1)). For each of the
first `--modes` identity modes it prints, averaged over the faces:

  * the RMS displacement of the 68 landmarks, in pixels of that picture size;
  * the RMS change of the shading inside the face (8-bit levels over the pixels both renders
    cover), next to the generator's pixel noise (N(0, s), s uniform in 0..0.02, i.e. up to ~5
    levels) and 8-bit quantisation (1 level);
  * how many pixels of the outline change sides (covered by one render only).

A mode whose whole 1-sigma effect is a fraction of a pixel and a few levels is what a network
must read to predict that coefficient; the output is the evidence behind the per-mode
correlations of the R-Net held-out report (benchmarks/RESULTS.md). Prints a table, then one
JSON line.
"""
import argparse
import json
import pathlib
import sys

import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from facerecon_jax.geometry import camera as cam  # noqa: E402
from facerecon_jax.geometry.coefficients import CoeffLayout  # noqa: E402
from facerecon_jax.models.model_loading import load_face_model  # noqa: E402
from facerecon_jax.render import renderer  # noqa: E402
from facerecon_jax.training import synthetic  # noqa: E402


def mode_effects(model, layout, coeffs, size: int, modes: int) -> dict:
    """{"landmarks_px", "levels", "outline_px"}: (modes,) means over the faces of `coeffs`."""
    config = renderer.RenderConfig(camera=cam.Camera().scaled(size), colour_only=True)
    base = renderer.render_jit(model, jnp.asarray(coeffs), layout, config)
    start = layout.slices()["id"].start
    lm_px, levels, outline = [], [], []
    for k in range(modes):
        moved = np.array(coeffs, np.float32, copy=True)
        moved[:, start + k] += 1.0
        out = renderer.render_jit(model, jnp.asarray(moved), layout, config)
        d_lm = np.asarray(out["landmarks"] - base["landmarks"])
        lm_px.append(float(np.mean(np.sqrt(np.mean(np.sum(d_lm ** 2, -1), -1)))))
        img0 = np.clip(np.asarray(base["image"]), 0, 1) * 255
        img1 = np.clip(np.asarray(out["image"]), 0, 1) * 255
        m0, m1 = np.asarray(base["mask"]) > 0, np.asarray(out["mask"]) > 0
        diff2 = np.sum((img1 - img0) ** 2, -1) / 3.0
        levels.append(float(np.mean([np.sqrt(diff2[i][m0[i] & m1[i]].mean())
                                     for i in range(len(coeffs))])))
        outline.append(float(np.mean(np.sum(m0 ^ m1, axis=(1, 2)))))
    return {"landmarks_px": lm_px, "levels": levels, "outline_px": outline}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 224])
    ap.add_argument("--modes", type=int, default=10)
    ap.add_argument("--faces", type=int, default=16)
    ap.add_argument("--condition", default="indoor")
    ap.add_argument("--model", default="default")
    args = ap.parse_args()
    model = load_face_model(args.model)
    layout = CoeffLayout.for_model(model, "rgb")
    coeffs = synthetic.sample_coefficients(np.random.default_rng(7), model, layout, args.faces,
                                           args.condition)
    res = {size: mode_effects(model, layout, coeffs, size, args.modes) for size in args.sizes}
    head = "mode | " + " | ".join(f"{s} px: landmarks, shading, outline" for s in args.sizes)
    print(head)
    for k in range(args.modes):
        print(f"{k + 1:4d} | " + " | ".join(
            f"{res[s]['landmarks_px'][k]:.2f} px, {res[s]['levels'][k]:.1f} levels, "
            f"{res[s]['outline_px'][k]:.0f} px" for s in args.sizes))
    print(json.dumps({"condition": args.condition, "faces": args.faces,
                      "by_size": {str(s): v for s, v in res.items()}}))


if __name__ == "__main__":
    main()
