"""The default face model, converted from ICT Face Model Light (ICT-FaceKit, MIT licence).

Source data, in either of two layouts under the assets folder (see `facerecon_jax.io.assets`):
- prepared: `<assets>/ict_facekit/` with `ict_facekit_light.npz` (the model's arrays),
  `generic_neutral_mesh.obj` and `LICENSE` (shared/assets/ict_facekit/README.md);
- ICT-FaceKit's own published folder: `<assets>/ICT-FaceKit/FaceXModel/`, i.e. a clone of
  https://github.com/ICT-VGL/ICT-FaceKit at commit da5f95a: `generic_neutral_mesh.obj`,
  `identity000.obj` ... `identity099.obj`, one OBJ per expression named as in
  `vertex_indices.json`, and the clone's `LICENSE` one folder up. Its OBJs are read once into the
  same arrays as the prepared npz (identity / expression deltas = OBJ minus neutral), cached as
  `ict_facekit_light_<stamp>.npz` under `assets.cache_dir()`.
The prepared layout wins when both are present. What the conversion does:
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

import dataclasses
import hashlib
import json
import os
import pathlib

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from facerecon_jax.io import assets, atomic_file
from facerecon_jax.models import face_model

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


# --- Where the ICT data comes from: the prepared npz, or ICT-FaceKit's own FaceXModel folder ---

PREPARED_DIR = "ict_facekit"                 # <assets>/ict_facekit/ict_facekit_light.npz
PREPARED_NPZ = "ict_facekit_light.npz"
NEUTRAL_OBJ = "generic_neutral_mesh.obj"
CLONE_DIR = "ICT-FaceKit"                    # <assets>/ICT-FaceKit/FaceXModel/ (a git clone)
FACEX_DIR = "FaceXModel"
VERTEX_INDICES = "vertex_indices.json"
ICT_REPO_URL = "https://github.com/ICT-VGL/ICT-FaceKit"
ICT_COMMIT = "da5f95a"
SOURCE_KEYS = ("neutral", "identity_deltas", "expression_deltas", "expression_names",
               "landmarks68")


def how_to_get(clone: pathlib.Path | None = None) -> str:
    """One sentence: how to get ICT-FaceKit's folder (cloned to `clone`) where `find_source`
    looks."""
    clone = clone if clone is not None else pathlib.Path("<assets>") / CLONE_DIR
    return (f"Get it with `git clone {ICT_REPO_URL} {clone} && git -C {clone} checkout "
            f"{ICT_COMMIT}`, or clone it anywhere and set {assets.ASSETS_ENV} to the folder "
            f"that holds {CLONE_DIR}/ (its {FACEX_DIR}/ folder is read).")


@dataclasses.dataclass(frozen=True)
class Source:
    """Where the ICT Face Model Light data is: `kind` is "prepared" (folder holds
    ict_facekit_light.npz) or "FaceXModel" (folder is ICT-FaceKit's published model folder)."""
    kind: str
    folder: pathlib.Path
    licence: pathlib.Path

    @property
    def neutral_obj(self) -> pathlib.Path:
        return self.folder / NEUTRAL_OBJ


def _licence_of_facex(folder: pathlib.Path) -> pathlib.Path | None:
    for cand in (folder / "LICENSE", folder.parent / "LICENSE"):
        if cand.is_file():
            return cand
    return None


def _is_facex_folder(folder: pathlib.Path) -> bool:
    return folder.name == FACEX_DIR or (folder / "identity000.obj").exists()


def _prepared_source(folder: pathlib.Path) -> Source:
    missing = [n for n in (PREPARED_NPZ, NEUTRAL_OBJ, "LICENSE") if not (folder / n).exists()]
    if missing:
        raise assets.AssetMissingError(
            f"missing {', '.join(str(folder / n) for n in missing)}: the prepared ICT Face Model "
            f"Light needs {PREPARED_NPZ}, {NEUTRAL_OBJ} and LICENSE in {folder} (see "
            f"shared/assets/ict_facekit/README.md), or use ICT-FaceKit's own {FACEX_DIR} "
            f"folder instead. {how_to_get()}")
    return Source("prepared", folder, folder / "LICENSE")


def identity_files(folder: pathlib.Path) -> list[pathlib.Path]:
    """identity000.obj, identity001.obj, ... up to the first one missing (as ICT's reader)."""
    out = []
    while (folder / f"identity{len(out):03d}.obj").is_file():
        out.append(folder / f"identity{len(out):03d}.obj")
    return out


def _facex_source(folder: pathlib.Path) -> Source:
    """Check a FaceXModel folder has what the conversion reads; name every missing file."""
    missing = [n for n in (NEUTRAL_OBJ, VERTEX_INDICES, "identity000.obj")
               if not (folder / n).is_file()]
    if (folder / VERTEX_INDICES).is_file():
        names = _read_vertex_indices(folder)[0]
        missing += [f"{n}.obj" for n in names if not (folder / f"{n}.obj").is_file()]
    licence = _licence_of_facex(folder)
    if licence is None:
        missing.append(f"LICENSE (in {folder} or {folder.parent})")
    if missing:
        shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6
                                          else "")
        raise assets.AssetMissingError(
            f"incomplete ICT-FaceKit {FACEX_DIR} folder {folder}: missing {shown}. It should be "
            f"the {FACEX_DIR}/ folder of a clone of {ICT_REPO_URL} at commit {ICT_COMMIT} "
            f"(identity000.obj ... identity099.obj, one OBJ per expression of {VERTEX_INDICES}, "
            f"the clone's LICENSE one folder up). {how_to_get(folder.parent)}")
    return Source(FACEX_DIR, folder, licence)


def find_source(folder: pathlib.Path | str | None = None) -> Source:
    """Where the ICT data is. With `folder`: that folder (a prepared one, a FaceXModel folder, or
    an ICT-FaceKit clone). Without: `<assets>/ict_facekit/ict_facekit_light.npz` (prepared), else
    `<assets>/ICT-FaceKit/FaceXModel/`. AssetMissingError names what is missing and how to get
    it."""
    if folder is not None:
        folder = pathlib.Path(folder).expanduser()
        if (folder / PREPARED_NPZ).exists():
            return _prepared_source(folder)
        if (folder / FACEX_DIR).is_dir():
            return _facex_source(folder / FACEX_DIR)
        if _is_facex_folder(folder):
            return _facex_source(folder)
        raise assets.AssetMissingError(
            f"{folder} holds neither the prepared ICT Face Model Light ({PREPARED_NPZ}, "
            f"{NEUTRAL_OBJ}, LICENSE) nor ICT-FaceKit's own {FACEX_DIR} folder "
            f"({NEUTRAL_OBJ}, identity000.obj ..., {VERTEX_INDICES}); pass an ICT-FaceKit "
            f"clone or its {FACEX_DIR} folder. {how_to_get()}")
    base = assets.assets_dir()
    prepared, facex = base / PREPARED_DIR, base / CLONE_DIR / FACEX_DIR
    if (prepared / PREPARED_NPZ).exists():
        return _prepared_source(prepared)
    if facex.is_dir():
        return _facex_source(facex)
    env = os.environ.get(assets.ASSETS_ENV)
    raise assets.AssetMissingError(
        f"missing ICT Face Model Light, which the default face model is built from: neither "
        f"{prepared / PREPARED_NPZ} (prepared ict_facekit folder) nor {facex}/ (ICT-FaceKit's "
        f"own folder) exists. The assets folder is ${assets.ASSETS_ENV} (now "
        f"{env if env else 'unset, so ../shared/assets beside the checkout'}). "
        f"{how_to_get(base / CLONE_DIR)}")


def _read_vertex_indices(folder: pathlib.Path) -> tuple[list[str], np.ndarray]:
    """(expression names in order, 68 landmark vertices) from a FaceXModel vertex_indices.json."""
    path = folder / VERTEX_INDICES
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
        names = [str(n) for n in cfg["expressions"]]
        landmarks = np.asarray(cfg["idx_to_landmark_verts"], np.int32)
    except (ValueError, KeyError, TypeError) as e:
        raise face_model.FaceModelError(
            f"{path}: not ICT-FaceKit's vertex_indices.json (needs 'expressions' and "
            f"'idx_to_landmark_verts'): {e}") from e
    if landmarks.shape != (68,):
        raise face_model.FaceModelError(f"{path}: idx_to_landmark_verts has {landmarks.size} "
                                        f"entries, expected 68")
    return names, landmarks


def read_obj_vertices(path: pathlib.Path) -> np.ndarray:
    """The `v` lines of an OBJ file as an (N, 3) float64 array, in file order."""
    with open(path, "rb") as f:
        lines = [ln[2:] for ln in f if ln.startswith((b"v ", b"v\t"))]
    tokens = b" ".join(lines).split()
    try:
        if len(tokens) == 3 * len(lines):
            verts = np.array(tokens, dtype=np.float64).reshape(-1, 3)
        else:                                   # extra columns (vertex colours): keep x y z
            verts = np.array([ln.split()[:3] for ln in lines], dtype=np.float64)
    except ValueError as e:
        raise face_model.FaceModelError(f"{path}: unreadable vertex line ({e})") from e
    if len(verts) == 0:
        raise face_model.FaceModelError(f"{path}: no vertices ('v' lines)")
    return verts


def read_facex_folder(folder: pathlib.Path | str) -> dict[str, np.ndarray]:
    """ICT-FaceKit's FaceXModel folder as the arrays of the prepared npz: `neutral` (V, 3),
    `identity_deltas` (I, V, 3) = identityNNN.obj - neutral, `expression_deltas` (E, V, 3) =
    <name>.obj - neutral in vertex_indices.json's order, `expression_names`, `landmarks68`.
    Centimetres, as published; float32 like the prepared file."""
    folder = pathlib.Path(folder)
    src = _facex_source(folder)
    names, landmarks = _read_vertex_indices(folder)
    neutral = read_obj_vertices(src.neutral_obj)

    def deltas(paths):
        out = np.empty((len(paths),) + neutral.shape, np.float32)
        for k, p in enumerate(paths):
            v = read_obj_vertices(p)
            if v.shape != neutral.shape:
                raise face_model.FaceModelError(
                    f"{p}: {len(v)} vertices, but {src.neutral_obj.name} has {len(neutral)}; "
                    f"the folder mixes files of different ICT-FaceKit versions")
            out[k] = v - neutral
        return out

    if landmarks.max() >= len(neutral) or landmarks.min() < 0:
        raise face_model.FaceModelError(f"{folder / VERTEX_INDICES}: landmark vertex "
                                        f"{landmarks.max()} beyond the mesh's {len(neutral)}")
    return {"neutral": neutral.astype(np.float32),
            "identity_deltas": deltas(identity_files(folder)),
            "expression_deltas": deltas([folder / f"{n}.obj" for n in names]),
            "expression_names": np.asarray(names),
            "landmarks68": landmarks}


def _stat_stamp(h, files) -> None:
    for p in files:
        st = p.stat()
        h.update(f"{p.name}:{st.st_size}:{int(st.st_mtime)}".encode())


def _facex_files(folder: pathlib.Path) -> list[pathlib.Path]:
    names, _ = _read_vertex_indices(folder)
    return ([folder / VERTEX_INDICES, folder / NEUTRAL_OBJ] + identity_files(folder)
            + [folder / f"{n}.obj" for n in names])


def source_arrays(src: Source) -> dict[str, np.ndarray]:
    """The source's arrays (keys SOURCE_KEYS). A FaceXModel folder's OBJs are parsed once and
    kept as an npz in `assets.cache_dir()`."""
    if src.kind == "prepared":
        path = src.folder / PREPARED_NPZ
    else:
        h = hashlib.sha1()
        h.update(str(src.folder.resolve()).encode())
        _stat_stamp(h, _facex_files(src.folder))
        path = assets.cache_dir() / f"ict_facekit_light_{h.hexdigest()[:12]}.npz"
        if not path.exists():
            arrays = read_facex_folder(src.folder)

            def writer(tmp):
                with open(tmp, "wb") as f:
                    np.savez(f, **arrays)
            atomic_file.write(path, writer)
            return arrays
    with np.load(path) as data:
        missing = [k for k in SOURCE_KEYS if k not in data.files]
        if missing:
            raise face_model.FaceModelError(f"{path}: missing arrays {missing}")
        return {k: data[k] for k in SOURCE_KEYS}


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


def inside_polygon(points, poly):
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
    d = 0.05 * face_h
    cheek_l = np.array([[lm[2, 0] + d, below_eye], [lm[31, 0] - d, below_eye],
                        [lm[31, 0] - d, above_mouth], [lm[3, 0] + 2 * d, above_mouth]])
    cheek_r = np.array([[lm[35, 0] + d, below_eye], [lm[14, 0] - d, below_eye],
                        [lm[13, 0] - 2 * d, above_mouth], [lm[35, 0] + d, above_mouth]])
    nose = np.array([lm[27] + [-0.06 * face_h, 0], lm[27] + [0.06 * face_h, 0], lm[35], lm[33],
                     lm[31]])
    skin = np.zeros(len(xy), bool)
    for poly in (fore, cheek_l, cheek_r, nose):
        skin |= inside_polygon(xy, poly)
    # Front face: inside the jaw line, closed over the forehead.
    jaw = lm[0:17]
    top = brow_top + 0.6 * face_h
    front_poly = np.concatenate([jaw, [[lm[16, 0], top], [lm[0, 0], top]]])
    front_v = inside_polygon(xy, front_poly)
    return skin, front_v


def near_polyline(points: np.ndarray, line: np.ndarray, radius: float) -> np.ndarray:
    """exp(-d^2 / 2 r^2), d the distance of each point (V, k) to a polyline (S, k), any k."""
    a, b = line[:-1], line[1:]
    ab = b - a
    t = np.clip(np.einsum("vsk,sk->vs", points[:, None, :] - a[None], ab)
                / np.maximum(np.sum(ab * ab, 1), 1e-12), 0, 1)
    closest = a[None] + t[..., None] * ab[None]
    d = np.min(np.linalg.norm(points[:, None, :] - closest, axis=-1), axis=1)
    return np.exp(-0.5 * (d / radius) ** 2)


def _synthetic_texture(mean_shape, tris, landmarks, n_modes, seed=0):
    """Mean skin albedo and `n_modes` smooth colour modes (V, 3) each, std-scaled."""
    v = len(mean_shape)
    xy = mean_shape[:, :2]
    lm = xy[landmarks]
    face_h = lm[36:48, 1].mean() - lm[8, 1]

    def near(polyline, radius):
        return near_polyline(xy, polyline, radius)

    skin = np.array([0.73, 0.55, 0.46])
    albedo = np.tile(skin, (v, 1))
    brows = np.maximum(near(lm[17:22], 0.035 * face_h), near(lm[22:27], 0.035 * face_h))
    lips = np.maximum(near(np.concatenate([lm[48:60], lm[48:49]]), 0.02 * face_h),
                      inside_polygon(xy, lm[48:60]) * 1.0)
    eyes = inside_polygon(xy, lm[36:42]) | inside_polygon(xy, lm[42:48])
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


def convert(folder: pathlib.Path | Source | None = None) -> face_model.FaceModel:
    """Build the default face model from the ICT-FaceKit files in `folder` (a prepared
    ict_facekit folder, a FaceXModel folder or an ICT-FaceKit clone; default: `find_source()`)."""
    src = folder if isinstance(folder, Source) else find_source(folder)
    data = source_arrays(src)
    where = src.folder / PREPARED_NPZ if src.kind == "prepared" else src.folder
    obj_path, lic_path = src.neutral_obj, src.licence
    neutral = data["neutral"].astype(np.float64)
    if neutral.ndim != 2 or neutral.shape[1] != 3 or neutral.shape[0] < N_VERTICES:
        raise face_model.FaceModelError(f"{where}: 'neutral' has shape {neutral.shape}, "
                                        f"expected (26719, 3)")
    if len(data["identity_deltas"]) < N_ID:
        raise face_model.FaceModelError(f"{where}: {len(data['identity_deltas'])} identity "
                                        f"modes, the default model keeps {N_ID}")
    tris = triangulate(read_obj_polygons(obj_path, N_POLYGONS))
    if tris.max() >= N_VERTICES:
        raise face_model.FaceModelError(f"{obj_path}: narrow-face polygons use vertex "
                                        f"{tris.max()}, beyond the region's {N_VERTICES}")
    landmarks = data["landmarks68"].astype(np.int32)
    if landmarks.shape != (68,) or landmarks.max() >= N_VERTICES:
        raise face_model.FaceModelError(f"{where}: landmarks68 must be 68 indices below "
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
        "source": ("ICT-FaceKit FaceXModel (ict_facekit_light.npz, generic_neutral_mesh.obj)"
                   if src.kind == "prepared" else
                   "ICT-FaceKit FaceXModel (generic_neutral_mesh.obj, identityNNN.obj and the "
                   "expression OBJs of vertex_indices.json)"),
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


def _source_stamp(src: Source) -> str:
    h = hashlib.sha1()
    if src.kind == "prepared":
        _stat_stamp(h, [src.folder / PREPARED_NPZ, src.neutral_obj])
    else:
        h.update(FACEX_DIR.encode())
        _stat_stamp(h, _facex_files(src.folder))
    h.update(f"v{VERSION}".encode())
    return h.hexdigest()[:12]


def load_default(folder: pathlib.Path | None = None, cache: bool = True) -> face_model.FaceModel:
    """The default face model: converted once (from `find_source(folder)`), then read from the
    cache."""
    src = find_source(folder)
    path = assets.cache_dir() / f"ict_face_model_{_source_stamp(src)}.npz"
    if cache and path.exists():
        return face_model.load(path)
    model = convert(src)
    if cache:
        face_model.save(model, path)
    return model


def describe(model: face_model.FaceModel) -> str:
    info = model.info
    return json.dumps({k: info.get(k) for k in ("name", "units", "licence", "synthetic_texture")})
