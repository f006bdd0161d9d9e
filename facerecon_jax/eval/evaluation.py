"""The paper's evaluation (Tables 1 and 2, MICC Florence protocol) on faces whose shape we know.

MICC cannot be downloaded here, so the benchmark renders its own people (`benchmark_faces`):
whole ICT heads with eyes and a mouth interior, identities from all 100 ICT modes plus smooth
out-of-model detail (the fitter's model cannot express them exactly), photo-like skin, under
three conditions like MICC's:
  cooperative  near frontal, even light, neutral expression;
  indoor       moderate pose and directional light, half the images with a mild expression;
  outdoor      strong directional light, larger pose, half with a mild expression, half occluded.
Every picture goes through the photo pipeline (dlib detection and landmarks, alignment, skin
mask, fitting); pictures where no face is found are counted apart (and keep the mean face).

Scoring (docs/design.md §12): a method's neutral identity mesh is aligned to the person's scan (the
neutral face area, detail included) by ICP with isotropic scale, scan points within 95 mm of the
nose tip are kept, and the point-to-plane RMSE is reported in mm, mean ± std over people.

Rows that frame the others: the mean face (the floor any method must beat), fitting with the
ground-truth landmarks instead of detected ones (oracle landmarks), and the model fitted to the
scan itself in 3D (the model floor: no fit from pictures can do better with this model).
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Dict, List, Optional, Sequence

import jax.numpy as jnp
import numpy as np

from facerecon_jax.aggregation import aggregate
from facerecon_jax.eval import benchmark_faces
from facerecon_jax.fit import fitting
from facerecon_jax.geometry import metrics, morphable
from facerecon_jax.photo import detection
from facerecon_jax.pipeline import reconstruct
from facerecon_jax.training import synthetic
from facerecon_jax.geometry.coefficients import CoeffLayout
from facerecon_jax.models.face_model import FaceModel

CONDITIONS = ("cooperative", "indoor", "outdoor")
NEUTRAL_PROB = {"cooperative": 1.0, "indoor": 0.5, "outdoor": 0.5}
OCCLUSION_PROB = {"cooperative": 0.0, "indoor": 0.0, "outdoor": 0.5}


@dataclasses.dataclass
class People:
    persons: List[benchmark_faces.Person]
    scans: np.ndarray               # (P, 6706, 3) decimetres: the ground truth


@dataclasses.dataclass
class Benchmark:
    condition: str
    images: np.ndarray              # (P * J, S, S, 3) uint8
    person: np.ndarray              # (P * J,) person index
    landmarks: np.ndarray           # (P * J, 68, 2) ground-truth landmarks (picture px, y down)
    expression: np.ndarray          # (P * J, 53) blendshape weights shown
    angles: np.ndarray              # (P * J, 3) head rotation (radians)

    @property
    def neutral(self) -> np.ndarray:
        return ~np.any(self.expression > 0, axis=1)


def make_people(n_people: int, seed: int, detail_mm: float = 2.0, head=None,
                **albedo_options) -> People:
    """The held-out people, fixed by the seed (`albedo_options`:
    `benchmark_faces.skin_albedo`'s)."""
    head = head or benchmark_faces.load_head()
    rng = np.random.default_rng([seed, 0x9E0])
    persons = [benchmark_faces.make_person(head, rng, detail_mm, **albedo_options)
               for _ in range(n_people)]
    return People(persons, np.stack([benchmark_faces.person_scan(head, p) for p in persons]))


def make_benchmark(people: People, images_per_person: int, condition: str, seed: int,
                   size: int = 300, head=None) -> Benchmark:
    """`images_per_person` pictures of every person under `condition` (fixed by the seed)."""
    head = head or benchmark_faces.load_head()
    cond = synthetic.CONDITIONS[condition]
    rng = np.random.default_rng([seed, CONDITIONS.index(condition), 0xBE5])
    out = {k: [] for k in ("images", "landmarks", "expression", "angles")}
    person = np.repeat(np.arange(len(people.persons)), images_per_person)
    for p in people.persons:
        j = images_per_person
        views = {
            "exp": np.stack([benchmark_faces.sample_expression(
                head, rng, rng.uniform() < NEUTRAL_PROB[condition]) for _ in range(j)]),
            "angles": np.radians(np.stack([[rng.uniform(-cond.max_pitch, cond.max_pitch),
                                            rng.uniform(-cond.max_yaw, cond.max_yaw),
                                            rng.uniform(-cond.max_roll, cond.max_roll)]
                                           for _ in range(j)])).astype(np.float32),
            "gamma": np.stack([synthetic.sample_light(rng, cond, "rgb")
                               for _ in range(j)]).astype(np.float32),
            "trans": np.stack([[rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1),
                                rng.uniform(-0.5, 0.5)] for _ in range(j)]).astype(np.float32),
            "background": np.stack([synthetic.background(rng, size) for _ in range(j)]),
        }
        pics = benchmark_faces.render_pictures(head, p, views, size, rng,
                                               occlusion_prob=OCCLUSION_PROB[condition])
        out["images"].append(pics["image"])
        out["landmarks"].append(pics["landmarks"])
        out["expression"].append(views["exp"])
        out["angles"].append(views["angles"])
    return Benchmark(condition, person=person, **{k: np.concatenate(v) for k, v in out.items()})


# --------------------------------------------------------------------------- fitting pictures

def prepare_images(model: FaceModel, images: np.ndarray, landmarks: Optional[np.ndarray] = None,
                   detector=None):
    """The photo pipeline's preparation (detection or given landmarks, alignment, skin mask)
    for every picture. Returns (prepared faces, their picture indices, indices of misses)."""
    det = detector or detection.FaceDetector()
    prepared, where, missed = [], [], []
    for i, img in enumerate(images):
        src = reconstruct.Source(str(i), f"benchmark picture {i}", lambda img=img: img,
                                 landmarks=None if landmarks is None else landmarks[i])
        try:
            prepared.extend(reconstruct.prepare(src, model, det))
            where.append(i)
        except detection.NoFaceError:
            missed.append(i)
    return prepared, np.asarray(where, int), np.asarray(missed, int)


def fit_prepared(model: FaceModel, layout: CoeffLayout, prepared, where, n_images: int,
                 cfg: fitting.FitConfig, embed_params=None, predictor=None, batch_size: int = 8,
                 progress=None, landmark_map=None) -> np.ndarray:
    """(n_images, D) fitted vectors; pictures without a prepared face keep the mean face."""
    out = np.zeros((n_images, layout.size), np.float32)
    for s in range(0, len(prepared), batch_size):
        chunk = prepared[s:s + batch_size]
        x, _ = reconstruct.fit_faces(model, layout, chunk, cfg, embed_params,
                                     predictor=predictor, batch_size=batch_size,
                                     landmark_map=landmark_map)
        out[where[s:s + batch_size]] = np.asarray(x)
        if progress is not None:
            progress(len(chunk))
    return out


# --------------------------------------------------------------------------- scoring

def neutral_mesh(model: FaceModel, id_coeffs, exp_coeffs=None) -> np.ndarray:
    """(V, 3) decimetres: the identity's shape with a neutral (or given) expression, unposed."""
    m = model.to_jax()
    ids = jnp.asarray(id_coeffs, jnp.float32)[None]
    exp = (jnp.zeros((1, model.n_exp)) if exp_coeffs is None
           else jnp.asarray(exp_coeffs, jnp.float32)[None])
    return np.asarray(morphable.shape(m, ids, exp))[0]


def score_mesh(model: FaceModel, pred_vertices, gt_vertices, radius_mm: float = 95.0,
               pred_faces=None) -> Dict[str, float]:
    """MICC-style RMSE (mm) of a predicted mesh against a person's ground-truth scan points.
    With the model's own topology (pred_faces None) the scan is assumed to share the landmark
    vertices, which start the ICP."""
    faces = np.asarray(model.triangles if pred_faces is None else pred_faces)
    lm = np.asarray(model.landmarks)
    nose = gt_vertices[lm[30]]
    init = None
    if pred_faces is None:                     # same topology: landmark vertices correspond
        init = (np.asarray(pred_vertices)[lm], gt_vertices[lm])
    r = metrics.micc_rmse(np.asarray(pred_vertices), faces, gt_vertices, nose,
                          radius_mm=radius_mm, init_landmarks=init)
    return {"rmse_mm": float(r["rmse_mm"])}


def score_identities(model: FaceModel, layout: CoeffLayout, x: np.ndarray, person: np.ndarray,
                     scans: np.ndarray, radius_mm: float = 95.0) -> np.ndarray:
    """(N,) RMSE (mm) of each vector's neutral identity mesh against its person's scan."""
    ids = layout.split(np.asarray(x))["id"]
    return np.array([score_mesh(model, neutral_mesh(model, ids[i]), scans[p],
                                radius_mm)["rmse_mm"] for i, p in enumerate(person)])


def model_floor(model: FaceModel, scan: np.ndarray, iterations: int = 6,
                ridge: float = 1e-3) -> Dict[str, np.ndarray]:
    """The model fitted to a scan in 3D (same topology): identity and expression by bounded,
    slightly regularised least squares (blendshape weights in [0, 1] for blendshape models),
    alternated with a similarity alignment of the scan onto the model. The best this model can
    do for this face: {"id": (n_id,), "exp": (n_exp,)}."""
    import scipy.optimize  # noqa: PLC0415

    mean = np.asarray(model.mean_shape, np.float64)
    basis = np.concatenate([np.asarray(model.id_basis, np.float64),
                            np.asarray(model.exp_basis, np.float64)]).reshape(
                                model.n_id + model.n_exp, -1).T          # (3V, n)
    n_id = model.n_id
    lo = np.full(basis.shape[1], -np.inf)
    hi = np.full(basis.shape[1], np.inf)
    if model.is_blendshape:
        lo[n_id:], hi[n_id:] = 0.0, 1.0
    a = np.vstack([basis, np.sqrt(ridge) * np.eye(basis.shape[1])])
    # min ||a c - b|| = min ||r c - q^T b|| (a = q r): the bounded solve runs on the small
    # square system instead of the 3V-row one
    q, r_a = np.linalg.qr(a)
    coef = np.zeros(basis.shape[1])
    for _ in range(iterations):
        current = mean + (basis @ coef).reshape(-1, 3)
        s, r, t = metrics.similarity_transform(scan, current)
        target = metrics.apply_similarity(scan, s, r, t)
        b = np.concatenate([(target - mean).reshape(-1), np.zeros(basis.shape[1])])
        coef = scipy.optimize.lsq_linear(r_a, q.T @ b, bounds=(lo, hi), method="bvls").x
    return {"id": coef[:n_id].astype(np.float32), "exp": coef[n_id:].astype(np.float32)}


def per_vertex_error(model: FaceModel, pred_vertices, gt_vertices) -> np.ndarray:
    """(V,) mm: distance of each predicted vertex to its ground-truth vertex after a similarity
    alignment on all vertices (same topology), for heat maps on the mean face."""
    s, r, t = metrics.similarity_transform(np.asarray(pred_vertices), gt_vertices)
    aligned = metrics.apply_similarity(np.asarray(pred_vertices), s, r, t)
    return np.linalg.norm(aligned - gt_vertices, axis=1) * 100.0


# --------------------------------------------------------------------------- multi-image

def aggregate_people(layout: CoeffLayout, x: np.ndarray, person: np.ndarray, n_people: int,
                     key, n_init: int = 10) -> Dict[str, np.ndarray]:
    """(n_people, D) per method: shape averaging, median, k-means per person (on identity and
    texture, as the paper; and on the shape coefficients only), k-means paper."""
    out = {m: np.zeros((n_people, layout.size), np.float32)
           for m in ("shape averaging", "median", "k-means per person",
                     "k-means per person, shape only", "k-means paper")}
    names = [f"img{i}" for i in range(len(x))]
    for p in range(n_people):
        sel = person == p
        nm = [n for n, s_ in zip(names, sel) if s_]
        out["shape averaging"][p] = aggregate.aggregate_person(nm, x[sel], layout,
                                                               mode="mean").vector
        out["median"][p] = aggregate.aggregate_person(nm, x[sel], layout, mode="median").vector
        out["k-means per person"][p] = aggregate.aggregate_person(
            nm, x[sel], layout, mode="per_person", key=key, n_init=n_init).vector
        out["k-means per person, shape only"][p] = aggregate.aggregate_person(
            nm, x[sel], layout, mode="per_person", key=key, n_init=n_init,
            fields=aggregate.FIELD_SETS["shape"]).vector
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


def person_means(errors: Sequence[float], person: np.ndarray, n_people: int) -> List[float]:
    """Per-person mean of per-image errors."""
    e = np.asarray(errors, np.float64)
    return [float(e[person == p].mean()) for p in range(n_people)]


# --------------------------------------------------------------------------- the whole run

def fit_config(base, overrides=None) -> fitting.FitConfig:
    """FitConfig from a reconstruct-style ConfigDict with `overrides` (a dict) applied."""
    c = base.copy_and_resolve_references()
    for k, v in (overrides or {}).items():
        if k not in c:
            raise KeyError(f"unknown fitting setting {k!r}; known: {sorted(c.keys())}")
        c[k] = v
    return fitting.FitConfig.from_config(c), c


def _first_pictures(person: np.ndarray, k: int) -> np.ndarray:
    """Indices of the first k pictures of each person (all when k <= 0)."""
    person = np.asarray(person)
    if k <= 0:
        return np.arange(len(person))
    rank = np.array([np.sum(person[:i] == p) for i, p in enumerate(person)])
    return np.nonzero(rank < k)[0]


def _identity_rows(layout, x):
    return layout.split(np.asarray(x))["id"]


def run_benchmark(cfg, workdir=None, log=print, progress=None) -> dict:
    """The benchmark of configs/evaluate.py: returns the results (see `evaluation_report`).
    With `workdir`, the pictures and scans are written to <workdir>/benchmark/ so that other
    tools' meshes can be scored on the same faces."""
    import time  # noqa: PLC0415

    import jax  # noqa: PLC0415

    from facerecon_jax.io import export  # noqa: PLC0415
    from facerecon_jax.photo import face_embedding  # noqa: PLC0415
    from facerecon_jax.models.model_loading import load_face_model  # noqa: PLC0415

    t_start = time.time()
    model = load_face_model(cfg.fit.model)
    layout = CoeffLayout.for_model(model, cfg.fit.light)
    fit_cfg, fit_c = fit_config(cfg.fit)
    joint_cfg, _ = fit_config(cfg.fit, dict(cfg.joint))
    lmap = fitting.landmark_map_for(model, fit_c.landmark_map, fit_c.landmarks)
    embed = (face_embedding.load_face_embedding()
             if fit_cfg.perceptual or joint_cfg.perceptual else None)
    predictor, rnet_layout = None, None
    if cfg.checkpoint:
        from facerecon_jax.training import train  # noqa: PLC0415
        predictor, meta = train.load_predictor(
            cfg.checkpoint, mirror_model=model if cfg.get("checkpoint_mirror") else None)
        rnet_layout = CoeffLayout.for_model(model, meta["light"])
    head = benchmark_faces.load_head()
    people = make_people(cfg.n_people, cfg.seed, cfg.detail_mm, head)
    n_p, conds = cfg.n_people, list(cfg.conditions)
    res = {"conditions": conds, "n_people": n_p, "images_per_person": cfg.images_per_person,
           "single": {}, "multi": {}, "neutral_expression": {}, "misses": {}, "timing": {}}
    if workdir is not None:
        scans_dir = pathlib.Path(workdir) / "benchmark" / "scans"
        for p in range(n_p):
            export.save_mesh(scans_dir / f"person{p}.ply", people.scans[p],
                             head.scan_triangles)
        export.write_text(scans_dir / "nose_tips.json", json.dumps(
            {f"person{p}": people.scans[p][int(head.landmarks[30])].tolist()
             for p in range(n_p)}))
    # the model fitted to each scan: the floor of every row
    floors = [model_floor(model, people.scans[p]) for p in range(n_p)]
    floor_err = [score_mesh(model, neutral_mesh(model, f["id"]), people.scans[p],
                            cfg.radius_mm)["rmse_mm"] for p, f in enumerate(floors)]
    mean_err = [score_mesh(model, neutral_mesh(model, np.zeros(model.n_id)), people.scans[p],
                           cfg.radius_mm)["rmse_mm"] for p in range(n_p)]
    det = detection.FaceDetector(landmarks=fit_c.landmarks)
    key = jax.random.PRNGKey(cfg.seed)
    all_faces, all_groups, all_x, all_person = [], [], [], []
    heat = []

    def single(method, cond, errs):
        res["single"].setdefault(method, {})[cond] = [float(e) for e in errs]

    def multi(method, cond, errs):
        res["multi"].setdefault(method, {})[cond] = [float(e) for e in errs]

    for cond in conds:
        t0 = time.time()
        bench = make_benchmark(people, cfg.images_per_person, cond, cfg.seed, cfg.size, head)
        if workdir is not None:
            d = pathlib.Path(workdir) / "benchmark" / cond
            for i, img in enumerate(bench.images):
                export.save_png(d / f"img{i:03d}_person{bench.person[i]}.png", img)
        prepared, where, missed = prepare_images(model, bench.images, detector=det)
        oracle, where_o, _ = prepare_images(model, bench.images, bench.landmarks, detector=det)
        res["misses"][cond] = int(len(missed))
        t1 = time.time()
        n = len(bench.images)
        single("mean face", cond, [mean_err[p] for p in bench.person])
        x_fit = fit_prepared(model, layout, prepared, where, n, fit_cfg, embed,
                             batch_size=fit_c.batch_size, landmark_map=lmap, progress=progress)
        single("fitting", cond, score_identities(model, layout, x_fit, bench.person,
                                                 people.scans, cfg.radius_mm))
        # the oracle row on the first `oracle_images` pictures of each person (a bound, not a
        # method: a subset keeps the run short)
        sub = np.isin(where_o, _first_pictures(bench.person, cfg.oracle_images))
        x_or = fit_prepared(model, layout, [f for f, s_ in zip(oracle, sub) if s_],
                            where_o[sub], n, fit_cfg, embed, batch_size=fit_c.batch_size,
                            progress=progress)
        keep = _first_pictures(bench.person, cfg.oracle_images)
        single("fitting, true landmarks", cond, score_identities(
            model, layout, x_or[keep], bench.person[keep], people.scans, cfg.radius_mm))
        if predictor is not None:
            # R-Net alone, R-Net + the short refinement of --mode refine, and the same short
            # fit from the mean face (what the network's start is worth)
            short = dataclasses.replace(fit_cfg, steps_landmark=int(fit_c.refine_steps_landmark),
                                        steps=int(fit_c.refine_steps))
            steps = f"{short.steps_landmark} + {short.steps} steps"
            for name, c_, pred in (("R-Net", dataclasses.replace(short, steps_landmark=0,
                                                                   steps=0), predictor),
                                   (f"R-Net + refinement ({steps})", short, predictor),
                                   (f"fitting, {steps} from the mean face", short, None)):
                x_rn = fit_prepared(model, rnet_layout, prepared, where, n, c_, embed,
                                    predictor=pred, batch_size=fit_c.batch_size,
                                    landmark_map=lmap, progress=progress if c_.steps else None)
                single(name, cond, score_identities(model, rnet_layout, x_rn, bench.person,
                                                    people.scans, cfg.radius_mm))
        single("model fitted to the scan (floor)", cond, [floor_err[p] for p in bench.person])
        neutral = bench.neutral[where]
        res["neutral_expression"][cond] = {
            "images": int(neutral.sum()),
            "mean_sum_abs": float(np.abs(layout.split(x_fit[where])["exp"][neutral]).sum(1)
                                  .mean()) if neutral.any() else 0.0,
            "mean_max": float(np.abs(layout.split(x_fit[where])["exp"][neutral]).max(1)
                              .mean()) if neutral.any() else 0.0}
        for i, p in zip(where, bench.person[where]):
            heat.append(per_vertex_error(model, neutral_mesh(model, layout.split(x_fit[i])["id"]),
                                         people.scans[p]))
        # multi-image
        t2 = time.time()
        if cfg.joint_per_condition:
            x_joint = reconstruct.fit_groups(model, layout, prepared, bench.person[where],
                                             joint_cfg, embed, batch_size=cfg.joint_batch_size,
                                             landmark_map=lmap, progress=progress)
            multi("joint fit", cond, _score_people(model, layout, x_joint, bench.person[where],
                                                   people.scans, cfg.radius_mm))
        agg = aggregate_people(layout, x_fit, bench.person, n_p, key, cfg.n_init)
        for name, vecs in agg.items():
            multi(name, cond, [score_mesh(model, neutral_mesh(model, layout.split(vecs[p])["id"]),
                                          people.scans[p], cfg.radius_mm)["rmse_mm"]
                               for p in range(n_p)])
        all_faces += prepared
        all_groups.append(bench.person[where])
        all_x.append(x_fit)
        all_person.append(bench.person)
        res["timing"][cond] = {"render_and_prepare_s": t1 - t0, "single_s": t2 - t1,
                               "multi_s": time.time() - t2}
        log(f"{cond}: " + ", ".join(
            f"{m} {np.mean(v[cond]):.3f}" for m, v in res["single"].items()) + " | " +
            ", ".join(f"{m} {np.mean(v[cond]):.3f}" for m, v in res["multi"].items()))
    if len(conds) > 1:
        t3 = time.time()
        groups = np.concatenate(all_groups)
        x_joint = reconstruct.fit_groups(model, layout, all_faces, groups, joint_cfg, embed,
                                         batch_size=cfg.joint_batch_size, landmark_map=lmap,
                                         progress=progress)
        multi("joint fit", "All", _score_people(model, layout, x_joint, groups, people.scans,
                                                cfg.radius_mm))
        agg = aggregate_people(layout, np.concatenate(all_x), np.concatenate(all_person), n_p,
                               key, cfg.n_init)
        for name, vecs in agg.items():
            multi(name, "All", [score_mesh(model, neutral_mesh(model, layout.split(vecs[p])["id"]),
                                           people.scans[p], cfg.radius_mm)["rmse_mm"]
                                for p in range(n_p)])
        res["timing"]["All"] = {"multi_s": time.time() - t3}
    for cond in conds + (["All"] if len(conds) > 1 else []):
        multi("mean face", cond, mean_err)
        multi("model fitted to the scan (floor)", cond, floor_err)
    res["heatmap_mm"] = np.mean(heat, axis=0).tolist() if heat else []
    if cfg.external_meshes:
        res["external"] = score_external(cfg.external_meshes, conds, people.scans,
                                         model, cfg.radius_mm)
    res["seconds"] = time.time() - t_start
    return res


def score_external(folder, conds, scans, model, radius_mm=95.0) -> dict:
    """Meshes of another tool, <folder>/<condition>/img<k>_person<p>.obj|ply (in the scans'
    frame and units, any topology): {condition: {picture: rmse_mm}}."""
    import trimesh  # noqa: PLC0415
    out = {}
    for cond in conds:
        for f in sorted(pathlib.Path(folder, cond).glob("*")):
            if f.suffix.lower() not in (".obj", ".ply"):
                continue
            try:
                p = int(f.stem.split("person")[-1])
            except ValueError as e:
                raise ValueError(f"{f}: external meshes are named like the benchmark's "
                                 f"pictures, img<k>_person<p>.obj") from e
            mesh = trimesh.load(f, process=False, force="mesh")
            out.setdefault(cond, {})[f.stem] = score_mesh(
                model, np.asarray(mesh.vertices), scans[p], radius_mm,
                pred_faces=np.asarray(mesh.faces))["rmse_mm"]
    return out


def _score_people(model, layout, x, person, scans, radius_mm):
    """Per person: the identity shared by their jointly fitted images (the first one's; all
    are equal) scored against their scan; people without a fitted image keep the mean face."""
    out = []
    for p in range(len(scans)):
        rows = np.nonzero(np.asarray(person) == p)[0]
        ids = layout.split(np.asarray(x[rows[0]]))["id"] if len(rows) else np.zeros(model.n_id)
        out.append(score_mesh(model, neutral_mesh(model, ids), scans[p], radius_mm)["rmse_mm"])
    return out


def run_ablation(cfg, log=print) -> dict:
    """The ablation table: each variant of `cfg.ablations` (reconstruct-config overrides;
    "true_landmarks": True fits to the ground-truth landmarks) fitted on the first
    `cfg.ablation_people` people, `cfg.ablation_images` pictures each per condition."""
    import time  # noqa: PLC0415

    from facerecon_jax.photo import face_embedding  # noqa: PLC0415
    from facerecon_jax.models.model_loading import load_face_model  # noqa: PLC0415

    model = load_face_model(cfg.fit.model)
    head = benchmark_faces.load_head()
    n_p, j = cfg.ablation_people, cfg.ablation_images
    people = make_people(n_p, cfg.seed, cfg.detail_mm, head)
    benches = {cond: make_benchmark(people, j, cond, cfg.seed, cfg.size, head)
               for cond in cfg.conditions}
    true = {cond: prepare_images(model, b.images, b.landmarks) for cond, b in benches.items()}
    detected = {}

    def detected_by(source):
        """{condition: prepared faces} with a landmark source's points (a row's `landmarks`),
        detected once per source."""
        if source not in detected:
            det = detection.FaceDetector(landmarks=source)
            detected[source] = {cond: prepare_images(model, b.images, detector=det)
                                for cond, b in benches.items()}
        return detected[source]
    mean_err = [score_mesh(model, neutral_mesh(model, np.zeros(model.n_id)), people.scans[p],
                           cfg.radius_mm)["rmse_mm"] for p in range(n_p)]
    rows = {"mean face": {c: float(np.mean(mean_err)) for c in cfg.conditions}}
    rows["mean face"]["All"] = float(np.mean(mean_err))
    embed = None
    variants = dict(cfg.ablations)
    if cfg.ablation_perceptual:
        variants["+ perceptual"] = {"perceptual": True}
    for name, overrides in variants.items():
        overrides = dict(overrides)
        oracle = overrides.pop("true_landmarks", False)
        fcfg, fc = fit_config(cfg.fit, overrides)
        layout = CoeffLayout.for_model(model, fc.light)
        lmap = None if oracle else fitting.landmark_map_for(model, fc.landmark_map, fc.landmarks)
        if fcfg.perceptual and embed is None:
            embed = face_embedding.load_face_embedding()
        row, exps, t0, n_fit = {}, [], time.time(), 0
        for cond in cfg.conditions:
            bench = benches[cond]
            prepared, where = (true[cond] if oracle else detected_by(fc.landmarks)[cond])[:2]
            x = fit_prepared(model, layout, prepared, where, len(bench.images), fcfg,
                             embed if fcfg.perceptual else None, batch_size=fc.batch_size,
                             landmark_map=lmap)
            n_fit += len(prepared)
            row[cond] = float(np.mean(score_identities(model, layout, x, bench.person,
                                                       people.scans, cfg.radius_mm)))
            neutral = bench.neutral[where]
            if neutral.any():
                exps.append(np.abs(layout.split(x[where])["exp"][neutral]).sum(1))
        row["All"] = float(np.mean([row[c] for c in cfg.conditions]))
        row["neutral_exp"] = float(np.mean(np.concatenate(exps))) if exps else None
        row["seconds_per_picture"] = (time.time() - t0) / max(n_fit, 1)
        rows[name] = row
        log(f"ablation {name}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()
                                             if v is not None))
    return {"conditions": list(cfg.conditions), "n_people": n_p, "images_per_person": j,
            "rows": rows}
