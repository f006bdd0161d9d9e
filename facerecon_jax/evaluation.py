"""The paper's evaluation (Tables 1 and 2, MICC Florence protocol) on faces we can render.

MICC cannot be downloaded here, so the benchmark is made by our synthetic source: held-out people
(identity and texture fixed per person), several images each, under three conditions like MICC's
(cooperative: frontal, even light; indoor: moderate pose and light; outdoor: strong directional
light, larger pose, occlusions). The ground-truth "scan" of a person is the neutral mesh of their
identity; every method's neutral identity mesh is aligned to it by ICP with isotropic scale,
ground-truth points within 95 mm of the nose tip are kept, and the point-to-plane RMSE is
reported in mm (DESIGN section 9).

Single-image methods (Table 1): the mean face, fitting (the full photo pipeline: dlib landmarks,
alignment, skin mask, analysis by synthesis) and R-Net from a checkpoint. Multi-image methods
(Table 2) aggregate the fitted per-image vectors of a person: shape averaging, the median,
k-means per person (largest cluster) and k-means in the paper's mode (all images of a condition
pooled, identities unknown, K = number of people; a person's result is the centroid of the
cluster holding most of their images).
"""
from __future__ import annotations

import dataclasses
from typing import Dict

import jax.numpy as jnp
import numpy as np

from facerecon_jax import (aggregate, detection, fitting, metrics, morphable, reconstruct,
                           synthetic)
from facerecon_jax.coefficients import CoeffLayout
from facerecon_jax.face_model import FaceModel


@dataclasses.dataclass
class Benchmark:
    condition: str
    images: np.ndarray          # (P * J, S, S, 3) uint8
    coeffs: np.ndarray          # (P * J, D) ground truth
    person: np.ndarray          # (P * J,) person index
    landmarks: np.ndarray       # (P * J, 68, 2) ground-truth projected landmarks


def people_identities(model: FaceModel, n_people: int, seed: int) -> Dict[str, np.ndarray]:
    """The held-out people: identity and texture coefficients, fixed by the seed."""
    rng = np.random.default_rng([seed, 0x9E0])
    return {"id": rng.normal(size=(n_people, model.n_id)).astype(np.float32),
            "tex": rng.normal(size=(n_people, model.n_tex)).astype(np.float32)}


def make_benchmark(model: FaceModel, layout: CoeffLayout, people: Dict[str, np.ndarray],
                   images_per_person: int, condition: str, seed: int,
                   size: int = 224) -> Benchmark:
    n_people = len(people["id"])
    person = np.repeat(np.arange(n_people), images_per_person)
    override = {k: v[person] for k, v in people.items()}
    cond_seed = seed * 1000 + ("cooperative", "indoor", "outdoor").index(condition)
    ex = synthetic.generate(model, layout, len(person), seed=cond_seed, condition=condition,
                            size=size, override=override,
                            occlusion_prob=0.5 if condition == "outdoor" else 0.0)
    return Benchmark(condition, ex["image"], ex["coeffs"], person, ex["landmarks"])


def fit_images(model: FaceModel, layout: CoeffLayout, images: np.ndarray,
               cfg: fitting.FitConfig, embed_params=None, predictor=None,
               batch_size: int = 8, progress=None):
    """The photo pipeline on rendered images. Returns (vectors (N, D), ok (N,) bool): images
    where dlib finds no face keep the mean face (ok False)."""
    det = detection.FaceDetector()
    prepared, where = [], []
    for i, img in enumerate(images):
        src = reconstruct.Source(str(i), f"benchmark image {i}", lambda img=img: img)
        try:
            prepared.extend(reconstruct.prepare(src, model, det))
        except detection.NoFaceError:
            continue
        where.append(i)
    out = np.zeros((len(images), layout.size), np.float32)
    for s in range(0, len(prepared), batch_size):
        chunk = prepared[s:s + batch_size]
        x, _ = reconstruct.fit_faces(model, layout, chunk, cfg, embed_params,
                                     predictor=predictor, batch_size=batch_size)
        out[where[s:s + batch_size]] = np.asarray(x)
        if progress is not None:
            progress(len(chunk))
    ok = np.zeros(len(images), bool)
    ok[where] = True
    return out, ok


def neutral_mesh(model: FaceModel, id_coeffs) -> np.ndarray:
    """(V, 3) decimetres: the identity's shape with a neutral expression, unposed."""
    m = model.to_jax()
    ids = jnp.asarray(id_coeffs, jnp.float32)[None]
    return np.asarray(morphable.shape(m, ids, jnp.zeros((1, model.n_exp))))[0]


def score_mesh(model: FaceModel, pred_vertices, gt_vertices, radius_mm: float = 95.0,
               pred_faces=None) -> Dict[str, float]:
    """MICC-style RMSE (mm) of a predicted mesh against a person's ground-truth scan points."""
    faces = np.asarray(model.triangles if pred_faces is None else pred_faces)
    lm = np.asarray(model.landmarks)
    nose = gt_vertices[lm[30]]
    init = None
    if pred_faces is None:                     # same topology: landmark vertices correspond
        init = (np.asarray(pred_vertices)[lm], gt_vertices[lm])
    r = metrics.micc_rmse(np.asarray(pred_vertices), faces, gt_vertices, nose,
                          radius_mm=radius_mm, init_landmarks=init)
    return {"rmse_mm": float(r["rmse_mm"])}


def per_vertex_error(model: FaceModel, pred_vertices, gt_vertices) -> np.ndarray:
    """(V,) mm: distance of each predicted vertex to its ground-truth vertex after a similarity
    alignment on all vertices (same topology), for heat maps on the mean face."""
    s, r, t = metrics.similarity_transform(np.asarray(pred_vertices), gt_vertices)
    aligned = metrics.apply_similarity(np.asarray(pred_vertices), s, r, t)
    return np.linalg.norm(aligned - gt_vertices, axis=1) * 100.0


def aggregate_people(layout: CoeffLayout, x: np.ndarray, person: np.ndarray, n_people: int,
                     key, n_init: int = 10) -> Dict[str, np.ndarray]:
    """(n_people, D) per method: shape averaging, median, k-means per person, k-means paper."""
    out = {m: np.zeros((n_people, layout.size), np.float32)
           for m in ("shape averaging", "median", "k-means per person", "k-means paper")}
    names = [f"img{i}" for i in range(len(x))]
    for p in range(n_people):
        sel = person == p
        nm = [n for n, s_ in zip(names, sel) if s_]
        out["shape averaging"][p] = aggregate.aggregate_person(nm, x[sel], layout,
                                                               mode="mean").vector
        out["median"][p] = aggregate.aggregate_person(nm, x[sel], layout, mode="median").vector
        out["k-means per person"][p] = aggregate.aggregate_person(
            nm, x[sel], layout, mode="per_person", key=key, n_init=n_init).vector
    clusters, labels, _ = aggregate.cluster_all(names, x, layout, n_people, key=key,
                                                n_init=n_init)
    by_name = {c.name: c.vector for c in clusters}
    for p in range(n_people):
        lab = labels[person == p]
        c = int(np.bincount(lab).argmax())
        out["k-means paper"][p] = by_name.get(f"cluster{c:03d}", np.zeros(layout.size))
    return out


def mean_std(values) -> str:
    v = np.asarray(values, np.float64)
    return f"{v.mean():.2f} ± {v.std():.2f}"
