"""Photos in, 3D faces out: the reconstruction pipeline behind `launch/reconstruct.py`.

For each input (image file, image in a folder, or video frame):
  1. read it (clear error naming the file), find faces and 68 landmarks (dlib HOG, CNN fallback),
     or take landmarks from a file beside it (Deep3DFaceRecon's `detections/<name>.txt`, 5
     points, or 68-point files);
  2. align as Deep3DFaceRecon does (5 points, scale 102 / s, 224 x 224 crop), keeping the
     transform;
  3. skin attention mask on the crop (naive Bayes);
  4. fit the coefficients (analysis by synthesis, batched) from the mean face or an R-Net
     prediction;
  5. write per face: <name>.obj (lit vertex colours) and <name>_albedo.obj, <name>_coeffs.npz,
     <name>_lm68.txt (original-image pixels, y down), <name>_overlay.png and <name>_pasted.png,
     <name>_input.jpg, and the textured face (`textured_face`: texture map, weight map,
     <name>_textured.obj, <name>.glb); the run's index.html comes from `results_page`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import pathlib
import time
from typing import Callable, Iterable, Iterator, List, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from facerecon_jax.fit import fitting
from facerecon_jax.geometry import metrics
from facerecon_jax.io import atomic_file, cli, export, output_folder, progress as progress_
from facerecon_jax.photo import alignment, detection, skin
from facerecon_jax.pipeline import results_page, textured_face
from facerecon_jax.render import renderer, visualize
from facerecon_jax.geometry.coefficients import CoeffLayout
from facerecon_jax.models.face_model import FaceModel

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}


@dataclasses.dataclass
class Source:
    """One image to process: `load()` gives its uint8 RGB pixels (may raise ImageReadError)."""
    name: str
    path: str
    load: Callable[[], np.ndarray]
    landmark_file: Optional[pathlib.Path] = None
    landmarks: Optional[np.ndarray] = None      # given 68 or 5 points (image pixels, y down)


@dataclasses.dataclass
class PreparedFace:
    name: str
    path: str
    image: np.ndarray               # original, uint8 RGB
    crop: np.ndarray                # (224, 224, 3) uint8
    align: alignment.Alignment
    lm68_image: np.ndarray          # (68, 2) original pixels, y down
    lm68_crop: np.ndarray           # (68, 2) crop pixels, y down
    attention: np.ndarray           # (224, 224) skin attention A
    landmark_source: str            # "hog", "cnn" or the landmark file


class InputError(cli.UsageError):
    """An --input that does not exist; the message names it."""


def check_inputs(inputs: Sequence[str]) -> None:
    """Every input exists (file or folder), else :class:`InputError` naming the first that
    does not."""
    for item in inputs:
        p = pathlib.Path(item).expanduser()
        if not p.exists():
            raise InputError(f"--input {item}: no such file or folder")


def iter_sources(inputs: Sequence[str], video_every: int = 1,
                 max_frames: Optional[int] = None, ignored: Optional[list] = None,
                 _index: Optional[output_folder.OutputIndex] = None) -> Iterator[Source]:
    """Image files, folders (their images and videos, sorted) and videos (one source a frame).

    Pictures facerecon-reconstruct wrote are never inputs (`output_folder`): they are left out
    and, when `ignored` is a list, appended to it; a fitted `<name>_lm68.txt` is never taken as
    an image's landmarks."""
    index = _index or output_folder.OutputIndex()
    for item in inputs:
        p = pathlib.Path(item).expanduser()
        if p.is_dir():
            files = sorted(f for f in p.iterdir()
                           if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)
            yield from iter_sources([str(f) for f in files], video_every, max_frames, ignored,
                                    index)
        elif p.suffix.lower() in VIDEO_SUFFIXES:
            yield from _video_sources(p, video_every, max_frames)
        elif p.exists() and index.is_output_picture(p):
            if ignored is not None:
                ignored.append(str(p))
        else:
            lm = None
            if p.exists():
                lm = next((c for c in detection.landmark_file_candidates(p)
                           if c.is_file() and not index.is_fitted_landmarks(c)), None)
            yield Source(p.stem, str(p), lambda p=p: detection.read_image(p), lm)


def _video_sources(path: pathlib.Path, every: int, max_frames: Optional[int]):
    try:
        for index, frame in detection.video_frames(path, every=every, max_frames=max_frames):
            yield Source(f"{path.stem}_f{index:06d}", f"{path}#frame{index}",
                         lambda frame=frame: frame)
    except detection.ImageReadError as e:
        err = e

        def fail():
            raise err
        yield Source(path.stem, str(path), fail)


def _stage(times: Optional[progress_.StageTimes], name: str, items: int = 1):
    return contextlib.nullcontext() if times is None else times.stage(name, items)


def find_landmarks(source: Source, image: np.ndarray, detector: detection.FaceDetector,
                   faces: str = "largest") -> list:
    """[(68 landmarks, where they came from, 5 points), ...] for the faces of one image: from
    the landmark file beside it (68 points, or 5 and the 68-point predictor around them), or
    detected (`faces`: "largest" or "all"; no face raises naming the file)."""
    if source.landmark_file is None and source.landmarks is None:
        return [(f.landmarks68, f.detector, f.landmarks5)
                for f in detector.detect_or_raise(image, source.path, mode=faces)]
    pts = (np.asarray(source.landmarks, np.float64) if source.landmarks is not None
           else detection.read_landmark_file(source.landmark_file))
    if len(pts) == 68:
        lm68 = pts
    else:   # 5 points: the 68-point predictor inside a box around them
        lo, hi = pts.min(0), pts.max(0)
        size = max(hi - lo) * 2.2
        c = (lo + hi) / 2 + [0, 0.15 * size]
        box = (c[0] - size / 2, c[1] - size / 2, c[0] + size / 2, c[1] + size / 2)
        lm68 = detector.landmarks_in_box(image, box)
    return [(lm68, "given" if source.landmarks is not None else str(source.landmark_file),
             pts if len(pts) == 5 else detection.five_from_68(lm68))]


def prepare(source: Source, model: FaceModel, detector: detection.FaceDetector,
            faces: str = "largest", times: Optional[progress_.StageTimes] = None
            ) -> List[PreparedFace]:
    """Landmarks, alignment and skin mask for every face to reconstruct in one source.
    `times`: the wall time of reading, landmarks and alignment (+ skin mask) is added to it."""
    with _stage(times, "read"):
        image = source.load()
    with _stage(times, "detect"):
        found = find_landmarks(source, image, detector, faces)
    ref5 = alignment.reference_points(model)
    out = []
    with _stage(times, "align", len(found)):
        for k, (lm68, origin, lm5) in enumerate(found):
            crop, a = alignment.align(image, lm5, ref5)
            lm_crop = alignment.image_to_crop(lm68, a)
            prob = skin.skin_probability(crop, lm_crop)
            name = source.name if len(found) == 1 else f"{source.name}_face{k}"
            out.append(PreparedFace(name, source.path, image, crop, a,
                                    np.asarray(lm68, np.float64), lm_crop,
                                    np.asarray(skin.attention_mask(prob), np.float32), origin))
    return out


def fit_faces(model: FaceModel, layout: CoeffLayout, faces: Sequence[PreparedFace],
              cfg: fitting.FitConfig, embed_params=None, init=None, progress=None,
              predictor=None, batch_size: Optional[int] = None, landmark_map=None,
              group=None, times: Optional[progress_.StageTimes] = None):
    """Fit a batch of prepared faces; returns (coefficients (B, N), history).

    With `batch_size`, a shorter list is padded to it (the last face repeated, the padding
    dropped from the result), so every batch of a folder runs the same compiled program.
    `predictor`: an R-Net (`train.load_predictor`) whose prediction starts the fit (and is the
    result when both fitting stages have 0 steps). `landmark_map`, `group`: see `fitting.fit`
    (padding faces get groups of their own). `times`: the R-Net forward ("rnet") and the
    fitting ("fit") add their wall time for the `n` real faces."""
    n = len(faces)
    faces = list(faces)
    if batch_size is not None:
        if n > batch_size:
            raise ValueError(f"{n} faces do not fit in a batch of {batch_size}")
        faces = faces + [faces[-1]] * (batch_size - n)
        if group is not None:
            group = np.concatenate([np.asarray(group), np.max(group) + 1
                                    + np.arange(batch_size - n)])
        if init is not None:
            init, _ = fitting.pad_batch(jnp.asarray(init), batch_size)
    images = np.stack([f.crop for f in faces]).astype(np.float32) / 255.0
    if predictor is not None and init is None:
        with _stage(times, "rnet", n):
            init = jax.block_until_ready(predictor(images))
    steps = sum(fitting.stage_steps(cfg, name) for name in fitting.STAGE_NAMES)
    with _stage(times if steps else None, "fit", n):
        batch = fitting.prepare_batch(images, np.stack([f.lm68_crop for f in faces]),
                                      np.stack([f.attention for f in faces]), embed_params)
        x, hist = fitting.fit(model, layout, batch, cfg, init=init, embed_params=embed_params,
                              progress=progress, landmark_map=landmark_map, group=group)
        x = jax.block_until_ready(x)
    return x[:n], hist


def fit_groups(model: FaceModel, layout: CoeffLayout, faces: Sequence[PreparedFace], groups,
               cfg: fitting.FitConfig, embed_params=None, batch_size: int = 16,
               landmark_map=None, progress=None) -> np.ndarray:
    """Joint fits: faces of one group (person) share `cfg.shared` fields. Groups are packed
    whole into batches of `batch_size` (a larger group gets a batch of its own, rounded up to
    a multiple of 8). Returns (N, D) in the order of `faces`."""
    groups = np.asarray(groups)
    order = {g: np.nonzero(groups == g)[0] for g in dict.fromkeys(groups.tolist())}
    batches, current = [], []
    for idx in order.values():
        if current and len(current) + len(idx) > batch_size:
            batches.append(current)
            current = []
        current = current + idx.tolist()
    if current:
        batches.append(current)
    out = np.zeros((len(faces), layout.size), np.float32)
    for members in batches:
        size = max(batch_size, -(-len(members) // 8) * 8)
        x, _ = fit_faces(model, layout, [faces[i] for i in members], cfg, embed_params,
                         batch_size=size, landmark_map=landmark_map, group=groups[members])
        out[members] = np.asarray(x)
        if progress is not None:
            progress(len(members))
    return out


def reconstruct_sources(items: Iterable[tuple], model: FaceModel, layout: CoeffLayout,
                        cfg: fitting.FitConfig, *, detector: detection.FaceDetector,
                        faces: str = "largest", batch_size: int = 8, embed_params=None,
                        landmark_map=None, predictor=None, texture: Optional[str] = "albedo",
                        texture_size: int = 1024, on_face=None, on_failure=None,
                        on_batch=None, on_step=None, results: Optional[list] = None,
                        failures: Optional[list] = None,
                        times: Optional[progress_.StageTimes] = None) -> tuple:
    """The one loop from photos to files. `items`: (folder, Source) pairs, read one at a time;
    each source is prepared (detected, aligned, masked), its faces are fitted in batches of
    `batch_size` (a short last batch padded, so one compiled program serves the whole run) and
    written into its folder by `write_outputs`.

    Callbacks: on_face(source_done) after each face written (source_done: the last face of its
    source); on_failure({"source", "error"}) for a source that cannot be read, has no face, or
    whose files cannot be written; on_batch() after each batch (e.g. save a report);
    on_step(stage, step, n_steps, loss, seconds_per_step, n_faces) during a fit.
    `times`: each stage's wall time is added to it (read, detect, align, rnet, fit, write).
    Returns (results: write_outputs' records, failures), appended to the lists given as
    `results` / `failures` if any (so callbacks can read them as they grow)."""
    results = [] if results is None else results
    failures = [] if failures is None else failures
    pending, outstanding = [], {}

    def fail(record):
        failures.append(record)
        if on_failure is not None:
            on_failure(record)

    def flush():
        if not pending:
            return
        t0 = time.perf_counter()
        n = len(pending)
        step = None if on_step is None else (lambda *a: on_step(*a, n))
        x, _ = fit_faces(model, layout, [f for _, f in pending], cfg, embed_params,
                         progress=step, predictor=predictor, batch_size=batch_size,
                         landmark_map=landmark_map, times=times)
        secs = time.perf_counter() - t0
        for (folder, face), row in zip(pending, np.asarray(x)):
            try:
                pathlib.Path(folder).mkdir(parents=True, exist_ok=True)
                with _stage(times, "write"):
                    r = write_outputs(folder, face, model, layout, row, cfg, texture,
                                      texture_size, landmark_map)
                r["fit_seconds_per_face"] = secs / n
                results.append(r)
            except OSError as e:
                fail({"source": face.path, "error": f"cannot write outputs: {e}"})
            outstanding[face.path] -= 1
            if on_face is not None:
                on_face(outstanding[face.path] == 0)
        pending.clear()
        if on_batch is not None:
            on_batch()

    for folder, src in items:
        try:
            found = prepare(src, model, detector, faces, times)
        except ValueError as e:          # unreadable image or landmark file, no face
            fail({"source": src.path, "error": str(e)})
            continue
        outstanding[src.path] = outstanding.get(src.path, 0) + len(found)
        for face in found:
            pending.append((folder, face))
            if len(pending) >= batch_size:
                flush()
    flush()
    return results, failures


def reconstruct_people(people: Sequence[tuple], out_dir: pathlib.Path, model: FaceModel,
                       layout: CoeffLayout, cfg: fitting.FitConfig, embed_params=None, *,
                       detector: Optional[detection.FaceDetector] = None, batch_size: int = 8,
                       joint: bool = False, landmark_map=None, texture: Optional[str] = "albedo",
                       texture_size: int = 1024, log=print) -> tuple:
    """Photos of several people, [(person, [Source, ...]), ...], reconstructed into
    <out_dir>/<person>/ (every output of `write_outputs`). `joint`: one fit per person with
    `cfg.shared` (e.g. identity and albedo) common to all their photos and pose, expression and
    light per photo (`fit_groups`); else each photo on its own (`reconstruct_sources`).
    Returns ({person: folder}, failures [{"source", "error"}]); a photo that cannot be read or
    has no face is reported and skipped."""
    detector = detector or detection.FaceDetector()
    out_dir = pathlib.Path(out_dir)

    def said(f):
        log(f"skipped {f['source']}: {f['error']}")
    if not joint:
        items = [(out_dir / person, src) for person, sources in people for src in sources]
        results, failures = reconstruct_sources(
            items, model, layout, cfg, detector=detector, batch_size=batch_size,
            embed_params=embed_params, landmark_map=landmark_map, texture=texture,
            texture_size=texture_size, on_failure=said)
        person_of = {src.path: person for person, sources in people for src in sources}
        done = {person_of[r["source"]] for r in results}
        return {p: out_dir / p for p, _ in people if p in done}, failures
    faces, groups, failures = [], [], []
    for g, (person, sources) in enumerate(people):
        for src in sources:
            try:
                found = prepare(src, model, detector)
            except ValueError as e:          # unreadable image, no face
                failures.append({"source": src.path, "error": str(e)})
                said(failures[-1])
                continue
            faces.extend(found)
            groups.extend([g] * len(found))
    x = (fit_groups(model, layout, faces, np.asarray(groups), cfg, embed_params,
                    batch_size=max(batch_size, 8), landmark_map=landmark_map) if faces
         else np.zeros((0, layout.size), np.float32))
    folders = {}
    for f, g, row in zip(faces, groups, x):
        person = people[g][0]
        folder = out_dir / person
        folder.mkdir(parents=True, exist_ok=True)
        write_outputs(folder, f, model, layout, row, cfg, texture=texture,
                      texture_size=texture_size, landmark_map=landmark_map)
        folders[person] = folder
    return folders, failures


def write_outputs(out_dir: pathlib.Path, face: PreparedFace, model: FaceModel,
                  layout: CoeffLayout, x, cfg: fitting.FitConfig, texture: str = "albedo",
                  texture_size: int = 1024, landmark_map=None) -> dict:
    """Every output file for one fitted face; returns a summary (paths, landmark error, texture
    PSNR). `texture`: "albedo" or "photo" (`textured_face`), None for no texture files.
    `landmark_map`: the fit's (`fitting.fit`); the fitted 68 landmarks written, drawn and
    compared with the detected ones are where it puts the detector's points on the fitted
    face (None: the model's landmark vertices)."""
    out_dir = pathlib.Path(out_dir)
    m = model.to_jax()
    x = jnp.asarray(x)[None]
    parts = layout.split(x)
    verts = renderer.face_vertices(m, parts, cfg.camera)
    crop = face.crop.astype(np.float32) / 255.0
    out = renderer.render_vertices(m, verts, renderer.RenderConfig(camera=cfg.camera),
                                   background=jnp.asarray(crop)[None])
    render = np.asarray(out["colour"][0])
    alpha = np.asarray(out["mask"][0])
    lm_fit_crop = np.asarray(verts["landmarks"][0] if landmark_map is None else
                             landmark_map.locate(verts["posed"], verts["rotation"],
                                                 parts["angles"], cfg.camera)[0], np.float64)
    lm_fit_image = alignment.crop_to_image(lm_fit_crop, face.align)
    base = out_dir / face.name
    posed = np.asarray(verts["posed"][0])
    paths = [
        export.save_mesh(f"{base}.obj", posed, model.triangles, np.asarray(verts["colour"][0])),
        export.save_mesh(f"{base}_albedo.obj", posed, model.triangles,
                         np.asarray(verts["albedo"][0])),
        export.save_coefficients(
            f"{base}_coeffs.npz", {k: np.asarray(v[0]) for k, v in parts.items()},
            trans_params=face.align.to_array(), lm68_crop=face.lm68_crop,
            lm68_image=face.lm68_image, lm68_fitted_image=lm_fit_image,
            coeffs=np.asarray(x[0]), light=np.array(layout.light),
            face_model=np.array(model.info.get("name", ""))),
    ]
    paths.append(atomic_file.write_text(
        f"{base}_lm68.txt", output_folder.FITTED_HEADER + "\n"
        + "".join(f"{px:.3f} {py:.3f}\n" for px, py in lm_fit_image)))
    panel = visualize.overlay_panel(face.crop, np.clip(render, 0, 1), alpha, face.lm68_crop,
                                    lm_fit_crop)
    paths.append(export.save_png(f"{base}_overlay.png", panel))
    pasted = alignment.paste_back(face.image, np.clip(render, 0, 1), alpha, face.align)
    paths.append(export.save_png(f"{base}_pasted.png", pasted))
    paths.append(results_page.save_input_image(f"{base}_input.jpg", face.image))
    textured = textured_face.write_fitted(base, face, model, parts, verts, out, cfg.camera,
                                          texture, texture_size)
    paths.extend(textured.pop("files", []))
    return {"name": face.name, "source": face.path, "landmarks_from": face.landmark_source,
            "landmark_error_nme": float(metrics.landmark_nme(lm_fit_crop, face.lm68_crop)),
            **textured, "files": [str(p) for p in paths]}


def write_report(path: pathlib.Path, results: list, failures: list) -> dict:
    """Merge this run's faces and failures into the report at `path` (one record per face,
    see `output_folder.merge_report`), written atomically; returns the merged report."""
    path = pathlib.Path(path)
    merged = output_folder.merge_report(output_folder.read_report(path.parent), results,
                                        failures, [r["source"] for r in results]
                                        + [f["source"] for f in failures])
    output_folder.write_report(path.parent, merged)
    return merged
