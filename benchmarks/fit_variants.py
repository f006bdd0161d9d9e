"""Fitting variants on a subset of the evaluation benchmark: single fits, their average, and
the joint fit, per variant (how docs/accuracy.md items 13-15 rank settings before a complete run).

  python benchmarks/fit_variants.py [--people 6] [--images 3] [--seed S] \
      [--variants '{"default": {}, "prior x4": {"prior_scale": 4.0}}']

The first `--people` of configs/evaluate.py's people (seed 2026, or `--seed`: people apart from
the evaluation's), `--images` pictures each in every condition, detected and prepared once.
For each variant (configs/reconstruct.py overrides,
applied to the single fits and to configs/evaluate.py's joint fit alike): the mean over
conditions of the single-image scores, the score of each person's averaged single fits, and
the joint fit of each person's pictures over all conditions; ratios to the mean face. About
4 minutes a variant on a 2-core CPU after ~1 minute of preparation. Prints one row per variant,
then one JSON line.
"""
import argparse
import json
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from facerecon_jax.eval import benchmark_faces, evaluation  # noqa: E402
from facerecon_jax.fit import fitting  # noqa: E402
from facerecon_jax.geometry.coefficients import CoeffLayout  # noqa: E402
from facerecon_jax.io import config_files  # noqa: E402
from facerecon_jax.models.model_loading import load_face_model  # noqa: E402
from facerecon_jax.photo import detection  # noqa: E402
from facerecon_jax.pipeline import reconstruct  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=6)
    ap.add_argument("--images", type=int, default=3)
    ap.add_argument("--seed", type=int, default=None,
                    help="people and pictures (default: the evaluation's own, configs/evaluate.py;"
                         " another seed holds out the evaluation's people when choosing settings)")
    ap.add_argument("--variants", default='{"default": {}}',
                    help="JSON {name: {reconstruct-config field: value}}")
    args = ap.parse_args()
    variants = json.loads(args.variants)
    c = config_files.packaged("evaluate")
    if args.seed is not None:
        c.seed = args.seed
    model = load_face_model(c.fit.model)
    head = benchmark_faces.load_head()
    people = evaluation.make_people(args.people, c.seed, c.detail_mm, head)
    pictures = {cond: evaluation.make_benchmark(people, args.images, cond, c.seed, c.size, head)
                for cond in c.conditions}
    prepared_by_source = {}

    def prepared_for(source):
        """{condition: (benchmark, prepared faces, their indices)} with the landmark source's
        points (a variant's `landmarks`), detected once per source."""
        if source not in prepared_by_source:
            det = detection.FaceDetector(landmarks=source)
            prepared_by_source[source] = {
                cond: (bench, *evaluation.prepare_images(model, bench.images, detector=det)[:2])
                for cond, bench in pictures.items()}
        return prepared_by_source[source]

    def score(ids):
        return [evaluation.score_mesh(model, evaluation.neutral_mesh(model, i), people.scans[p],
                                      c.radius_mm)["rmse_mm"] for p, i in enumerate(ids)]
    mean_face = float(np.mean(score([np.zeros(model.n_id)] * args.people)))
    print(f"mean face {mean_face:.3f} mm ({args.people} people x {args.images} pictures x "
          f"{len(c.conditions)} conditions, seed {c.seed})")
    print(f"variant | single (x; {' / '.join(c.conditions)}) | averaging (x) | "
          "joint fit mm (x) | seconds")
    out = {"mean_face": mean_face, "variants": {}}
    for name, overrides in variants.items():
        t0 = time.time()
        fit_cfg, fc = evaluation.fit_config(c.fit, dict(overrides))
        layout = CoeffLayout.for_model(model, fc.light)
        lmap = fitting.landmark_map_for(model, fc.landmark_map, fc.landmarks)
        faces, groups, xs, single = [], [], [], []
        for bench, prepared, where in prepared_for(fc.landmarks).values():
            x = evaluation.fit_prepared(model, layout, prepared, where, len(bench.images),
                                        fit_cfg, None, batch_size=fc.batch_size,
                                        landmark_map=lmap)
            single.append(np.mean(evaluation.score_identities(
                model, layout, x, bench.person, people.scans, c.radius_mm)))
            faces += prepared
            groups.append(bench.person[where])
            xs.append(x[where])
        groups, xs = np.concatenate(groups), np.concatenate(xs)
        averaged = score([layout.split(xs[groups == p].mean(0))["id"]
                                  for p in range(args.people)])
        joint_cfg, _ = evaluation.fit_config(c.fit, dict(c.joint, **overrides))
        x_joint = reconstruct.fit_groups(model, layout, faces, groups, joint_cfg, None,
                                         batch_size=c.joint_batch_size, landmark_map=lmap)
        joint = evaluation._score_people(model, layout, x_joint, groups, people.scans,
                                         c.radius_mm)
        row = {"single": float(np.mean(single)), "averaging": float(np.mean(averaged)),
               "joint": float(np.mean(joint)), "seconds": time.time() - t0,
               "single_by_condition": {cond: float(v) for cond, v in zip(c.conditions, single)}}
        out["variants"][name] = row
        by_cond = " / ".join(f"{v / mean_face:.3f}" for v in single)
        print(f"{name} | {row['single']:.3f} ({row['single'] / mean_face:.3f}x; {by_cond}) | "
              f"{row['averaging']:.3f} ({row['averaging'] / mean_face:.3f}x) | "
              f"{row['joint']:.3f} ({row['joint'] / mean_face:.3f}x) | {row['seconds']:.0f}",
              flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
