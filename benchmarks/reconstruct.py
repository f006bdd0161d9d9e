"""Reconstruction speed on this machine: seconds per image for each stage.

  python benchmarks/reconstruct.py             # astronaut + Grace Hopper, default config
  python benchmarks/reconstruct.py --batch 8   # 8 faces fitted together (the photos repeated)

Stages: detection (dlib HOG + 68 landmarks), alignment (+ skin attention mask), fitting per
iteration (stage 1: landmarks; stage 2: hybrid loss with perceptual term) and fitting in all
(compilation reported apart). The last line is one JSON object.
"""
import argparse
import json
import os
import time

import jax
import matplotlib.cbook
import numpy as np
import skimage.data
from PIL import Image

from facerecon_jax import (alignment, coefficients, detection, face_embedding, fitting,
                           ict_model, reconstruct, skin)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--steps_landmark", type=int, default=150)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--no_perceptual", action="store_true")
    args = ap.parse_args()
    photos = [skimage.data.astronaut(),
              np.asarray(Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg",
                                                                     asfileobj=False)))]
    model = ict_model.load_default()
    det = detection.FaceDetector()
    det.detect(photos[0])                                    # load the models
    ref5 = alignment.reference_points(model)
    t_det, t_align, t_skin, faces = [], [], [], []
    for k in range(args.batch):
        img = photos[k % len(photos)]
        t = time.perf_counter()
        f = det.detect(img)[0]
        t_det.append(time.perf_counter() - t)
        t = time.perf_counter()
        crop, a = alignment.align(img, f.landmarks5, ref5)
        lm = alignment.image_to_crop(f.landmarks68, a)
        t_align.append(time.perf_counter() - t)
        t = time.perf_counter()
        att = skin.attention_mask(skin.skin_probability(crop, lm))
        t_skin.append(time.perf_counter() - t)
        faces.append(reconstruct.PreparedFace(f"f{k}", "", img, crop, a, f.landmarks68, lm,
                                              np.asarray(att, np.float32), "hog"))
    layout = coefficients.CoeffLayout.for_model(model, "rgb")
    cfg = fitting.FitConfig(steps_landmark=args.steps_landmark, steps=args.steps,
                            perceptual=not args.no_perceptual)
    ep = None if args.no_perceptual else face_embedding.load_face_embedding()
    t = time.perf_counter()
    x, hist = reconstruct.fit_faces(model, layout, faces, cfg, ep)
    t_fit = time.perf_counter() - t
    nme = [reconstruct.landmark_nme(
        np.asarray(__import__("facerecon_jax.renderer", fromlist=["x"]).face_vertices(
            model.to_jax(), layout.split(x[i:i + 1]), cfg.camera)["landmarks"][0]),
        faces[i].lm68_crop) for i in range(len(faces))]
    b = args.batch
    s1 = (hist["landmarks_seconds"] - hist["landmarks_compile_seconds"]) / max(
        args.steps_landmark - 1, 1)
    s2 = (hist["hybrid_seconds"] - hist["hybrid_compile_seconds"]) / max(args.steps - 1, 1)
    compile_s = hist["landmarks_compile_seconds"] + hist["hybrid_compile_seconds"]
    res = {
        "device": str(jax.devices()[0]), "cores": os.cpu_count(), "batch": b,
        "detection_s_per_image": float(np.median(t_det)),
        "alignment_s_per_image": float(np.median(t_align)),
        "skin_mask_s_per_image": float(np.median(t_skin)),
        "fit_landmark_stage_s_per_iteration_per_image": s1 / b,
        "fit_hybrid_stage_s_per_iteration_per_image": s2 / b,
        "fit_total_s_per_image": t_fit / b,
        "fit_compile_s": compile_s,
        "fit_total_s_per_image_without_compile": (t_fit - compile_s) / b,
        "steps": [args.steps_landmark, args.steps], "perceptual": not args.no_perceptual,
        "landmark_nme": nme,
    }
    print(f"batch {b} on {res['device']} ({res['cores']} cores)")
    for k, v in res.items():
        if k.endswith("_s_per_image") or "per_iteration" in k or k == "fit_compile_s":
            print(f"  {k:48s} {v:8.4f} s")
    print(f"  landmark error (NME, inter-ocular)              {np.round(nme, 4).tolist()}")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
