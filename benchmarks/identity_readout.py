"""What analysis-by-synthesis reads of each identity mode from R-Net's held-out pictures.

  python benchmarks/identity_readout.py [--config configs/identity.py] [--size 96]
      [--examples 128] [--landmark_noise 0.0] [--checkpoint RUN]

The 128 held-out generated faces of an R-Net config's report (`train.evaluate_synthetic`: the
same seed, condition and picture size) are fitted one by one with the project's fitting
(configs/reconstruct.py's stages, steps and priors, at the pictures' own size), given the
faces' true 68 landmarks, or those landmarks with Gaussian noise whose mean error is
`--landmark_noise` inter-ocular distances (outer eye corners, as the report's NME). The exact
landmarks are weighed as the paper weighs them (nose and inner mouth x20, squared error: the
detector-noise model of the defaults is dlib's, not theirs). Prints the correlation of each
of the first 10 fitted identity coefficients with the truth, the report's figure for R-Net,
then one JSON line. With `--checkpoint RUN` (a training workdir) the fits start from that
R-Net's predictions and run configs/reconstruct.py's refinement steps (`refine_steps_landmark`
+ `refine_steps`, as `facerecon-reconstruct --mode refine`), and R-Net's own correlations are
printed beside them. `--steps L,H` sets the landmark and hybrid steps (e.g. the refinement's
20,60 from the mean face, to see what R-Net's start is worth).

The fit sees the pictures' true landmarks and renders with the generator's own image model,
so its correlations bound what the pictures carry of each mode at that size, from above: a
network reading the same pictures below them is short of training, not of pixels.
"""
import argparse
import dataclasses
import json
import pathlib
import sys
import time

import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from facerecon_jax.fit import fitting  # noqa: E402
from facerecon_jax.geometry import camera as cam  # noqa: E402
from facerecon_jax.geometry import metrics  # noqa: E402
from facerecon_jax.geometry.coefficients import CoeffLayout  # noqa: E402
from facerecon_jax.io import config_files  # noqa: E402
from facerecon_jax.models.model_loading import load_face_model  # noqa: E402
from facerecon_jax.training import train  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]


def noisy_landmarks(landmarks, nme: float, seed: int = 0) -> np.ndarray:
    """landmarks (B, 68, 2) plus isotropic Gaussian noise whose mean point error is `nme`
    outer-eye-corner distances (a 2D Gaussian of std s has mean length s sqrt(pi / 2))."""
    lm = np.asarray(landmarks, np.float64)
    if not nme:
        return lm.astype(np.float32)
    iod = np.linalg.norm(lm[:, 36] - lm[:, 45], axis=-1)
    sigma = nme / np.sqrt(np.pi / 2)
    noise = np.random.default_rng(seed).normal(size=lm.shape) * sigma * iod[:, None, None]
    return (lm + noise).astype(np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "identity.py"))
    ap.add_argument("--size", type=int, default=0, help="picture size (0: the config's)")
    ap.add_argument("--examples", type=int, default=0, help="0: the config's eval_examples")
    ap.add_argument("--landmark_noise", type=float, default=0.0,
                    help="mean landmark error to add, inter-ocular distances")
    ap.add_argument("--checkpoint", default="",
                    help="training workdir: start from its R-Net, refinement steps only")
    ap.add_argument("--steps", default="",
                    help="'L,H': landmark and hybrid steps (default: the fit's, or with "
                         "--checkpoint the refinement's)")
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    config = config_files.get_config(args.config)
    size = args.size or config.image_size
    n = args.examples or config.eval_examples
    model = load_face_model(config.face_model)
    layout = CoeffLayout.for_model(model, config.light)
    config.eval_examples = n
    held = train.held_out_faces(config, model, layout, size)
    cfg = fitting.FitConfig.default(perceptual=False, camera=cam.Camera().scaled(size))
    cfg = dataclasses.replace(cfg, weights=dataclasses.replace(
        cfg.weights, lan_nose_mouth=20.0, lan_robust=0.0, lan_noise=()))
    images = held["image"].astype(np.float32) / 255.0
    init = None
    if args.checkpoint:
        predict, _ = train.load_predictor(args.checkpoint)
        init = train.predict_all(predict, images, args.batch)
        rc = config_files.packaged("reconstruct")
        cfg = dataclasses.replace(cfg, steps_landmark=rc.refine_steps_landmark,
                                  steps=rc.refine_steps)
    lm = noisy_landmarks(held["landmarks"], args.landmark_noise)
    added = float(np.mean(metrics.landmark_nme(lm, held["landmarks"])))
    if args.steps:
        lan_steps, hybrid_steps = (int(v) for v in args.steps.split(","))
        cfg = dataclasses.replace(cfg, steps_landmark=lan_steps, steps=hybrid_steps)
    t0 = time.time()
    xs = []
    for i in range(0, n, args.batch):
        sl = slice(i, min(n, i + args.batch))
        batch = fitting.prepare_batch(jnp.asarray(images[sl]), jnp.asarray(lm[sl]),
                                      jnp.ones(images[sl].shape[:3], jnp.float32))
        x, _ = fitting.fit(model, layout, batch, cfg,
                           init=None if init is None else jnp.asarray(init[sl]))
        xs.append(np.asarray(x))
        print(f"fitted {sl.stop}/{n} ({time.time() - t0:.0f} s)", flush=True)
    corr = train.identity_correlations(layout, np.concatenate(xs), held["coeffs"])
    start = {}
    if init is not None:
        start = {"rnet_correlation_first10": train.identity_correlations(layout, init,
                                                                          held["coeffs"]),
                 "steps": [cfg.steps_landmark, cfg.steps]}
        print("R-Net alone: " + ", ".join(f"{c:.2f}" for c in start["rnet_correlation_first10"])
              + f"; refined with {cfg.steps_landmark} + {cfg.steps} steps:")
    print(f"{n} held-out faces at {size} px, landmark noise {added:.3f} (NME): "
          f"{cfg.steps_landmark} + {cfg.steps} steps: "
          f"correlations of the first 10 identity coefficients "
          + ", ".join(f"{c:.2f}" for c in corr))
    print(json.dumps({"size": size, "examples": n, "landmark_nme": added,
                      "identity_correlation_first10": corr, **start,
                      "seconds": time.time() - t0}))


if __name__ == "__main__":
    main()
