"""Reconstruction speed on this machine.

  python benchmarks/reconstruct.py                    # per-stage seconds, the two example photos
  python benchmarks/reconstruct.py --folder 32        # a folder of 32 photos, batch 8: the
                                                      # compile-once solver against the old
                                                      # per-call-compiled loop, same run

Photos case: detection (dlib HOG + 68 landmarks), alignment, skin attention, and fitting per
stage, per face (compilation apart), and the landmark error of the two example photos.

Folder case: `--folder N` photos made from the two example photos (flips, small rotations,
scales and colour changes), prepared once, then fitted in batches of `--batch` by
(a) `fitting.fit` (module-level jitted stages, lax.scan, padded last batch), counting the
compilations of its stage programs with JAX's compile log, and (b) the solver as it was before
(`legacy_fit` below, kept here for this comparison only: a new jitted closure per call and per
stage, the model captured as constants, a host sync every step). Seconds per face: (a) after its
first batch (which compiles), (b) over all its batches (each compiles). The last line is JSON.
"""
import argparse
import json
import logging
import os
import time

import jax
import jax.numpy as jnp
import matplotlib.cbook
import numpy as np
import optax
import skimage.data
from PIL import Image

from facerecon_jax.fit import fitting, losses
from facerecon_jax.geometry import coefficients, metrics
from facerecon_jax.models import ict_model
from facerecon_jax.photo import alignment, detection, face_embedding, skin
from facerecon_jax.pipeline import reconstruct
from facerecon_jax.render import renderer
from facerecon_jax.models.model_loading import load_face_model

STAGE_NAMES = fitting.STAGE_NAMES


def example_photos():
    return [("astronaut", skimage.data.astronaut()),
            ("grace_hopper", np.asarray(Image.open(matplotlib.cbook.get_sample_data(
                "grace_hopper.jpg", asfileobj=False))))]


def augmented_photos(n: int, seed: int = 0):
    """n photos from the two examples: flip, rotation +-8 deg, scale 0.85-1.15, gain, gamma."""
    import cv2
    rng = np.random.default_rng(seed)
    base = example_photos()
    out = []
    for i in range(n):
        name, img = base[i % 2]
        if i >= 2:
            h, w = img.shape[:2]
            m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-8, 8), rng.uniform(0.85, 1.15))
            img = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)
            if rng.uniform() < 0.5:
                img = img[:, ::-1]
            f = np.clip((img / 255.0) ** rng.uniform(0.8, 1.25) * rng.uniform(0.8, 1.15, 3), 0, 1)
            img = (f * 255).astype(np.uint8)
        out.append((f"{name}_{i:02d}", np.ascontiguousarray(img)))
    return out


def legacy_fit(model, layout, batch, cfg, init=None, embed_params=None):
    """The solver before the compile-once engine (for this benchmark only): a new @jax.jit
    closure per call and per stage, closing over the model, and a host sync every step."""
    model = model.to_jax()
    b = batch["image"].shape[0]
    x = jnp.asarray(init if init is not None else layout.zeros((b,)), jnp.float32)
    blend = model.is_blendshape
    exp_sl = layout.slices()["exp"]
    history = {}
    pose_mask = jnp.asarray(fitting.field_mask(layout, ("angles", "trans")))
    for spec in fitting.STAGES:
        n_steps = fitting.stage_steps(cfg, spec.name)
        if n_steps <= 0:
            continue
        loss_fn = losses.make_hybrid_loss(
            model, layout, camera=cfg.camera, weights=cfg.weights, soft=cfg.soft,
            backend=cfg.backend, embed_params=embed_params if cfg.perceptual else None,
            landmarks_only=spec.landmarks_only)
        mask = jnp.asarray(fitting.field_mask(layout, spec.fields))
        sched = optax.cosine_decay_schedule(1.0, n_steps, alpha=0.1)
        opt = optax.chain(optax.scale_by_adam(), optax.scale_by_schedule(sched))
        state = opt.init(x)
        lr_vec = cfg.lr * (1 - pose_mask) + cfg.lr_pose * pose_mask

        @jax.jit
        def step(x, state, batch):
            (val, terms), g = jax.value_and_grad(loss_fn, has_aux=True)(x, batch)
            upd, state = opt.update(g * mask, state, x)
            x = x - lr_vec * upd
            if blend:
                x = x.at[:, exp_sl].set(jnp.clip(x[:, exp_sl], 0.0, 1.0))
            return x, state, val, {k: jnp.mean(v) for k, v in terms.items()}

        t0 = time.perf_counter()
        rec = []
        for _ in range(n_steps):
            x, state, val, terms = step(x, state, batch)
            rec.append({k: float(v) for k, v in terms.items()})
        history[spec.name + "_seconds"] = time.perf_counter() - t0
    return x, history


class CompileCounter(logging.Handler):
    """Counts 'Compiling jit(<name>)' lines of JAX's compile log, per function name."""

    def __init__(self):
        super().__init__()
        self.counts = {}

    def emit(self, record):
        msg = record.getMessage()
        if msg.startswith("Compiling jit("):
            name = msg[len("Compiling jit("):].split(")")[0]
            self.counts[name] = self.counts.get(name, 0) + 1


def prepare_faces(photos, model):
    det = detection.FaceDetector()
    faces = []
    for name, img in photos:
        src = reconstruct.Source(name, name, lambda img=img: img)
        faces.extend(reconstruct.prepare(src, model, det))
    return faces


def nme_of(model, layout, cfg, x, faces):
    lm = np.asarray(renderer.face_vertices(model.to_jax(), layout.split(jnp.asarray(x)),
                                           cfg.camera)["landmarks"])
    return [float(metrics.landmark_nme(lm[i], f.lm68_crop)) for i, f in enumerate(faces)]


def folder_case(args, model, layout, cfg, embed):
    photos = augmented_photos(args.folder)
    t = time.perf_counter()
    faces = prepare_faces(photos, model)
    t_prep = time.perf_counter() - t
    batches = [faces[i:i + args.batch] for i in range(0, len(faces), args.batch)]
    counter = CompileCounter()
    logging.getLogger("jax").addHandler(counter)
    new_times, stage_secs, xs = [], {s: [] for s in STAGE_NAMES}, []
    with jax.log_compiles():
        for chunk in batches:
            t = time.perf_counter()
            x, hist = reconstruct.fit_faces(model, layout, chunk, cfg, embed,
                                            batch_size=args.batch)
            jax.block_until_ready(x)
            new_times.append(time.perf_counter() - t)
            for s in STAGE_NAMES:
                stage_secs[s].append(hist.get(s + "_seconds", 0.0))
            xs.append(np.asarray(x))
    logging.getLogger("jax").removeHandler(counter)
    n_after = sum(len(c) for c in batches[1:])
    new_spf = sum(new_times[1:]) / n_after
    res = {"faces": len(faces), "batch": args.batch, "prepare_s_per_face": t_prep / len(faces),
           "stage_compilations": {s: counter.counts.get("fit_stage", 0) for s in ["all stages"]},
           "new_first_batch_s": new_times[0], "new_s_per_face_after_compile": new_spf,
           "new_s_per_face_per_stage": {s: sum(v[1:]) / n_after for s, v in stage_secs.items()}}
    if not args.skip_legacy:
        t_legacy = []
        for chunk in batches:
            images = np.stack([f.crop for f in chunk]).astype(np.float32) / 255.0
            batch = fitting.prepare_batch(images, np.stack([f.lm68_crop for f in chunk]),
                                          np.stack([f.attention for f in chunk]), embed)
            t = time.perf_counter()
            x, _ = legacy_fit(model, layout, batch, cfg, embed_params=embed)
            jax.block_until_ready(x)
            t_legacy.append(time.perf_counter() - t)
        res["legacy_s_per_face"] = sum(t_legacy) / len(faces)
        res["legacy_first_batch_s"] = t_legacy[0]
        res["speedup"] = res["legacy_s_per_face"] / new_spf
    ex = {f.name: i for i, f in enumerate(faces)}
    x_all = np.concatenate(xs)
    picks = [ex[n] for n in ("astronaut_00", "grace_hopper_01") if n in ex]
    res["landmark_nme_examples"] = nme_of(model, layout, cfg, x_all[picks],
                                          [faces[i] for i in picks])
    return res


def photos_case(args, model, layout, cfg, embed):
    det = detection.FaceDetector()
    photos = example_photos()
    det.detect(photos[0][1])                                 # load the models
    ref5 = alignment.reference_points(model)
    t_det, t_align, t_skin, faces = [], [], [], []
    for k in range(args.batch):
        name, img = photos[k % len(photos)]
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
        faces.append(reconstruct.PreparedFace(f"{name}{k}", "", img, crop, a, f.landmarks68, lm,
                                              np.asarray(att, np.float32), "hog"))
    t = time.perf_counter()
    reconstruct.fit_faces(model, layout, faces, cfg, embed)           # compiles
    t_first = time.perf_counter() - t
    t = time.perf_counter()
    x, hist = reconstruct.fit_faces(model, layout, faces, cfg, embed)
    t_fit = time.perf_counter() - t
    b = args.batch
    return {"batch": b, "detection_s_per_image": float(np.median(t_det)),
            "alignment_s_per_image": float(np.median(t_align)),
            "skin_mask_s_per_image": float(np.median(t_skin)),
            **{f"fit_{s}_s_per_step_per_image": hist[s + "_seconds"] / max(
                fitting.stage_steps(cfg, s), 1) / b for s in STAGE_NAMES if s in hist},
            "fit_s_per_image": t_fit / b, "compile_s": t_first - t_fit,
            "landmark_nme": nme_of(model, layout, cfg, x, faces)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=None, help="default: 2 (photos), 8 (folder)")
    ap.add_argument("--folder", type=int, default=0, help="folder case with this many photos")
    ap.add_argument("--skip_legacy", action="store_true")
    ap.add_argument("--config", default="reconstruct", help="a configs/<name>.py")
    ap.add_argument("--steps_landmark", type=int, default=None)
    ap.add_argument("--steps", type=int, default=None)
    args = ap.parse_args()
    args.batch = args.batch or (8 if args.folder else 2)
    import importlib
    conf = importlib.import_module(f"configs.{args.config}").get_config()
    if args.steps_landmark is not None:
        conf.steps_landmark = args.steps_landmark
    if args.steps is not None:
        conf.steps = args.steps
    model = load_face_model(conf.model)
    layout = coefficients.CoeffLayout.for_model(model, conf.light)
    cfg = fitting.FitConfig.from_config(conf)
    embed = face_embedding.load_face_embedding() if cfg.perceptual else None
    res = {"device": str(jax.devices()[0]), "cores": os.cpu_count(),
           "steps": [cfg.steps_landmark, cfg.steps], "perceptual": cfg.perceptual}
    if args.folder:
        res.update(folder_case(args, model, layout, cfg, embed))
    else:
        res.update(photos_case(args, model, layout, cfg, embed))
    for k, v in res.items():
        print(f"  {k:40s} {v}")
    print(json.dumps(res))


if __name__ == "__main__":
    del ict_model
    main()
