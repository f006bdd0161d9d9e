"""What the benchmark pictures' realism costs the single-image fit, element by element.

The evaluation's pictures (`facerecon_jax/eval/benchmark_faces.py`) differ from the fitter's
own renders by out-of-model shape detail and a photo-like albedo the fitter's smooth texture
modes cannot express (brows, lips, blotches, redness, moles, pores, a hairline). This fits
the same people (seed 7331, apart from the evaluation's) with each element taken out, with the
true landmarks or dlib's, and prints the single-image error as a ratio to the mean face's:

  python benchmarks/realism_ablation.py                      # 6 people x 2 x 2 conditions
  python benchmarks/realism_ablation.py --variants photo,flat_albedo --landmarks dlib

Variants (join with "+"): photo (the benchmark's pictures), flat_albedo (the face area's
albedo replaced by its median colour: no brows, lips or skin detail), no_brows, no_lips,
no_detail (no out-of-model shape detail; its mean face and floor change with it).
~40-70 s a variant on a 2-core CPU.
"""
import argparse
import dataclasses
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

ELEMENTS = ("photo", "flat_albedo", "no_brows", "no_lips", "no_detail")


def people_for(variant: set, n_people: int, seed: int, head) -> evaluation.People:
    people = evaluation.make_people(n_people, seed, 0.0 if "no_detail" in variant else 2.0,
                                    head, with_brows="no_brows" not in variant,
                                    with_lips="no_lips" not in variant)
    if "flat_albedo" in variant:
        face = slice(*benchmark_faces.PART_RANGES["face"])
        persons = []
        for p in people.persons:
            albedo = p.albedo.copy()
            albedo[face] = np.median(albedo[face], axis=0)
            persons.append(dataclasses.replace(p, albedo=albedo))
        people = evaluation.People(persons, people.scans)
    return people


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, default=6)
    ap.add_argument("--images", type=int, default=2, help="pictures per person and condition")
    ap.add_argument("--conditions", default="cooperative,indoor")
    ap.add_argument("--variants", default="photo,flat_albedo,no_brows,no_lips,no_detail,"
                                          "flat_albedo+no_detail")
    ap.add_argument("--landmarks", default="true,dlib",
                    help="comma list: true (the true points), dlib (detected)")
    ap.add_argument("--seed", type=int, default=7331)
    args = ap.parse_args()
    cfg = config_files.packaged("evaluate")
    model = load_face_model(cfg.fit.model)
    layout = CoeffLayout.for_model(model, cfg.fit.light)
    fit_cfg, fit_c = evaluation.fit_config(cfg.fit)
    lmap = fitting.landmark_map_for(model, fit_c.landmark_map)
    head = benchmark_faces.load_head()
    det = detection.FaceDetector()
    conds = args.conditions.split(",")
    print(f"{args.people} people x {args.images} pictures per condition, seed {args.seed}; "
          "single-image fit / mean face (misses keep the mean face)")
    print("| variant | landmarks | " + " | ".join(conds) + " | mean face (mm) | seconds |")
    print("|---|---|" + "---|" * len(conds) + "---|---|")
    for name in args.variants.split(","):
        variant = set(name.split("+"))
        unknown = variant - set(ELEMENTS)
        if unknown:
            raise SystemExit(f"unknown variant element(s) {sorted(unknown)}; known: {ELEMENTS}")
        people = people_for(variant, args.people, args.seed, head)
        everyone = np.arange(args.people)
        mean_err = evaluation.score_identities(model, layout,
                                               np.zeros((args.people, layout.size)), everyone,
                                               people.scans, cfg.radius_mm)
        pictures = {c: evaluation.make_benchmark(people, args.images, c, args.seed, cfg.size,
                                                 head) for c in conds}
        for which in args.landmarks.split(","):
            t0 = time.time()
            cells = []
            for c in conds:
                b = pictures[c]
                prepared, where, missed = evaluation.prepare_images(
                    model, b.images, b.landmarks if which == "true" else None, det)
                x = evaluation.fit_prepared(model, layout, prepared, where, len(b.images),
                                            fit_cfg, landmark_map=lmap)
                err = evaluation.score_identities(model, layout, x, b.person, people.scans,
                                                  cfg.radius_mm)
                ratio = err.mean() / mean_err[b.person].mean()
                cells.append(f"{ratio:.3f}x" + (f" ({len(missed)} missed)" if len(missed) else ""))
            print(f"| {name} | {which} | " + " | ".join(cells)
                  + f" | {mean_err.mean():.3f} | {time.time() - t0:.0f} |", flush=True)


if __name__ == "__main__":
    main()
