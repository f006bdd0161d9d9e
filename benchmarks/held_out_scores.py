"""A trained R-Net scored again on its config's held-out generated faces, at several set sizes.

  python benchmarks/held_out_scores.py --workdir RUN [--config configs/identity.py]
      [--seed 0] [--examples 128,1024] [--no_mirror]

The faces are the training report's (`train.held_out_faces`: the config's seed + 10,000, its
condition and picture size); each example has its own generator, so the first 128 of 1,024 are
the 128 a report of 128 scores. For each size the script prints the landmark NME, the
identity-only shape error against the mean face's, and the correlation of each of the first
10 identity coefficients with the truth with its standard error ((1 - r^2) / sqrt(n - 1)), for
one picture's prediction and for the mirror-averaged one (`load_predictor`'s mirror_model),
then one JSON line. What it is for: a correlation near 0.5 over 128 faces is known to +-0.07,
so whether a run "reads mode k at >= 0.5" needs more faces than the 128 the earlier reports
used (benchmarks/RESULTS.md, "1,024 held-out faces").
"""
import argparse
import json
import pathlib
import sys


sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from facerecon_jax.geometry.coefficients import CoeffLayout  # noqa: E402
from facerecon_jax.io import config_files  # noqa: E402
from facerecon_jax.models.model_loading import load_face_model  # noqa: E402
from facerecon_jax.training import train  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", required=True, help="a facerecon-train workdir")
    ap.add_argument("--config", default=str(ROOT / "configs" / "identity.py"),
                    help="the config the run was trained with (its held-out faces)")
    ap.add_argument("--seed", type=int, default=None, help="the run's --config.seed")
    ap.add_argument("--examples", default="128,1024",
                    help="comma-separated set sizes; each is the first n of the largest")
    ap.add_argument("--no_mirror", action="store_true",
                    help="one picture's predictions only")
    args = ap.parse_args()

    config = config_files.get_config(args.config)
    if args.seed is not None:
        config.seed = args.seed
    sizes = sorted({int(s) for s in args.examples.split(",")})
    config.eval_examples = sizes[-1]
    face_model = load_face_model(config.face_model)
    layout = CoeffLayout.for_model(face_model, config.light)
    held = train.held_out_faces(config, face_model, layout)
    camera = train.training_camera(config)
    readings = [("one picture", None)] + ([] if args.no_mirror else
                                           [("mirror-averaged", face_model)])
    out = []
    for name, mirror_model in readings:
        predict = train.load_predictor(args.workdir, mirror_model=mirror_model)[0]
        for n in sizes:
            faces = {k: v[:n] for k, v in held.items()}
            r = train.evaluate_synthetic(predict, face_model, layout, faces, camera)
            corr, se = r["identity_correlation_first10"], r["identity_correlation_first10_se"]
            ratio = r["identity_shape_rmse_mm"] / r["mean_face_identity_shape_rmse_mm"]
            print(f"{name:16s} {n:5d} faces: NME {r['landmark_nme']:.4f}, identity-only shape "
                  f"{r['identity_shape_rmse_mm']:.3f} mm ({ratio:.3f}x the mean face's "
                  f"{r['mean_face_identity_shape_rmse_mm']:.3f}); correlations "
                  + " ".join(f"{c:.3f}" for c in corr) + f" (>= 0.5: {sum(c >= 0.5 for c in corr)}"
                  f"; standard errors {min(se):.3f}-{max(se):.3f})", flush=True)
            out.append({"reading": name, **r})
    print(json.dumps({"workdir": str(args.workdir), "seed": int(config.seed), "scores": out}))


if __name__ == "__main__":
    main()
