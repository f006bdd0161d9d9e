"""Readers for the Basel Face Model 2009 files that Deep3DFaceRecon users already have.

Two layouts are read, both giving the same FaceModel (35,709 vertices, 80 identity, 64
expression and 80 texture components for the real files):

* ``BFM_model_front.mat``: Deep3DFaceRecon's converted model (``load_bfm_front``).
* the raw ``01_MorphableModel.mat`` (University of Basel) + ``Exp_Pca.bin`` (Guo et al.) + the
  helper files that ship in Deep3DFaceRecon's ``BFM/`` folder (``BFM_front_idx.mat``,
  ``BFM_exp_idx.mat``, ``std_exp.txt``, ``facemodel_info.mat``) (``load_bfm_raw``); the conversion
  is the one Deep3DFaceRecon's ``transferBFM09`` does.

``load_bfm`` picks the reader from what a path holds. Conventions kept from Deep3DFaceRecon
(docs/design.md §3.4): decimetres (raw BFM micrometres / 1e5); only the mean shape is re-centred
(by the centroid of its vertices), the bases are not; albedo and the texture basis are divided by
255; index arrays (stored 1-based, as float32 or uint16) are cast to integers before the 1 is
subtracted. Flat arrays store vertices as x0, y0, z0, x1, ... (3V values).

The Basel Face Model cannot be redistributed: these readers only read the user's own copy.
"""
from __future__ import annotations

import os
import pathlib
import warnings
from typing import Iterable

import numpy as np
import scipy.io

from .face_model import FaceModel, FaceModelError, make_face_model

FRONT_FILE = "BFM_model_front.mat"
RAW_FILE = "01_MorphableModel.mat"
EXP_FILE = "Exp_Pca.bin"
FRONT_IDX_FILE = "BFM_front_idx.mat"
EXP_IDX_FILE = "BFM_exp_idx.mat"
STD_EXP_FILE = "std_exp.txt"
INFO_FILE = "facemodel_info.mat"
RAW_FILES = (RAW_FILE, EXP_FILE, FRONT_IDX_FILE, EXP_IDX_FILE, STD_EXP_FILE, INFO_FILE)

MODEL_NAME = "BFM 2009 (Deep3DFaceRecon front model)"
LICENCE = ("Basel Face Model 2009: users must obtain it from the University of Basel under its "
           "licence; never redistribute")
ATTRIBUTION = ("Basel Face Model 2009 (Paysan et al. 2009, University of Basel); expression basis "
               "by Guo et al. (github.com/Juyong/3DFace); front-face crop and conversion from "
               "Deep3DFaceRecon (Deng et al. 2019)")
N_LANDMARKS = 68
REAL_EXP_BYTES = 51_086_404  # the real Exp_Pca.bin: n = 79 components over 53,215 vertices

# Keys every model-topology source must hold (BFM_model_front.mat and facemodel_info.mat).
TOPOLOGY_KEYS = ("tri", "point_buf", "tri_mask2", "keypoints", "skinmask")
FRONT_KEYS = ("meanshape", "meantex", "idBase", "exBase", "texBase") + TOPOLOGY_KEYS
RAW_KEYS = ("shapeMU", "shapePC", "shapeEV", "texMU", "texPC", "texEV")
OPTIONAL_KEYS = ("frontmask2_idx",)

_HOW_TO_GET = (
    "The Basel Face Model 2009 cannot be redistributed: obtain it yourself from the University of "
    "Basel (https://faces.dmi.unibas.ch/bfm/main.php?nav=1-2&id=downloads) and download "
    f"{RAW_FILE}; download the Expression Basis {EXP_FILE} of Guo et al. "
    "(https://github.com/Juyong/3DFace) as Deep3DFaceRecon's README says; "
    f"{FRONT_IDX_FILE}, {EXP_IDX_FILE}, {STD_EXP_FILE} and {INFO_FILE} come with Deep3DFaceRecon "
    "(its BFM/ folder). A BFM_model_front.mat that Deep3DFaceRecon already wrote works on its own.")


# --------------------------------------------------------------------------------------------
# small checked readers


def _fail(file, msg: str):
    raise FaceModelError(f"{file}: {msg}")


def _loadmat(path: pathlib.Path, required: Iterable[str], optional: Iterable[str] = (),
             what: str = "") -> dict:
    """Read the named variables of a .mat file; FaceModelError naming the file on any problem."""
    required, optional = tuple(required), tuple(optional)
    try:
        data = scipy.io.loadmat(str(path), variable_names=list(required + optional))
    except NotImplementedError as e:  # MATLAB v7.3 (HDF5) files
        raise FaceModelError(
            f"{path}: MATLAB v7.3 (HDF5) .mat files are not read; re-save it in MATLAB with "
            f"save(..., '-v7') ({e})") from e
    except Exception as e:  # noqa: BLE001 - any read failure is reported with the file name
        raise FaceModelError(f"{path}: cannot read it as a MATLAB .mat file "
                             f"({type(e).__name__}: {e})") from e
    missing = [k for k in required if k not in data]
    if missing:
        try:
            found = sorted(name for name, _, _ in scipy.io.whosmat(str(path)))
        except Exception:  # noqa: BLE001
            found = sorted(k for k in data if not k.startswith("__"))
        _fail(path, f"missing key(s) {missing}; {what or 'this file'} must hold "
                    f"{list(required)}, found {found}")
    out = {}
    for key in required + optional:
        if key not in data:
            continue
        arr = np.asarray(data[key])
        if arr.dtype.kind not in "fiub" or arr.size == 0:
            _fail(path, f"{key} must be a non-empty numeric array, got dtype {arr.dtype} "
                        f"shape {arr.shape}")
        out[key] = arr
    return out


def _vector(arr: np.ndarray, key: str, file, size: int | None = None,
            expect: str = "") -> np.ndarray:
    """A (N,), (1, N) or (N, 1) array, flattened; checks N when `size` is given."""
    if arr.ndim > 2 or (arr.ndim == 2 and 1 not in arr.shape):
        want = expect or "(1, N) or (N, 1)"
        _fail(file, f"{key} has shape {arr.shape}, expected a vector {want}")
    flat = arr.reshape(-1)
    if size is not None and flat.size != size:
        _fail(file, f"{key} has shape {arr.shape} ({flat.size} values), expected "
                    f"{expect or size} values")
    return flat


def _matrix(arr: np.ndarray, key: str, file, rows: int | None = None, cols: int | None = None,
            expect: str = "") -> np.ndarray:
    ok = arr.ndim == 2 and (rows is None or arr.shape[0] == rows) and \
        (cols is None or arr.shape[1] == cols)
    if not ok:
        r = rows if rows is not None else "N"
        c = cols if cols is not None else "M"
        want = expect or f"({r}, {c})"
        _fail(file, f"{key} has shape {arr.shape}, expected {want}")
    return arr


def _one_based(arr: np.ndarray, key: str, file, upper: int, lower: int = 1) -> np.ndarray:
    """1-based indices (stored as float32 / double / uint16 / int) -> 0-based int64.

    The cast to a signed integer comes first (docs/design.md §3.4): subtracting 1 from a uint16 or
    float32 array directly would wrap or round. Valid 1-based values lie in [lower, upper].
    """
    a = np.asarray(arr)
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or not np.all(a == np.round(a)):
            bad = a[~(np.isfinite(a) & (a == np.round(a)))].reshape(-1)[0]
            _fail(file, f"{key} holds a non-integer value ({bad}); expected 1-based integer "
                        "indices")
    elif a.dtype.kind not in "iu":
        _fail(file, f"{key} has dtype {a.dtype}; expected 1-based integer indices")
    idx = a.astype(np.int64) - 1
    lo, hi = int(idx.min()) + 1, int(idx.max()) + 1
    if lo < lower or hi > upper:
        _fail(file, f"{key} holds 1-based indices in [{lo}, {hi}], expected them in "
                    f"[{lower}, {upper}]")
    return idx


def _flat_basis(arr: np.ndarray, key: str, file, n_vertices: int) -> np.ndarray:
    """(3V, n) basis, rows x0, y0, z0, x1, ... -> (n, V, 3) float32."""
    _matrix(arr, key, file, rows=3 * n_vertices,
            expect=f"(3*V, n) = ({3 * n_vertices}, n) with V = {n_vertices} from meanshape")
    n = arr.shape[1]
    return np.ascontiguousarray(
        arr.reshape(n_vertices, 3, n).transpose(2, 0, 1).astype(np.float32, copy=False))


# --------------------------------------------------------------------------------------------
# topology: triangles, vertex faces, landmarks, masks (same keys in both layouts)


def _triangle_keys(tri: np.ndarray, n_vertices: int) -> np.ndarray:
    """One int64 per triangle that ignores the order of its three vertices."""
    s = np.sort(tri.astype(np.int64), axis=1)
    return (s[:, 0] * n_vertices + s[:, 1]) * n_vertices + s[:, 2]


def _topology(data: dict, file, n_vertices: int) -> dict:
    v = n_vertices
    tri = _one_based(_matrix(data["tri"], "tri", file, cols=3, expect="(T, 3)"), "tri", file, v)
    n_tri = len(tri)

    # point_buf: the faces around each vertex, 1-based. Deep3DFaceRecon appends one zero normal
    # after the T face normals and indexes it with point_buf - 1, so the padding entry is T + 1
    # (1-based) = T (0-based), which is also our padding convention. A padding of 0 (1-based)
    # would index -1, the same zero row in PyTorch; it is mapped to T as well.
    pb_raw = _matrix(data["point_buf"], "point_buf", file, rows=v,
                     expect=f"(V, K) = ({v}, K) with V = {v}")
    point_buf = _one_based(pb_raw, "point_buf", file, upper=n_tri + 1, lower=0)
    point_buf[point_buf < 0] = n_tri
    rows = np.broadcast_to(np.arange(v)[:, None], point_buf.shape)
    real = point_buf < n_tri
    holds = (tri[point_buf[real]] == rows[real][:, None]).any(axis=1)
    if not holds.all():
        warnings.warn(f"{file}: {int((~holds).sum())} point_buf entries name a triangle that "
                      "does not hold the vertex; vertex normals will differ from a mesh-derived "
                      "table (kept as is, as Deep3DFaceRecon uses it)", stacklevel=3)

    kp = _vector(data["keypoints"], "keypoints", file, size=N_LANDMARKS,
                 expect=f"{N_LANDMARKS} values, (1, 68)")
    landmarks = _one_based(kp, "keypoints", file, v)

    skin = _vector(data["skinmask"], "skinmask", file, size=v,
                   expect=f"(1, {v}) or ({v}, 1), one value per vertex")
    skin = skin.astype(np.float32)
    if not np.all(np.isfinite(skin)):
        _fail(file, "skinmask holds non-finite values")

    if "frontmask2_idx" in data:  # vertex list of the same region; only checked
        _one_based(_vector(data["frontmask2_idx"], "frontmask2_idx", file),
                   "frontmask2_idx", file, v)

    # tri_mask2 lists the front-region triangles with full-model vertex indices (Deep3DFaceRecon
    # renders it with all vertices); mark the triangles of `tri` it holds, in any vertex order.
    tm = _one_based(_matrix(data["tri_mask2"], "tri_mask2", file, cols=3, expect="(F, 3)"),
                    "tri_mask2", file, v)
    tri_keys, mask_keys = _triangle_keys(tri, v), _triangle_keys(tm, v)
    front_mask = np.isin(tri_keys, mask_keys)
    unmatched = int((~np.isin(mask_keys, tri_keys)).sum())
    if unmatched:
        warnings.warn(f"{file}: {unmatched} of {len(tm)} tri_mask2 triangles are not triangles "
                      "of tri; they are left out of front_mask", stacklevel=3)

    return dict(triangles=tri.astype(np.int32), vertex_faces=point_buf.astype(np.int32),
                landmarks=landmarks.astype(np.int32), skin_mask=skin, front_mask=front_mask)


def _assemble(*, mean_shape, mean_tex, id_basis, exp_basis, tex_basis, topology: dict,
              source, file_format: str, shape_file, tex_file) -> FaceModel:
    """FaceModel from Deep3DFaceRecon-unit arrays: (V,3) mean shape in dm, texture in 0..255."""
    ms = np.asarray(mean_shape).astype(np.float32)
    if np.abs(ms).max() > 1e3:
        warnings.warn(f"{shape_file}: the mean shape spans {np.abs(ms).max():.3g} units; "
                      "decimetres (about 1 for a face) are expected, micrometres would need "
                      "/ 1e5", stacklevel=3)
    # Deep3DFaceRecon (ParametricFaceModel, recenter=True): mean shape minus its vertex mean,
    # computed in float32; the bases are left as they are.
    ms = ms - np.mean(ms, axis=0, keepdims=True)
    mt = np.asarray(mean_tex).astype(np.float32)
    if mt.max() <= 1.0:
        warnings.warn(f"{tex_file}: the mean texture is at most {mt.max():.3g}; 0..255 is "
                      "expected and it is divided by 255 all the same", stacklevel=3)
    info = dict(name=MODEL_NAME, units="decimetres", source=str(source), format=file_format,
                licence=LICENCE, attribution=ATTRIBUTION, synthetic_texture=False,
                expression_kind="pca")
    return make_face_model(
        mean_shape=ms,
        id_basis=id_basis,
        exp_basis=exp_basis,
        mean_albedo=mt / np.float32(255.0),
        tex_basis=np.asarray(tex_basis).astype(np.float32) / np.float32(255.0),
        info=info,
        **topology)


# --------------------------------------------------------------------------------------------
# public readers


def load_bfm_front(path: str | os.PathLike) -> FaceModel:
    """Read Deep3DFaceRecon's BFM_model_front.mat (a file, or a folder that holds one)."""
    path = pathlib.Path(path).expanduser()
    if path.is_dir():
        path = path / FRONT_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"BFM front model not found: {path}\n  Expected Deep3DFaceRecon's {FRONT_FILE} "
            f"(or a folder with the raw files {', '.join(RAW_FILES)}). {_HOW_TO_GET}")
    data = _loadmat(path, FRONT_KEYS, OPTIONAL_KEYS, what=f"a Deep3DFaceRecon {FRONT_FILE}")

    ms = _vector(data["meanshape"], "meanshape", path, expect="(1, 3*V)")
    if ms.size % 3:
        _fail(path, f"meanshape has {ms.size} values, expected 3*V (x0, y0, z0, x1, ...)")
    v = ms.size // 3
    mt = _vector(data["meantex"], "meantex", path, size=3 * v,
                 expect=f"(1, 3*V) = (1, {3 * v}) with V = {v} from meanshape")
    return _assemble(
        mean_shape=ms.reshape(v, 3),
        mean_tex=mt.reshape(v, 3),
        id_basis=_flat_basis(data["idBase"], "idBase", path, v),
        exp_basis=_flat_basis(data["exBase"], "exBase", path, v),
        tex_basis=_flat_basis(data["texBase"], "texBase", path, v),
        topology=_topology(data, path, v),
        source=path, file_format="deep3dfacerecon_front_mat", shape_file=path, tex_file=path)


def read_exp_pca(path: str | os.PathLike, n_exp_vertices: int, n_keep: int | None = None):
    """Read Guo et al.'s Exp_Pca.bin: int32 n, float32 mean[3*Ve], float32 PCs[n][3*Ve].

    Little-endian, no padding (Deep3DFaceRecon's LoadExpBasis). Returns (n, PCs) with PCs of
    shape (n_keep or n, 3*Ve) float32, rows x0, y0, z0, x1, ...; the mean is not used.
    """
    path = pathlib.Path(path).expanduser()
    size = path.stat().st_size
    per = 3 * n_exp_vertices
    layout = (f"int32 n, float32 mean[3*{n_exp_vertices}], float32 PCs[n][3*{n_exp_vertices}] "
              f"over the {n_exp_vertices} vertices of {EXP_IDX_FILE} (trimIndex); the real "
              f"file is {REAL_EXP_BYTES:,} bytes (n = 79, 53215 vertices)")
    if size < 4:
        _fail(path, f"{size} bytes, too short to be the expression basis ({layout})")
    n = int(np.fromfile(path, dtype="<i4", count=1)[0])
    expected = 4 + 4 * per * (1 + n) if n > 0 else None
    if expected is None or size != expected:
        want = f"{expected:,} bytes for n = {n}" if expected else f"n > 0 (read n = {n})"
        _fail(path, f"{size:,} bytes, expected {want}: {layout}. The file is truncated, or is "
                    "not Guo et al.'s expression basis, or does not match the trimIndex file")
    keep = n if n_keep is None else n_keep
    if keep > n:
        _fail(path, f"holds {n} expression components, {keep} are needed")
    pcs = np.fromfile(path, dtype="<f4", count=keep * per, offset=4 + 4 * per)
    return n, pcs.reshape(keep, per)


def load_bfm_raw(folder: str | os.PathLike, *, n_id: int = 80, n_exp: int = 64,
                 n_tex: int = 80) -> FaceModel:
    """Convert the raw BFM 2009 + Exp_Pca.bin + Deep3DFaceRecon helper files, as transferBFM09.

    id = shapePC * shapeEV / 1e5, exp = expPC * std_exp / 1e5, tex = texPC * texEV (first
    n_id / n_exp / n_tex components); vertices trimIndex[idx] of the raw model, idx of the
    expression model; mean shape = shapeMU / 1e5 at those vertices (then re-centred).
    Arithmetic is done in the files' own dtypes, as Deep3DFaceRecon does it (expression in
    float64 because std_exp.txt is read as float64), then cast to float32.
    """
    folder = pathlib.Path(folder).expanduser()
    if folder.is_file() and folder.name == RAW_FILE:
        folder = folder.parent
    missing = [name for name in RAW_FILES if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"raw BFM 2009 files missing in {folder}: {', '.join(missing)}\n"
            f"  The raw route needs all of {', '.join(RAW_FILES)}. {_HOW_TO_GET}")
    p_raw, p_exp = folder / RAW_FILE, folder / EXP_FILE
    p_fidx, p_eidx = folder / FRONT_IDX_FILE, folder / EXP_IDX_FILE
    p_std, p_info = folder / STD_EXP_FILE, folder / INFO_FILE

    raw = _loadmat(p_raw, RAW_KEYS, what=f"the BFM 2009 {RAW_FILE}")
    shape_mu = _vector(raw["shapeMU"], "shapeMU", p_raw, expect="(3*V, 1)")
    if shape_mu.size % 3:
        _fail(p_raw, f"shapeMU has {shape_mu.size} values, expected 3*V (x0, y0, z0, x1, ...)")
    vs = shape_mu.size // 3
    what = f"with V = {vs} from shapeMU"

    def basis(pc_key, ev_key, n_keep):
        pc = _matrix(raw[pc_key], pc_key, p_raw, rows=3 * vs,
                     expect=f"(3*V, n) = ({3 * vs}, n) {what}")
        if pc.shape[1] < n_keep:
            _fail(p_raw, f"{pc_key} has {pc.shape[1]} components, {n_keep} are needed")
        ev = _vector(raw[ev_key], ev_key, p_raw, size=pc.shape[1],
                     expect=f"{pc.shape[1]} values, one per column of {pc_key}")
        return pc, ev

    shape_pc, shape_ev = basis("shapePC", "shapeEV", n_id)
    tex_pc, tex_ev = basis("texPC", "texEV", n_tex)
    tex_mu = _vector(raw["texMU"], "texMU", p_raw, size=3 * vs,
                     expect=f"(3*V, 1) = ({3 * vs}, 1) {what}")

    trim_raw = _loadmat(p_eidx, ["trimIndex"], what=EXP_IDX_FILE)["trimIndex"]
    trim = _one_based(_vector(trim_raw, "trimIndex", p_eidx), "trimIndex", p_eidx, upper=vs)
    ve = trim.size  # vertices of the expression model (53,215 for the real files)
    idx_raw = _loadmat(p_fidx, ["idx"], what=FRONT_IDX_FILE)["idx"]
    idx = _one_based(_vector(idx_raw, "idx", p_fidx), "idx", p_fidx, upper=ve)
    v = idx.size
    sel = trim[idx]  # raw-model vertex of each front vertex (transferBFM09: index_shape[index_exp])

    n_exp_total, exp_pc = read_exp_pca(p_exp, ve, n_keep=n_exp)
    try:
        std_exp = np.loadtxt(p_std, dtype=np.float64).reshape(-1)
    except Exception as e:  # noqa: BLE001
        raise FaceModelError(f"{p_std}: cannot read it as a list of numbers ({e})") from e
    if std_exp.size != n_exp_total:
        _fail(p_std, f"holds {std_exp.size} values, expected {n_exp_total} (one per component "
                     f"of {p_exp.name})")

    # Select the vertices first, then scale: element-wise, so the same numbers as scaling first.
    # Deep3DFaceRecon multiplies float32 PCs by float32 EVs (float32 result) but the float32
    # expression PCs by the float64 std_exp (float64 result); the same promotions happen here.
    mean_shape = shape_mu.reshape(vs, 3)[sel] / 1e5
    id_b = shape_pc.reshape(vs, 3, -1)[sel, :, :n_id] * shape_ev[:n_id] / 1e5  # (V, 3, n_id)
    tex_b = tex_pc.reshape(vs, 3, -1)[sel, :, :n_tex] * tex_ev[:n_tex]  # (V, 3, n_tex)
    exp_b = exp_pc.reshape(n_exp, ve, 3)[:, idx] * std_exp[:n_exp, None, None] / 1e5

    info = _loadmat(p_info, TOPOLOGY_KEYS, OPTIONAL_KEYS, what=f"Deep3DFaceRecon's {INFO_FILE}")
    return _assemble(
        mean_shape=mean_shape,
        mean_tex=tex_mu.reshape(vs, 3)[sel],
        id_basis=np.ascontiguousarray(id_b.transpose(2, 0, 1), dtype=np.float32),
        exp_basis=np.ascontiguousarray(exp_b, dtype=np.float32),
        tex_basis=np.ascontiguousarray(tex_b.transpose(2, 0, 1), dtype=np.float32),
        topology=_topology(info, p_info, v),
        source=folder, file_format="bfm2009_raw", shape_file=p_raw, tex_file=p_raw)


def default_bfm_dir() -> pathlib.Path:
    """Where `load_bfm()` looks without a path: the BFM folder of the assets folder."""
    from . import assets
    return assets.assets_dir() / "BFM"


def load_bfm(path: str | os.PathLike | None = None) -> FaceModel:
    """Read BFM 2009 from whatever the path holds.

    * a .mat file: 01_MorphableModel.mat -> `load_bfm_raw` on its folder; any other .mat
      (BFM_model_front.mat) -> `load_bfm_front`;
    * a folder: the raw route when it holds 01_MorphableModel.mat (and, should a raw helper be
      missing while BFM_model_front.mat is there, that file instead); else BFM_model_front.mat.
    Without a path: $FACERECON_ASSETS/BFM (else ../shared/assets/BFM beside the checkout).
    """
    path = pathlib.Path(path).expanduser() if path is not None else default_bfm_dir()
    if path.is_file():
        if path.name == RAW_FILE:
            return load_bfm_raw(path.parent)
        if path.suffix.lower() == ".mat":
            return load_bfm_front(path)
        _fail(path, f"not a BFM file: expected {FRONT_FILE}, {RAW_FILE} or a folder holding "
                    "them")
    if path.is_dir():
        has_front = (path / FRONT_FILE).is_file()
        if (path / RAW_FILE).is_file():
            raw_complete = all((path / n).is_file() for n in RAW_FILES)
            if raw_complete or not has_front:
                return load_bfm_raw(path)
        if has_front:
            return load_bfm_front(path / FRONT_FILE)
    raise FileNotFoundError(
        f"no Basel Face Model at {path}\n  Expected {FRONT_FILE} (Deep3DFaceRecon's converted "
        f"model), or a folder with {', '.join(RAW_FILES)}. Pass the file or folder to "
        f"load_bfm(...), or put a BFM folder in $FACERECON_ASSETS. {_HOW_TO_GET}")
