"""The default face model, converted from ICT Face Model Light (ICT-FaceKit, MIT licence).

Source data: `<assets>/ict_facekit/` (see `facerecon_jax.assets`). What the conversion does:
- Region: the published *narrow face area* (vertices [0, 6706), polygons [0, 6560)). It holds all
  68 landmarks and matches what Deep3DFaceRecon's BFM front model covers (face, forehead, cheeks,
  no ears, no neck); the full face area adds the neck and the sides of the head up to the ears,
  which hair, collars and background hide in most photos and which the photometric loss would
  then fit to the wrong pixels. Quads are split into triangles, wound counter-clockwise seen from
  outside so that cross(v1 - v0, v2 - v0) points out of the face.
- Units: centimetres to decimetres (/10), the mean shape re-centred at its centroid, so the
  camera constants of docs/design.md §4 (f = 1015 px, camera at z = 10) frame it like BFM.
- Identity: the 100 published modes (already scaled so coefficients are ~N(0, 1)) cropped to the
  region are no longer orthogonal; an SVD of the cropped, scaled deltas re-orthogonalises them and
  the leading 80 are kept, each scaled by its singular value (coefficients stay ~N(0, 1)).
- Expression: the 53 blendshapes, cropped; their coefficients are meaningful in [0, 1].
- Texture: ICT has no albedo model, so ours is SYNTHETIC (marked so in the metadata): a mean skin
  albedo with darker brows, redder lips and eye regions, plus 80 smooth low-frequency colour modes
  (the lowest eigenvectors of the mesh Laplacian times skin-colour directions, with standard
  deviations falling with frequency).
- Skin mask (forehead, cheeks, nose) and front mask (triangles inside the jaw line and below the
  forehead top) are built from the 68 landmarks on the frontal mean shape.
The result is cached as a face-model .npz under `assets.cache_dir()`; it never goes into git.
"""
from __future__ import annotations

import hashlib
import json
import pathlib

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from facerecon_jax import assets, face_model

VERSION = 2
N_VERTICES = 6706      # narrow face area, vertices [0, 6706)
N_POLYGONS = 6560      # narrow face area, polygons [0, 6560)
N_ID = 80
N_TEX = 80
CM_TO_DM = 0.1

LICENCE_NOTE = (
    "Derived from ICT Face Model Light (ICT-FaceKit, USC Institute for Creative Technologies), "
    "MIT licence; commit da5f95a607f5e6b37755b38d3385d7f2853732e5, folder FaceXModel/. The MIT "
    "licence text travels with this file in info['licence_text']. The texture model is synthetic, "
    "built by facerecon-jax.")


def read_obj_polygons(path: pathlib.Path, n_polygons: int) -> list[list[int]]:
    """The first `n_polygons` faces of an OBJ file, as 0-based vertex index lists."""
    polys = []
    with open(path, "r", encoding="utf-8") as f:
        for line in f:
            if line.startswith("f "):
                polys.append([int(tok.split("/")[0]) - 1 for tok in line.split()[1:]])
                if len(polys) == n_polygons:
                    break
    if len(polys) < n_polygons:
        raise face_model.FaceModelError(
            f"{path}: expected at least {n_polygons} faces, found {len(polys)}")
    return polys


def triangulate(polys: list[list[int]]) -> np.ndarray:
    tris = []
    for p in polys:
        for k in range(1, len(p) - 1):
            tris.append((p[0], p[k], p[k + 1]))
    return np.asarray(tris, np.int32)


def _orient_outwards(vertices, tris):
    """Flip the winding if the face normals point into the head (mean normal . outward < 0)."""
    v0, v1, v2 = vertices[tris[:, 0]], vertices[tris[:, 1]], vertices[tris[:, 2]]
    n = np.cross(v1 - v0, v2 - v0)
    centre = vertices.mean(0) - np.array([0.0, 0.0, 1.0])   # a point behind the face surface
    out = (v0 + v1 + v2) / 3 - centre
    if np.sum(np.einsum("ij,ij->i", n, out) > 0) < len(tris) / 2:
        tris = tris[:, [0, 2, 1]]
    return tris


def _graph_laplacian(tris, n):
    i = np.concatenate([tris[:, 0], tris[:, 1], tris[:, 2], tris[:, 1], tris[:, 2], tris[:, 0]])
    j = np.concatenate([tris[:, 1], tris[:, 2], tris[:, 0], tris[:, 0], tris[:, 1], tris[:, 2]])
    adj = scipy.sparse.coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)).tocsr()
    adj.data[:] = 1.0
    deg = np.asarray(adj.sum(1)).ravel()
    return scipy.sparse.diags(deg) - adj


def _inside_polygon(points, poly):
    """Even-odd rule: which 2D points lie inside the polygon (K, 2)."""
    x, y = points[:, 0], points[:, 1]
    inside = np.zeros(len(points), bool)
    px, py = poly[:, 0], poly[:, 1]
    qx, qy = np.roll(px, -1), np.roll(py, -1)
    for ax, ay, bx, by in zip(px, py, qx, qy):
        crosses = (ay > y) != (by > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            xs = ax + (y - ay) * (bx - ax) / (by - ay)
        inside ^= crosses & (x < xs)
    return inside


def _regions(mean_shape, landmarks):
    """Masks from the frontal projection of the mean shape and its 68 landmarks."""
    xy = mean_shape[:, :2]
    lm = xy[landmarks]
    brow_top = lm[17:27, 1].max()
    eye_h = lm[36:48, 1].mean()
    face_h = eye_h - lm[8, 1]                      # eye line to chin
    # Skin: forehead band above the brows, cheeks between eyes and mouth, the nose.
    fore = np.array([[lm[17, 0], brow_top + 0.06 * face_h], [lm[26, 0], brow_top + 0.06 * face_h],
                     [lm[26, 0], brow_top + 0.45 * face_h], [lm[17, 0], brow_top + 0.45 * face_h]])
    below_eye = lm[[40, 41, 46, 47], 1].min() - 0.08 * face_h
    above_mouth = lm[[48, 54], 1].max() + 0.02 * face_h
    cheek_l = np.array([[lm[2, 0] + 0.05 * face_h, below_eye], [lm[31, 0] - 0.05 * face_h, below_eye],
                        [lm[31, 0] - 0.05 * face_h, above_mouth], [lm[3, 0] + 0.1 * face_h, above_mouth]])
    cheek_r = np.array([[lm[35, 0] + 0.05 * face_h, below_eye], [lm[14, 0] - 0.05 * face_h, below_eye],
                        [lm[13, 0] - 0.1 * face_h, above_mouth], [lm[35, 0] + 0.05 * face_h, above_mouth]])
    nose = np.array([lm[27] + [-0.06 * face_h, 0], lm[27] + [0.06 * face_h, 0], lm[35], lm[33],
                     lm[31]])
    skin = np.zeros(len(xy), bool)
    for poly in (fore, cheek_l, cheek_r, nose):
        skin |= _inside_polygon(xy, poly)
    # Front face: inside the jaw line, closed over the forehead.
    jaw = lm[0:17]
    top = brow_top + 0.6 * face_h
    front_poly = np.concatenate([jaw, [[lm[16, 0], top], [lm[0, 0], top]]])
    front_v = _inside_polygon(xy, front_poly)
    return skin, front_v


def _synthetic_texture(mean_shape, tris, landmarks, n_modes, seed=0):
    """Mean skin albedo and `n_modes` smooth colour modes (V, 3) each, std-scaled."""
    v = len(mean_shape)
    xy = mean_shape[:, :2]
    lm = xy[landmarks]
    face_h = lm[36:48, 1].mean() - lm[8, 1]

    def near(polyline, radius):
        """Gaussian falloff with the distance to a polyline of 2D points."""
        a, b = polyline[:-1], polyline[1:]
        ab = b - a
        t = np.clip(np.einsum("vsk,sk->vs", xy[:, None, :] - a[None], ab)
                    / np.maximum(np.sum(ab * ab, 1), 1e-12), 0, 1)
        closest = a[None] + t[..., None] * ab[None]
        d = np.min(np.linalg.norm(xy[:, None, :] - closest, axis=-1), axis=1)
        return np.exp(-0.5 * (d / radius) ** 2)

    skin = np.array([0.73, 0.55, 0.46])
    albedo = np.tile(skin, (v, 1))
    brows = np.maximum(near(lm[17:22], 0.035 * face_h), near(lm[22:27], 0.035 * face_h))
    lips = np.maximum(near(np.concatenate([lm[48:60], lm[48:49]]), 0.02 * face_h),
                      _inside_polygon(xy, lm[48:60]) * 1.0)
    eyes = _inside_polygon(xy, lm[36:42]) | _inside_polygon(xy, lm[42:48])
    albedo = albedo * (1 - 0.5 * brows[:, None])
    albedo = albedo * (1 - lips[:, None]) + lips[:, None] * np.array([0.66, 0.38, 0.38])
    albedo = np.where(eyes[:, None], np.array([0.55, 0.45, 0.42]), albedo)

    n_spatial = -(-n_modes // 3) + 1
    lap = _graph_laplacian(tris, v)
    vals, vecs = scipy.sparse.linalg.eigsh(lap.astype(np.float64), k=n_spatial, sigma=-1e-3,
                                           which="LM")
    order = np.argsort(vals)
    vecs = vecs[:, order]
    vecs = vecs / np.sqrt(np.mean(vecs ** 2, axis=0, keepdims=True))
    vecs = vecs * np.sign(vecs[np.argmax(np.abs(vecs), axis=0), np.arange(vecs.shape[1])])
    # Skin-colour directions: overall tone (melanin-like), redness (haemoglobin-like), yellowness.
    colours = np.array([[0.80, 0.60, 0.48], [0.55, -0.25, -0.30], [0.20, 0.25, -0.55]])
    colours = colours / np.linalg.norm(colours, axis=1, keepdims=True)
    colour_std = np.array([0.09, 0.02, 0.012])
    modes, stds = [], []
    for k in range(vecs.shape[1]):
        falloff = 1.0 if k == 0 else 0.35 / (1.0 + 0.5 * k)
        for c in range(3):
            modes.append(vecs[:, k, None] * colours[c][None, :])
            stds.append(colour_std[c] * falloff)
    stds = np.asarray(stds)
    order = np.argsort(-stds, kind="stable")[:n_modes]
    basis = np.stack([modes[i] * stds[i] for i in order])
    return albedo.astype(np.float32), basis.astype(np.float32)


def convert(folder: pathlib.Path | None = None) -> face_model.FaceModel:
    """Build the default face model from the ICT-FaceKit files in `folder` (or the assets)."""
    folder = pathlib.Path(folder) if folder else assets.asset_path("ict_facekit")
    npz_path = folder / "ict_facekit_light.npz"
    obj_path = folder / "generic_neutral_mesh.obj"
    lic_path = folder / "LICENSE"
    for p in (npz_path, obj_path, lic_path):
        if not p.exists():
            raise assets.AssetMissingError(
                f"missing {p}: the ICT Face Model Light conversion needs ict_facekit_light.npz, "
                f"generic_neutral_mesh.obj and LICENSE in {folder} (see "
                f"shared/assets/ict_facekit/README.md); set ${assets.ASSETS_ENV} to their parent.")
    data = np.load(npz_path)
    neutral = data["neutral"].astype(np.float64)
    if neutral.ndim != 2 or neutral.shape[1] != 3 or neutral.shape[0] < N_VERTICES:
        raise face_model.FaceModelError(f"{npz_path}: 'neutral' has shape {neutral.shape}, "
                                        f"expected (26719, 3)")
    tris = triangulate(read_obj_polygons(obj_path, N_POLYGONS))
    if tris.max() >= N_VERTICES:
        raise face_model.FaceModelError(f"{obj_path}: narrow-face polygons use vertex "
                                        f"{tris.max()}, beyond the region's {N_VERTICES}")
    landmarks = data["landmarks68"].astype(np.int32)
    if landmarks.shape != (68,) or landmarks.max() >= N_VERTICES:
        raise face_model.FaceModelError(f"{npz_path}: landmarks68 must be 68 indices below "
                                        f"{N_VERTICES}")

    shape = neutral[:N_VERTICES] * CM_TO_DM
    centre = shape.mean(0)
    mean_shape = shape - centre
    tris = _orient_outwards(mean_shape, tris)

    ids = data["identity_deltas"][:, :N_VERTICES].astype(np.float64) * CM_TO_DM  # (100, V, 3)
    u, s, vt = np.linalg.svd(ids.reshape(len(ids), -1), full_matrices=False)
    id_basis = (s[:N_ID, None] * vt[:N_ID]).reshape(N_ID, N_VERTICES, 3)
    # Sign convention: the largest entry of each mode positive (deterministic across LAPACKs).
    flat = id_basis.reshape(N_ID, -1)
    id_basis *= np.sign(flat[np.arange(N_ID), np.argmax(np.abs(flat), axis=1)])[:, None, None]
    exp_basis = data["expression_deltas"][:, :N_VERTICES].astype(np.float64) * CM_TO_DM

    mean_albedo, tex_basis = _synthetic_texture(mean_shape, tris, landmarks, N_TEX)
    skin_v, front_v = _regions(mean_shape, landmarks)
    front_mask = np.all(front_v[tris], axis=1)

    info = {
        "name": "ICT Face Model Light, narrow face area (facerecon-jax default)",
        "units": "decimetres",
        "source": "ICT-FaceKit FaceXModel (ict_facekit_light.npz, generic_neutral_mesh.obj)",
        "licence": "MIT",
        "attribution": LICENCE_NOTE,
        "licence_text": lic_path.read_text(encoding="utf-8"),
        "synthetic_texture": True,
        "expression_kind": "blendshapes in [0, 1]",
        "expression_names": [str(n) for n in data["expression_names"]],
        "region": "narrow face area: vertices [0, 6706), polygons [0, 6560)",
        "identity_singular_values": [float(x) for x in s[:N_ID]],
        "recentred_by_dm": [float(c) for c in centre],
        "converter_version": VERSION,
    }
    return face_model.make_face_model(
        mean_shape=mean_shape, id_basis=id_basis, exp_basis=exp_basis, mean_albedo=mean_albedo,
        tex_basis=tex_basis, triangles=tris, landmarks=landmarks,
        skin_mask=skin_v.astype(np.float32), front_mask=front_mask, info=info)


def _source_stamp(folder: pathlib.Path) -> str:
    h = hashlib.sha1()
    for name in ("ict_facekit_light.npz", "generic_neutral_mesh.obj"):
        st = (folder / name).stat()
        h.update(f"{name}:{st.st_size}:{int(st.st_mtime)}".encode())
    h.update(f"v{VERSION}".encode())
    return h.hexdigest()[:12]


def load_default(folder: pathlib.Path | None = None, cache: bool = True) -> face_model.FaceModel:
    """The default face model: converted once, then read from the cache."""
    folder = pathlib.Path(folder) if folder else assets.asset_path("ict_facekit")
    for name in ("ict_facekit_light.npz", "generic_neutral_mesh.obj", "LICENSE"):
        if not (folder / name).exists():
            raise assets.AssetMissingError(
                f"missing {folder / name}: the default face model is built from ICT Face Model "
                f"Light (see shared/assets/ict_facekit/README.md); set ${assets.ASSETS_ENV}.")
    path = assets.cache_dir() / f"ict_face_model_{_source_stamp(folder)}.npz"
    if cache and path.exists():
        return face_model.load(path)
    model = convert(folder)
    if cache:
        face_model.save(model, path)
    return model


def describe(model: face_model.FaceModel) -> str:
    info = model.info
    return json.dumps({k: info.get(k) for k in ("name", "units", "licence", "synthetic_texture")})
