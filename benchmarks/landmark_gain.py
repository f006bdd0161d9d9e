"""How much of a face's true landmark deviation the detector's 68 points carry, on the
benchmark's heads: MediaPipe's face mesh (the default) and dlib's predictor.

  python benchmarks/landmark_gain.py [--people 16] [--images 2] [--seed 11] \
      [--landmarks mesh dlib]

Pictures of the evaluation benchmark's kind (`evaluation.make_people` / `make_benchmark`: whole
ICT heads beyond the model, eyes, teeth, photo-like skin; a seed apart from the evaluation's
2026), the photo pipeline's detector on each, and `landmark_calibration.detector_gain` between
the detected points and the true ones (projections of the head's 68 landmark vertices), per
condition and for all / inner (17-67) / jaw-contour (0-16) points: the least-squares slope of
dlib's deviations (from their mean shape, after a similarity) on the truth's, their
correlation, both spreads and the residual, in inter-ocular distances. A slope well below 1
means the detector pulls every face towards one shape: a fit to its points recovers only that
share of the face's deviation, with noise of the residual's size on top. Then, over all
conditions, `landmark_calibration.shared_error_fraction`: the share of dlib's error (each point
weighed by its calibrated scatter, as the fit weighs it) that a person's pictures have in
common, the rho of a joint fit's prior (configs/reconstruct.py `shared_correlation`). Each
landmark source (`--landmarks`) on the same pictures, each with its own calibrated scatter;
"misses" counts the pictures where no face was found (the mesh's detector adds BlazeFace when
dlib's find none), and the median seconds per picture of detection with landmarks (both
sources in one process, the ratio is the figure). Prints a table, then one JSON line.
"""
import argparse
import json
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from facerecon_jax.eval import benchmark_faces, evaluation, landmark_calibration  # noqa: E402
from facerecon_jax.fit import landmark_embedding  # noqa: E402
from facerecon_jax.photo import detection  # noqa: E402

POINTS = {"all": slice(0, 68), "inner": slice(17, 68), "contour": slice(0, 17)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=16)
    ap.add_argument("--images", type=int, default=2)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--conditions", nargs="+", default=list(evaluation.CONDITIONS))
    ap.add_argument("--landmarks", nargs="+", default=list(landmark_embedding.LANDMARK_SOURCES),
                    choices=landmark_embedding.LANDMARK_SOURCES)
    args = ap.parse_args()
    head = benchmark_faces.load_head()
    people = evaluation.make_people(args.people, args.seed, head=head)
    benches = {cond: evaluation.make_benchmark(people, args.images, cond, args.seed, head=head)
               for cond in args.conditions}
    result = {"people": args.people, "images": args.images, "seed": args.seed}
    for source in args.landmarks:
        print(f"\n## landmarks: {source}")
        result[source] = measure(source, benches, args.conditions)
    print(json.dumps(result))


def measure(source, benches, conditions):
    det = detection.FaceDetector(landmarks=source)
    out = {}
    every = {"found": [], "truth": [], "person": [], "condition": []}
    print("condition | points | pictures | gain | correlation | truth spread | detector spread | "
          "residual (IOD)")
    for cond in conditions:
        bench = benches[cond]
        found, truth, seconds = [], [], []
        for img, gt, person in zip(bench.images, bench.landmarks, bench.person):
            t0 = time.perf_counter()
            faces = detection.select_faces(det.detect(img), "largest")
            seconds.append(time.perf_counter() - t0)
            if faces:
                found.append(faces[0].landmarks68)
                truth.append(gt)
                every["person"].append(person)
        every["found"] += found
        every["truth"] += truth
        every["condition"] += [cond] * len(found)
        out[cond] = {"pictures": len(found), "misses": len(bench.images) - len(found),
                     "seconds_per_picture": float(np.median(seconds))}
        for name, sl in POINTS.items():
            g = landmark_calibration.detector_gain(np.stack(found), np.stack(truth), sl)
            out[cond][name] = g
            print(f"{cond} | {name} | {len(found)} | {g['gain']:.2f} | {g['correlation']:.2f} | "
                  f"{g['truth_spread']:.4f} | {g['detector_spread']:.4f} | {g['residual']:.4f}")
    noise = landmark_embedding.detector_noise(landmark_embedding.files(source)[0])
    shared = {"all conditions": landmark_calibration.shared_error_fraction(
        np.stack(every["found"]), np.stack(every["truth"]), np.array(every["person"]), noise)}
    cond = np.array(every["condition"])
    for c in conditions:
        m = cond == c
        shared[c] = landmark_calibration.shared_error_fraction(
            np.stack(every["found"])[m], np.stack(every["truth"])[m],
            np.array(every["person"])[m], noise)
    print(f"\nshare of the {source} points' error a person's pictures have in common (rho)")
    for k, v in shared.items():
        print(f"{k} | {v['rho']:.3f} | {v['pictures']} pictures, {v['pairs_same']} pairs")
    print("misses: " + ", ".join(f"{c} {out[c]['misses']}" for c in conditions))
    print("detection with landmarks, median s / picture (the first picture compiles): "
          + ", ".join(f"{c} {out[c]['seconds_per_picture']:.3f}" for c in conditions))
    return {"by_condition": out, "shared_error_fraction": shared}


if __name__ == "__main__":
    main()
