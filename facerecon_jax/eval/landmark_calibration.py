"""Calibrating the landmark embeddings: pictures of known 3D shape, the detector on them, and
what is learnt from both (`landmark_embedding.learn_map`: other vertices; `learn_offsets`: 3D
offsets from the model's own), written where the package ships it.

This sits with the evaluation because its pictures are the benchmark's heads (`benchmark_faces`,
with seeds apart from the evaluation's); the map itself and its use in fitting live in
`landmark_embedding`.
"""
from __future__ import annotations

from typing import Dict, Sequence

import jax.numpy as jnp
import numpy as np

from facerecon_jax.fit.landmark_embedding import (LandmarkMap, learn_map, learn_offsets, to_json,
                                                  visible_vertices)


def calibration_pictures(n_people: int, views: int, seed: int, size: int = 300,
                         max_yaw_deg: float = 50.0, progress=None,
                         conditions: Sequence[str] = ("indoor",), landmarks: str = "mesh"
                         ) -> Dict[str, np.ndarray]:
    """Pictures of known 3D shape and what the detector finds on them. Returns detections
    (N, 68, 2), screen (N, 6706, 2), visible (N, 6706), yaw (N,), landmarks_world (N, 68, 3)
    (the head's landmark vertices posed in the world), rotation (N, 3, 3) for the pictures
    where a face was found, the number of misses and the pictures' camera. Each picture's
    light is drawn from one of `conditions` (`synthetic.CONDITIONS`, chosen at random when
    there are several). `landmarks`: the detector's landmark source ("mesh", "dlib";
    `detection.FaceDetector`)."""
    from facerecon_jax.eval import benchmark_faces  # noqa: PLC0415
    from facerecon_jax.geometry import camera as cam  # noqa: PLC0415
    from facerecon_jax.photo import detection  # noqa: PLC0415
    from facerecon_jax.training import synthetic  # noqa: PLC0415

    head = benchmark_faces.load_head()
    rng = np.random.default_rng([seed, 0xCA1])
    det = detection.FaceDetector(landmarks=landmarks)
    camera = benchmark_faces.picture_camera(size)
    out = {"detections": [], "screen": [], "visible": [], "yaw": [], "landmarks_world": [],
           "rotation": []}
    misses = 0
    for _ in range(n_people):
        person = benchmark_faces.make_person(head, rng)
        yaw = rng.uniform(-max_yaw_deg, max_yaw_deg, views)
        views_ = {
            "exp": np.stack([benchmark_faces.sample_expression(head, rng, rng.uniform() < 0.5)
                             for _ in range(views)]),
            "angles": np.radians(np.stack([rng.uniform(-15, 15, views), yaw,
                                           rng.uniform(-8, 8, views)], 1)).astype(np.float32),
            "gamma": np.stack([synthetic.sample_light(rng, synthetic.CONDITIONS[
                conditions[0] if len(conditions) == 1 else rng.choice(conditions)], "rgb")
                               for _ in range(views)]).astype(np.float32),
            "trans": np.stack([rng.uniform(-0.1, 0.1, views), rng.uniform(-0.1, 0.1, views),
                               rng.uniform(-0.5, 0.5, views)], 1).astype(np.float32),
            "background": np.stack([synthetic.background(rng, size) for _ in range(views)]),
        }
        pics = benchmark_faces.render_pictures(head, person, views_, size, rng)
        for i in range(views):
            faces = det.detect(pics["image"][i])
            if not faces:
                misses += 1
                continue
            face = detection.select_faces(faces, "largest")[0]
            out["detections"].append(face.landmarks68)
            out["screen"].append(pics["screen"][i, :, :2])
            out["visible"].append(visible_vertices(pics["screen"][i], pics["depth"][i],
                                                   benchmark_faces.SCAN_VERTICES))
            out["yaw"].append(views_["angles"][i, 1])
            out["landmarks_world"].append(benchmark_faces.world_points(
                pics["screen"][i, head.landmarks], size))
            out["rotation"].append(np.asarray(cam.euler_rotation(views_["angles"][i])))
        if progress is not None:
            progress(views)
    res = {k: np.stack(v) for k, v in out.items()}
    res["misses"] = misses
    res["camera"] = camera
    return res


def _calibrate(path, learn, n_people: int, views: int, seed: int, bin_degrees: float,
               max_yaw_deg: float, conditions: Sequence[str], made_by: str,
               landmarks: str) -> dict:
    """The steps both calibrations share: the default model, the calibration pictures (with a
    progress bar), the yaw bins; `learn(model, pics, edges)` -> (LandmarkMap, extra info,
    summary of what it found[, the detector's error covariance]); the map and its provenance
    written (atomically) to `path`."""
    from facerecon_jax.io import export, progress  # noqa: PLC0415
    from facerecon_jax.models import ict_model  # noqa: PLC0415

    model = ict_model.load_default()
    bar = progress.Progress(n_people * views, unit="picture")
    pics = calibration_pictures(n_people, views, seed, max_yaw_deg=max_yaw_deg,
                                progress=bar.update, conditions=conditions,
                                landmarks=landmarks)
    bar.close()
    edges = np.radians(np.arange(-max_yaw_deg + bin_degrees, max_yaw_deg, bin_degrees))
    m, extra, found, *covariance = learn(model, pics, edges)
    summary = (f"{len(pics['yaw'])} pictures ({pics['misses']} without a detected face); "
               + found)
    info = {"model": model.info.get("name"), "n_vertices": model.n_vertices,
            "model_landmarks": np.asarray(model.landmarks).tolist(),
            "detector": ("dlib HOG / MMOD CNN + shape_predictor_68_face_landmarks"
                         + (" + MediaPipe face mesh (facerecon_jax.photo.face_mesh)"
                            if landmarks == "mesh" else "")
                         + " (facerecon_jax.photo.detection.FaceDetector)"),
            "landmarks": landmarks,
            "pictures": int(len(pics["yaw"])), "misses": int(pics["misses"]), "seed": seed,
            "n_people": n_people, "views": views, "max_yaw_deg": max_yaw_deg,
            **extra, "made_by": made_by, "summary": summary}
    export.write_text(path, to_json(m, info, *covariance))
    return info


def calibrate_to_file(path, n_people: int = 40, views: int = 12, seed: int = 31337,
                      bin_degrees: float = 10.0, max_yaw_deg: float = 50.0,
                      landmarks: str = "mesh") -> dict:
    """Learn the map for the default face model (`learn_map`: other vertices) on pictures lit
    as indoors and write it (atomically) to `path`."""
    def learn(model, pics, edges):
        res = learn_map(pics["detections"], pics["screen"], pics["visible"], pics["yaw"],
                        np.asarray(model.landmarks), np.asarray(model.mean_shape), edges)
        m = LandmarkMap(static=jnp.asarray(res["static"]), contour=jnp.asarray(res["contour"]),
                        yaw_edges=jnp.asarray(edges, jnp.float32))
        extra = {"residual": np.round(res["residual"], 4).tolist(),
                 "contour_residual": np.round(np.nan_to_num(res["contour_residual"], nan=-1),
                                              4).tolist()}
        return m, extra, (f"mean capped residual (inter-ocular units): inner "
                          f"{res['residual'][17:].mean():.3f}, contour "
                          f"{np.nanmean(res['contour_residual']):.3f}")
    return _calibrate(path, learn, n_people, views, seed, bin_degrees, max_yaw_deg,
                      ("indoor",), f"python -m launch.calibrate_landmarks --landmarks {landmarks}",
                      landmarks)


def calibrate_offsets_to_file(path, n_people: int = 40, views: int = 12, seed: int = 31337,
                              bin_degrees: float = 10.0, max_yaw_deg: float = 50.0,
                              conditions: Sequence[str] = ("cooperative", "indoor", "outdoor"),
                              landmarks: str = "mesh") -> dict:
    """Learn where the detector's points sit relative to the default model's own landmark
    vertices (`landmark_embedding.learn_offsets`: a 3D offset in the head's frame per landmark,
    per yaw bin on the jaw contour) on pictures of every condition, and write the map
    (atomically) to `path`: the model's landmark vertices with those offsets."""
    def learn(model, pics, edges):
        res = learn_offsets(pics["detections"], pics["landmarks_world"], pics["rotation"],
                            pics["camera"], pics["yaw"], edges)
        lm = np.asarray(model.landmarks, np.int32)
        m = LandmarkMap(static=jnp.asarray(lm),
                        contour=jnp.asarray(np.tile(lm[:17], (len(edges) + 1, 1))),
                        yaw_edges=jnp.asarray(edges, jnp.float32),
                        offset=jnp.asarray(res["offset"], jnp.float32),
                        contour_offset=jnp.asarray(res["contour_offset"], jnp.float32))
        extra = {"conditions": list(conditions),
                 "offset_units": "decimetres (the model's units)",
                 "noise_covariance": "the detector's error about the offsets' points over x0, "
                                     "y0, x1, y1, ... (inter-ocular distances squared; each "
                                     "point capped at 0.3, 0.1 of the way to the diagonal)",
                 "noise_by_yaw": res["noise_by_yaw"],
                 "rms_before": np.round(res["before"], 4).tolist(),
                 "rms_after": np.round(res["after"], 4).tolist()}
        b, f = res["before"], res["after"]
        found = (f"RMS distance of the detector's points from the model's landmarks "
                 f"(inter-ocular units), inner {np.mean(b[17:]):.3f} -> "
                 f"{np.mean(f[17:]):.3f}, contour {np.mean(b[:17]):.3f} -> "
                 f"{np.mean(f[:17]):.3f}; mean offset "
                 f"{100 * np.mean(np.linalg.norm(res['offset'], axis=1)):.1f} mm")
        return m, extra, found, res["covariance"]
    return _calibrate(path, learn, n_people, views, seed, bin_degrees, max_yaw_deg, conditions,
                      "python -m launch.calibrate_landmarks --kind offsets --landmarks "
                      + landmarks,
                      landmarks)


def _similarity_onto(points: np.ndarray, ref: np.ndarray, also=None):
    """points (68, 2) moved by the least-squares similarity (rotation, scale, shift) onto ref
    (`metrics.similarity_transform` on the plane z = 0); with `also` (K, 2): (moved points,
    `also` moved by the same similarity)."""
    from facerecon_jax.geometry import metrics  # noqa: PLC0415

    def lift(v):
        return np.concatenate([v, np.zeros((len(v), 1))], 1)
    p = lift(np.asarray(points, np.float64))
    sim = metrics.similarity_transform(p, lift(ref))
    moved = metrics.apply_similarity(p, *sim)[:, :2]
    if also is None:
        return moved
    return moved, metrics.apply_similarity(lift(np.asarray(also, np.float64)), *sim)[:, :2]


def _procrustes_mean(shapes: np.ndarray, iterations: int = 3) -> np.ndarray:
    """(68, 2) mean of `shapes` (N, 68, 2), each moved onto the current mean by a similarity,
    started from the first shape."""
    ref = shapes[0]
    for _ in range(iterations):
        ref = np.mean([_similarity_onto(s, ref) for s in shapes], axis=0)
    return ref


def detector_gain(detections, truth, points=slice(None), iterations: int = 3) -> dict:
    """How much of a face's true landmark deviation the detector's points carry.

    detections, truth (N, 68, 2): the detector's points and the true ones on N pictures. Both
    are brought into one frame (each picture's similarity onto the truth's Procrustes mean), and
    the detections' deviations from their mean across pictures are regressed on the truth's:
    {"gain": least-squares slope (1: the detector follows every deviation; 0: it returns one
    shape whatever the face), "correlation", "truth_spread", "detector_spread", "residual"
    (RMS of the deviation the slope does not explain)}, spreads in inter-ocular distances
    (outer eye corners) of the mean shape, over the points `points`."""
    det = np.asarray(detections, np.float64)
    tru = np.asarray(truth, np.float64)
    ref = _procrustes_mean(tru, iterations)
    t = np.stack([_similarity_onto(x, ref) for x in tru])[:, points]
    d = np.stack([_similarity_onto(x, ref) for x in det])[:, points]
    dt = (t - t.mean(0)).reshape(len(t), -1)
    dd = (d - d.mean(0)).reshape(len(d), -1)
    iod = float(np.linalg.norm(ref[36] - ref[45]))
    gain = float(np.sum(dt * dd) / np.sum(dt * dt))

    def rms(v):
        return float(np.sqrt(np.mean(np.sum(v.reshape(len(v), -1, 2) ** 2, -1))) / iod)
    return {"gain": gain,
            "correlation": float(np.sum(dt * dd) / np.sqrt(np.sum(dt * dt) * np.sum(dd * dd))),
            "truth_spread": rms(dt), "detector_spread": rms(dd), "residual": rms(dd - gain * dt)}


def shared_error_fraction(detections, truth, person, noise=None) -> dict:
    """The share of the detector's landmark error that one person's pictures have in common.

    detections, truth (N, 68, 2), person (N,) ints. Each picture's detections are moved onto
    its true points by a similarity (what the fit's pose absorbs), both are then moved by the
    similarity of the truth onto the truths' Procrustes mean (one frame for every picture), and
    the residual is taken in inter-ocular distances (outer eye corners of the mean), each point
    divided by its `noise` (68 spreads, as the fit weighs it; None: all 1). With the residuals'
    mean over all pictures removed (an error every face shares), the intraclass correlation
    rho = (c_same - c_other) / (v - c_other), from the mean inner product of residuals of two
    pictures of one person (c_same), of two people (c_other) and of a picture with itself (v):
    0 when a person's pictures err independently, 1 when they all err alike.
    Returns {"rho", "pairs_same", "pictures"}; `fitting.shared_prior_scale` uses rho."""
    det = np.asarray(detections, np.float64)
    tru = np.asarray(truth, np.float64)
    person = np.asarray(person)
    w = np.ones(68) if noise is None else 1.0 / np.asarray(noise, np.float64)
    ref = _procrustes_mean(tru)
    iod = float(np.linalg.norm(ref[36] - ref[45]))
    res = []
    for d, t in zip(det, tru):
        # the pose absorbs a similarity between detections and truth; then both go into one
        # frame (the truth's onto the mean shape), so a person's error reads alike in every
        # picture whatever its roll and size
        t_on, d_on = _similarity_onto(t, ref, also=_similarity_onto(d, t))
        res.append(((d_on - t_on) / iod * w[:, None]).reshape(-1))
    r = np.stack(res)
    r = r - r.mean(0)
    gram = r @ r.T
    same = person[:, None] == person[None, :]
    off = ~np.eye(len(r), dtype=bool)
    if not np.any(same & off) or not np.any(~same):
        raise ValueError("shared_error_fraction needs two pictures of one person and pictures "
                         "of two people")
    v = float(np.mean(np.diag(gram)))
    c_same = float(np.mean(gram[same & off]))
    c_other = float(np.mean(gram[~same]))
    return {"rho": (c_same - c_other) / (v - c_other), "pairs_same": int(np.sum(same & off) // 2),
            "pictures": int(len(r))}
