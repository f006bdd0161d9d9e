"""Test faces the fitting model cannot express exactly, rendered as photo-like pictures.

The evaluation benchmark (`evaluation.py`) must not test the fitter on faces drawn from the
fitter's own model: a fit that only has to find 80 coefficients of the very basis that made the
picture says little about real people. So the benchmark's people are built here from more than
the default model holds, and drawn with more than it draws:

- **Heads**: the whole published ICT head (`generic_neutral_mesh.obj`: face, back of the head
  with the eye and mouth sockets, gums and tongue, teeth, sclera and iris of both eyes), not the
  narrow face area the fitter uses, so the detector sees eyes, a mouth interior and a head
  outline (the default model alone has open holes there).
- **Identity**: all 100 published ICT identity modes on the whole head, coefficients ~ N(0, 1)
  (the default model keeps 80 modes re-orthogonalised on the face area), plus smooth
  out-of-model detail: a sum of random Gaussian bumps along the surface normal, 1.5-3.5 cm wide,
  scaled to `detail_mm` RMS over the face area.
- **Skin**: a skin tone drawn from light to dark, blotchy low-frequency variation, redder cheeks,
  nose and lips, darker brows, a hairline and hair on the back of the head, moles, per-vertex
  pore-scale noise; eyes with a random iris colour and a pupil; teeth, gums, dark sockets. The
  picture is blurred slightly and gets sensor noise.
- **Ground truth ("scan")**: the person's neutral head on the narrow face area (vertices
  [0, 6706), the default model's topology), detail included; the nose tip is landmark 30.

Vertex ranges of the ICT head parts are those published with ICT-FaceKit (its README).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Dict, Optional

import numpy as np

from facerecon_jax.models import face_model, ict_model

# ICT-FaceKit's published vertex ranges (0-based, end exclusive) and material polygon ranges
N_RENDER_POLYGONS = 24692          # face .. iris right (lacrimal fluid, eye blend, eye
                                   # occlusion and eyelash cards are left out)
PART_RANGES = {                    # vertex ranges
    "face": (0, 9409), "head_neck": (9409, 11248), "mouth_socket": (11248, 13294),
    "eye_socket": (13294, 14062), "gums_tongue": (14062, 17039), "teeth": (17039, 21451),
    "sclera_left": (21451, 22221), "iris_left": (22221, 23021),
    "sclera_right": (23021, 23791), "iris_right": (23791, 24591),
}
N_HEAD_VERTICES = 24591
SCAN_VERTICES = ict_model.N_VERTICES
# expressions a benchmark face may show (blendshape names of ICT)
MILD_EXPRESSIONS = ("mouthSmile_L", "mouthSmile_R", "jawOpen", "browInnerUp_L", "browInnerUp_R",
                    "mouthFrown_L", "mouthFrown_R", "eyeSquint_L", "eyeSquint_R",
                    "cheekSquint_L", "cheekSquint_R", "mouthPress_L", "mouthPress_R",
                    "browDown_L", "browDown_R", "mouthDimple_L", "mouthDimple_R")


@dataclasses.dataclass(frozen=True)
class Head:
    """The whole ICT head in the default model's frame (decimetres, same centring)."""
    neutral: np.ndarray            # (V, 3)
    id_deltas: np.ndarray          # (100, V, 3)
    exp_deltas: np.ndarray         # (53, V, 3)
    exp_names: tuple
    triangles: np.ndarray          # (T, 3)
    landmarks: np.ndarray          # (68,)
    scan_triangles: np.ndarray     # (T_scan, 3) the narrow face area (default model triangles)


@functools.lru_cache(maxsize=2)
def load_head(folder: Optional[str] = None) -> Head:
    """Read the whole head from the ICT-FaceKit assets (see `ict_model.find_source`)."""
    src = ict_model.find_source(folder)
    data, obj_path = ict_model.source_arrays(src), src.neutral_obj
    v = N_HEAD_VERTICES
    neutral = data["neutral"][:v].astype(np.float64) * ict_model.CM_TO_DM
    # the default model's frame: centred on the narrow face area's centroid
    centre = neutral[:SCAN_VERTICES].mean(0)
    neutral -= centre
    polys = ict_model.read_obj_polygons(obj_path, N_RENDER_POLYGONS)
    tris = ict_model.triangulate(polys)
    face_tris = ict_model.triangulate(polys[:ict_model.N_POLYGONS])
    oriented = ict_model._orient_outwards(neutral[:SCAN_VERTICES], face_tris)
    if not np.array_equal(oriented, face_tris):        # the OBJ winds inwards: flip all
        tris = tris[:, [0, 2, 1]]
    return Head(neutral=neutral.astype(np.float32),
                id_deltas=(data["identity_deltas"][:, :v] * ict_model.CM_TO_DM).astype(np.float32),
                exp_deltas=(data["expression_deltas"][:, :v] * ict_model.CM_TO_DM
                            ).astype(np.float32),
                exp_names=tuple(str(n) for n in data["expression_names"]),
                triangles=tris.astype(np.int32), landmarks=data["landmarks68"].astype(np.int32),
                scan_triangles=oriented.astype(np.int32))


def _part(head: Head, name: str) -> slice:
    a, b = PART_RANGES[name]
    return slice(a, b)


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    v0, v1, v2 = (vertices[triangles[:, k]] for k in range(3))
    fn = np.cross(v1 - v0, v2 - v0)
    vn = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(vn, triangles[:, k], fn)
    return vn / np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-12)


# --------------------------------------------------------------------------- people

@dataclasses.dataclass
class Person:
    id_coeffs: np.ndarray          # (100,) ICT identity coefficients
    detail: np.ndarray             # (V, 3) out-of-model displacement, decimetres
    albedo: np.ndarray             # (V, 3) RGB in [0, 1]


def person_neutral(head: Head, person: Person) -> np.ndarray:
    """(V, 3) the person's neutral head (identity + detail), decimetres."""
    flat = person.id_coeffs @ head.id_deltas.reshape(len(head.id_deltas), -1)
    return head.neutral + flat.reshape(-1, 3) + person.detail


def person_scan(head: Head, person: Person) -> np.ndarray:
    """(6706, 3) ground truth: the neutral face area (the default model's topology)."""
    return person_neutral(head, person)[:SCAN_VERTICES]


def detail_field(head: Head, base: np.ndarray, rng: np.random.Generator, rms_dm: float,
                 n_bumps: int = 14) -> np.ndarray:
    """Smooth out-of-model displacement: Gaussian bumps along the surface normal, scaled to
    `rms_dm` RMS over the face area."""
    normals = vertex_normals(base, head.triangles)
    face = base[:SCAN_VERTICES]
    centres = rng.choice(SCAN_VERTICES, n_bumps, replace=False)
    field = np.zeros_like(base)
    for c in centres:
        s = rng.uniform(0.15, 0.35)
        w = np.exp(-np.sum((base - face[c]) ** 2, axis=1) / (2 * s * s))
        field += rng.normal() * w[:, None] * normals[c][None, :]
    rms = np.sqrt(np.mean(np.sum(field[:SCAN_VERTICES] ** 2, axis=1)))
    return (field * (rms_dm / max(rms, 1e-12))).astype(np.float32)


def _smooth_noise(points: np.ndarray, rng, scale: float, n: int = 24) -> np.ndarray:
    """A smooth random scalar field on 3D points (sum of random Gaussian blobs), ~N(0, 1)."""
    centres = points[rng.choice(len(points), n, replace=False)]
    f = np.zeros(len(points))
    for c in centres:
        f += rng.normal() * np.exp(-np.sum((points - c) ** 2, 1) / (2 * scale * scale))
    return (f - f.mean()) / max(f.std(), 1e-9)


def _lips(shape: np.ndarray, lm: np.ndarray, face_h: float) -> np.ndarray:
    """(V,) lip weight: 1 on the front of the face inside the outer lip contour (landmarks
    48-59, seen from the front), falling off over ~1 mm outside it. (A band along the contour
    alone left the vermilion by the mouth opening skin-coloured and moved dlib's lip points:
    docs/accuracy.md item 20.)"""
    contour = lm[48:60]
    inside = ict_model.inside_polygon(shape[:, :2], contour[:, :2])
    front = shape[:, 2] > contour[:, 2].min() - 0.12 * face_h
    edge = ict_model.near_polyline(shape, np.concatenate([contour, contour[:1]]), 0.008 * face_h)
    return np.where(inside & front, 1.0, edge)


def skin_albedo(head: Head, shape: np.ndarray, rng: np.random.Generator,
                with_brows: bool = True, with_lips: bool = True) -> np.ndarray:
    """(V, 3) photo-like albedo of the whole head for a neutral `shape`. `with_brows` /
    `with_lips` False leave out the darker brows / the lips' colour, with the same random
    draws otherwise (benchmarks/realism_ablation.py)."""
    v = len(shape)
    lm = shape[head.landmarks]
    face_h = float(lm[36:48, 1].mean() - lm[8, 1])
    light, dark = np.array([0.86, 0.66, 0.56]), np.array([0.36, 0.23, 0.17])
    t = rng.beta(1.3, 1.6)
    tone = (light * (1 - t) + dark * t) * rng.uniform(0.94, 1.06, 3)
    skin = np.tile(tone, (v, 1))
    # blotchy low-frequency variation and pore-scale noise
    skin *= 1 + 0.05 * _smooth_noise(shape, rng, 0.25)[:, None]
    skin *= 1 + 0.03 * _smooth_noise(shape, rng, 0.08)[:, None] * np.array([1.0, 0.8, 0.7])
    skin *= 1 + rng.normal(0, 0.025, (v, 1))
    red = np.array([1.08, 0.93, 0.92])
    cheeks = sum(np.exp(-np.sum((shape - c) ** 2, 1) / (2 * (0.22 * face_h) ** 2))
                 for c in (lm[[2, 31]].mean(0), lm[[14, 35]].mean(0)))
    nose = np.exp(-np.sum((shape - lm[30]) ** 2, 1) / (2 * (0.12 * face_h) ** 2))
    redness = np.clip(rng.uniform(0.3, 1.0) * cheeks + 0.6 * nose, 0, 1)[:, None]
    skin = skin * (1 - redness) + skin * red * redness
    # brows and lips
    hair = np.array([0.10, 0.07, 0.05]) * rng.uniform(0.6, 3.0)
    brows = np.maximum(ict_model.near_polyline(shape, lm[17:22], 0.045 * face_h),
                       ict_model.near_polyline(shape, lm[22:27], 0.045 * face_h))
    brows = np.clip(brows * rng.uniform(0.6, 0.95), 0, 1)[:, None] * float(with_brows)
    skin = skin * (1 - brows) + hair * brows
    lips = _lips(shape, lm, face_h)[:, None] * float(with_lips)
    skin = skin * (1 - lips) + tone * np.array([0.85, 0.55, 0.55]) * lips
    # moles
    for c in rng.choice(SCAN_VERTICES, rng.integers(0, 6), replace=False):
        m = np.exp(-np.sum((shape - shape[c]) ** 2, 1) / (2 * 0.012 ** 2))[:, None]
        skin = skin * (1 - 0.6 * m)
    # hair: above a hairline on the forehead and over the back of the head
    brow_top = lm[17:27, 1].max()
    hairline = brow_top + rng.uniform(0.55, 0.75) * face_h
    behind = shape[:, 2] < lm[:, 2].min() - 0.3 * face_h
    up = 1 / (1 + np.exp(np.clip(-(shape[:, 1] - hairline) / (0.03 * face_h), -50, 50)))
    ears_up = 1 / (1 + np.exp(np.clip(-(shape[:, 1] - lm[36:48, 1].mean()) / (0.05 * face_h),
                                       -50, 50)))
    hair_w = np.clip(np.maximum(up, behind * ears_up), 0, 1)
    hair_w[PART_RANGES["head_neck"][1]:] = 0
    hair_c = hair * (1 + 0.15 * _smooth_noise(shape, rng, 0.05))[:, None]
    skin = skin * (1 - hair_w[:, None]) + hair_c * hair_w[:, None]
    out = skin
    # inside the head
    out[_part(head, "mouth_socket")] = tone * np.array([0.35, 0.12, 0.12])
    out[_part(head, "eye_socket")] = tone * 0.25
    out[_part(head, "gums_tongue")] = np.array([0.62, 0.28, 0.28]) * rng.uniform(0.85, 1.1)
    out[_part(head, "teeth")] = np.array([0.86, 0.82, 0.72]) * rng.uniform(0.85, 1.05)
    iris = np.array([[0.30, 0.17, 0.08], [0.25, 0.35, 0.50], [0.28, 0.33, 0.18],
                     [0.12, 0.08, 0.05]])[rng.integers(4)] * rng.uniform(0.8, 1.2)
    sclera = np.array([0.86, 0.82, 0.80]) * rng.uniform(0.85, 1.0)
    for side in ("left", "right"):
        # the sclera mesh is the whole eyeball, cornea included: colour what lies in front of
        # the iris disc as the iris (and pupil) seen through the cornea
        ball, ir = _part(head, f"sclera_{side}"), _part(head, f"iris_{side}")
        centre = shape[ball].mean(0)
        axis = shape[ir].mean(0) - centre
        axis /= np.linalg.norm(axis)
        # visible iris: ~0.37 of the eyeball's radius (12 mm across on a 16 mm ball)
        radius = 0.37 * np.max(np.linalg.norm(shape[ball] - centre, axis=1))
        for sl in (ball, ir):
            rel = shape[sl] - centre
            r = np.linalg.norm(np.cross(rel, axis), axis=1) / radius
            front = rel @ axis > 0
            c = np.where((r < 1.0)[:, None], iris * (1 + rng.normal(0, 0.08, (len(r), 1))),
                         sclera)
            c = np.where((r < 0.4)[:, None], 0.03, c)
            c = np.where(((r > 0.85) & (r < 1.05))[:, None], c * 0.5, c)   # limbal ring
            out[sl] = np.where(front[:, None], c, sclera)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def make_person(head: Head, rng: np.random.Generator, detail_mm: float = 2.0,
                **albedo_options) -> Person:
    """A benchmark person: 100-mode identity, out-of-model detail, photo-like albedo
    (`albedo_options`: `skin_albedo`'s)."""
    ids = rng.normal(size=len(head.id_deltas)).astype(np.float32)
    base = head.neutral + (ids @ head.id_deltas.reshape(len(ids), -1)).reshape(-1, 3)
    detail = detail_field(head, base, rng, detail_mm / 100.0)
    albedo = skin_albedo(head, base + detail, rng, **albedo_options)
    return Person(ids, detail, albedo)


# --------------------------------------------------------------------------- pictures

def head_model(head: Head, person: Person) -> face_model.FaceModel:
    """The person's head as a renderable FaceModel (no identity or texture modes; the 53
    expression blendshapes)."""
    v = N_HEAD_VERTICES
    info = {"name": "benchmark head", "expression_kind": "blendshapes in [0, 1]",
            "units": "decimetres"}
    return face_model.make_face_model(
        mean_shape=person_neutral(head, person), id_basis=np.zeros((1, v, 3), np.float32),
        exp_basis=head.exp_deltas, mean_albedo=person.albedo,
        tex_basis=np.zeros((1, v, 3), np.float32), triangles=head.triangles,
        landmarks=head.landmarks, skin_mask=np.zeros(v, np.float32),
        front_mask=np.ones(len(head.triangles), bool), info=info)


def sample_expression(head: Head, rng: np.random.Generator, neutral: bool) -> np.ndarray:
    """(53,) blendshape weights: zero when `neutral`, else 1-2 mild expressions."""
    exp = np.zeros(len(head.exp_names), np.float32)
    if neutral:
        return exp
    for name in rng.choice(MILD_EXPRESSIONS, rng.integers(1, 3), replace=False):
        exp[head.exp_names.index(str(name))] = rng.uniform(0.1, 0.5)
    return exp


def picture_camera(size: int):
    """The camera of `render_pictures`: f = 1015 px at distance 10 (the default model's),
    principal point at the centre of a `size` x `size` picture."""
    from facerecon_jax.geometry import camera as cam  # noqa: PLC0415
    return cam.Camera(focal=1015.0, cx=size / 2, cy=size / 2, width=size, height=size)


def world_points(screen: np.ndarray, size: int) -> np.ndarray:
    """(..., 3) world points (the heads' frame of `render_pictures`) of screen points (..., 3)
    as it returns them (x, y down, z_cam) in a `size` picture: `camera.to_screen` undone."""
    from facerecon_jax.geometry import camera as cam  # noqa: PLC0415
    screen = np.asarray(screen, np.float64)
    uvz = np.concatenate([np.asarray(cam.image_to_yup(screen[..., :2], size)), screen[..., 2:]],
                         -1)
    return np.asarray(cam.unproject(uvz, picture_camera(size)))


def render_pictures(head: Head, person: Person, views: Dict[str, np.ndarray], size: int,
                    rng: np.random.Generator, occlusion_prob: float = 0.0,
                    blur: float = 0.7, noise: float = 0.015) -> Dict[str, np.ndarray]:
    """Photos of one person. views: exp (N, 53), angles (N, 3), gamma (N, 27), trans (N, 3),
    background (N, size, size, 3) in [0, 1]. Camera: f = 1015 px at distance 10 (the default
    model's), principal point at the centre of a `size` x `size` picture.
    Returns image (N, size, size, 3) uint8, landmarks (N, 68, 2) projected landmark vertices
    (pixels, y down), face_mask (N, size, size), occlusion_mask (N, size, size), screen
    (N, 6706, 3) the face area's projected vertices (x, y, z_cam) and depth (N, size, size)
    (z_cam, 0 where empty)."""
    import cv2  # noqa: PLC0415
    import jax.numpy as jnp  # noqa: PLC0415

    from facerecon_jax.render import renderer  # noqa: PLC0415
    from facerecon_jax.training import synthetic  # noqa: PLC0415
    from facerecon_jax.geometry.coefficients import CoeffLayout  # noqa: PLC0415

    m = head_model(head, person).to_jax()
    layout = CoeffLayout(n_id=1, n_exp=len(head.exp_names), n_tex=1, light="rgb")
    n = len(views["exp"])
    x = layout.join({"exp": jnp.asarray(views["exp"]), "angles": jnp.asarray(views["angles"]),
                     "gamma": jnp.asarray(views["gamma"]), "trans": jnp.asarray(views["trans"]),
                     "id": jnp.zeros((n, 1)), "tex": jnp.zeros((n, 1))})
    camera = picture_camera(size)
    out = renderer.render_jit(m, x, layout, renderer.RenderConfig(camera=camera),
                              jnp.asarray(views["background"], jnp.float32))
    images = np.clip(np.asarray(out["image"]), 0, 1)
    masks = np.asarray(out["mask"], np.float32)
    lms = np.asarray(out["landmarks"], np.float32)
    res = {"image": np.zeros((n, size, size, 3), np.uint8), "landmarks": lms,
           "face_mask": masks, "occlusion_mask": np.zeros((n, size, size), np.float32),
           "screen": np.asarray(out["screen"])[:, :SCAN_VERTICES],
           "depth": np.asarray(out["depth"])}
    for i in range(n):
        img = images[i]
        if blur > 0:
            img = cv2.GaussianBlur(img, (0, 0), blur)
        if rng.uniform() < occlusion_prob:
            img, occ = synthetic.occlude(rng, img, masks[i], lms[i], max_fraction=0.3)
            res["occlusion_mask"][i] = occ
        img = img + rng.normal(0, rng.uniform(0.3, 1.0) * noise, img.shape)
        res["image"][i] = np.clip(np.round(img * 255), 0, 255).astype(np.uint8)
    return res
