"""Reconstruct 3D faces from photos, folders and videos.

  facerecon-reconstruct --input photo.jpg --input photos/ --input clip.mp4 --output_dir out/

Per face, in --output_dir: <name>.obj (lit vertex colours), <name>_albedo.obj, <name>_coeffs.npz
(split coefficients, alignment transform, landmarks), <name>_lm68.txt (68 fitted landmarks in the
original image's pixels, y down), <name>_overlay.png (crop | render | landmarks: detected green,
fitted red) and <name>_pasted.png (the render on the original photo); the textured face from the
photo: <name>_texture.png (--texture albedo|photo), <name>_texture_weight.png,
<name>_textured.obj/.mtl and <name>.glb; <name>_input.jpg; plus report.json and index.html (the
results page with a 3D viewer; open it in a browser).
A file that cannot be read or has no face is reported and skipped; the exit status is the number
of inputs that failed (0 when all went well).
"""
import os
import pathlib
import sys
import time

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(__file__), "..", "configs", "reconstruct.py"),
    "Reconstruction config (configs/reconstruct.py); override with --config.steps=100 etc.")
_INPUT = flags.DEFINE_multi_string("input", None, "Image files, folders or videos (repeatable).")
_OUT = flags.DEFINE_string("output_dir", "out", "Where to write results.")
_FACES = flags.DEFINE_enum("faces", "largest", ["largest", "all"],
                           "Several faces in a photo: the largest, or all of them.")
_VIDEO_EVERY = flags.DEFINE_integer("video_every", 10, "Use every n-th frame of videos.")
_MAX_FRAMES = flags.DEFINE_integer("max_frames", None, "At most this many frames per video.")
_CHECKPOINT = flags.DEFINE_string(
    "checkpoint", None, "An R-Net training workdir (facerecon-train): its prediction starts the "
    "fit; with --config.steps_landmark=0 --config.steps=0 it is the result.")
_TEXTURE = flags.DEFINE_enum(
    "texture", "albedo", ["albedo", "photo"], "Texture map from the photo: divided by the fitted "
    "shading (albedo, for relighting viewers) or as it is (photo, the light baked in).")
_TEXTURE_SIZE = flags.DEFINE_integer("texture_size", 1024, "Texture map size in texels.")
flags.mark_flag_as_required("input")


def main(argv):
    del argv
    import numpy as np

    from facerecon_jax import (coefficients, detection, face_embedding, fitting, progress,
                               reconstruct, results_page)
    from facerecon_jax.model_loading import load_face_model

    cfg = _CONFIG.value
    out_dir = pathlib.Path(_OUT.value)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = load_face_model(cfg.model)
    predictor, light = None, cfg.light
    if _CHECKPOINT.value:
        from facerecon_jax import train
        predictor, meta = train.load_predictor(_CHECKPOINT.value)
        light = meta["light"]
        if coefficients.CoeffLayout.for_model(model, light).size != meta["num_outputs"]:
            logging.error("%s predicts %d coefficients; the face model %s with %s light needs %d",
                          _CHECKPOINT.value, meta["num_outputs"], model.info.get("name"), light,
                          coefficients.CoeffLayout.for_model(model, light).size)
            return 2
    layout = coefficients.CoeffLayout.for_model(model, light)
    fit_cfg = fitting.FitConfig.from_config(cfg)
    embed_params = face_embedding.load_face_embedding() if cfg.perceptual else None
    detector = detection.FaceDetector()
    sources = list(reconstruct.iter_sources(_INPUT.value, _VIDEO_EVERY.value, _MAX_FRAMES.value))
    if not sources:
        logging.error("no images or videos found in %s", _INPUT.value)
        return 1
    bar = progress.Progress(len(sources), unit="image")
    results, failures, pending = [], [], []
    failed_sources = set()
    outstanding = {}         # source -> faces not yet fitted and written

    def finish(path):
        outstanding[path] -= 1
        if outstanding[path] == 0:
            bar.update(1, note=f"{len(results)} faces written, {len(failures)} failed")

    def flush():
        if not pending:
            return
        t0 = time.perf_counter()

        def on_step(stage, step, n_steps, loss, sec_per_step):
            speed = f", {sec_per_step:.2f} s/step" if sec_per_step else ""
            bar.update(0, note=f"fitting {len(pending)} faces: {stage} {step}/{n_steps}"
                               f"{speed}, loss {loss:.4f}")
        x, _ = reconstruct.fit_faces(model, layout, pending, fit_cfg, embed_params,
                                     progress=on_step, predictor=predictor,
                                     batch_size=cfg.batch_size)
        secs = time.perf_counter() - t0
        for face, row in zip(pending, np.asarray(x)):
            try:
                r = reconstruct.write_outputs(out_dir, face, model, layout, row, fit_cfg,
                                              _TEXTURE.value, _TEXTURE_SIZE.value)
                r["fit_seconds_per_face"] = secs / len(pending)
                results.append(r)
            except OSError as e:
                failures.append({"source": face.path, "error": f"cannot write outputs: {e}"})
                failed_sources.add(face.path)
            finish(face.path)
        pending.clear()

    for src in sources:
        try:
            faces = reconstruct.prepare(src, model, detector, _FACES.value)
        except (detection.ImageReadError, detection.NoFaceError, detection.LandmarkFileError,
                ValueError) as e:
            failures.append({"source": src.path, "error": str(e)})
            failed_sources.add(src.path)
            sys.stderr.write(f"\nskipped {src.path}: {e}\n")
            bar.update(1, note=f"{len(results)} faces written, {len(failures)} failed")
            continue
        outstanding[src.path] = outstanding.get(src.path, 0) + len(faces)
        for face in faces:
            pending.append(face)
            if len(pending) >= cfg.batch_size:
                flush()
    flush()
    bar.note = f"{len(results)} faces written, {len(failures)} failed"
    bar.close()
    reconstruct.write_report(out_dir / "report.json", results, failures)
    results_page.write_reconstruct_page(out_dir, {"faces": results, "failed": failures})
    for r in results:
        psnr = (f", texture PSNR {r['texture_psnr_db']:.1f} dB" if r.get("texture_psnr_db")
                is not None else "")
        print(f"{r['name']}: landmark error {r['landmark_error_nme']:.4f} (NME, inter-ocular)"
              f"{psnr} -> {out_dir / r['name']}.obj")
    print(f"results page: {(out_dir / 'index.html').resolve().as_uri()}")
    for f in failures:
        print(f"FAILED {f['source']}: {f['error']}")
    return min(len(failed_sources), 100)


def run():
    app.run(main)


if __name__ == "__main__":
    run()
