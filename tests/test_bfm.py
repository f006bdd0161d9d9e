"""BFM 2009 readers, on small synthetic files written in the real files' formats.

The raw model has 40 vertices, the expression model 30 of them (trimIndex), the front model 20
of those (idx) laid out as a 4 x 5 grid. Expectations are computed here, vertex by vertex, from
the raw arrays, not with the module's code.
"""
from __future__ import annotations

import pathlib

import numpy as np
import pytest
import scipy.io

from facerecon_jax.models import bfm
from facerecon_jax.models.face_model import FaceModelError

VS, VE, ROWS, COLS = 40, 30, 4, 5
V = ROWS * COLS
N_SHAPE, N_EXP_FILE = 199, 79
PLANTED = np.array([123456.0, -234567.0, 345678.0])  # micrometres, at front vertex 0


def _grid_triangles():
    tri = []
    for r in range(ROWS - 1):
        for c in range(COLS - 1):
            a, b = r * COLS + c, r * COLS + c + 1
            d, e = (r + 1) * COLS + c, (r + 1) * COLS + c + 1
            tri += [(a, b, e), (a, e, d)]
    return np.array(tri)  # 0-based, 24 triangles


def _make_raw(folder: pathlib.Path, seed: int = 0) -> dict:
    """Write the raw route's six files into `folder`; return the arrays and expectations."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)

    trim = rng.permutation(VS)[:VE] + 1          # 1-based raw vertex of each expression vertex
    idx = rng.permutation(VE)[:V] + 1            # 1-based expression vertex of each front vertex
    shape_mu = rng.normal(0.0, 5e4, (VS, 3)) + np.array([2e4, -1e4, 3e4])
    shape_mu[trim[idx[0] - 1] - 1] = PLANTED
    shape_mu = shape_mu.reshape(-1, 1).astype(np.float32)
    shape_pc = rng.normal(0.0, 0.1, (3 * VS, N_SHAPE)).astype(np.float32)
    shape_ev = np.linspace(3e4, 100.0, N_SHAPE).reshape(-1, 1).astype(np.float32)
    tex_mu = rng.uniform(40, 220, (3 * VS, 1)).astype(np.float32)
    tex_pc = rng.normal(0.0, 0.1, (3 * VS, N_SHAPE)).astype(np.float32)
    tex_ev = np.linspace(60.0, 1.0, N_SHAPE).reshape(-1, 1).astype(np.float32)
    scipy.io.savemat(folder / "01_MorphableModel.mat", dict(
        shapeMU=shape_mu, shapePC=shape_pc, shapeEV=shape_ev, texMU=tex_mu, texPC=tex_pc,
        texEV=tex_ev, tl=np.array([[1, 2, 3]], np.float64)))
    scipy.io.savemat(folder / "BFM_exp_idx.mat",
                     dict(trimIndex=trim.reshape(-1, 1).astype(np.uint16)))
    scipy.io.savemat(folder / "BFM_front_idx.mat", dict(idx=idx.reshape(-1, 1).astype(np.float32)))

    exp_mu = rng.normal(0.0, 1.0, 3 * VE).astype(np.float32)
    exp_pc = rng.normal(0.0, 1.0, (N_EXP_FILE, 3 * VE)).astype(np.float32)
    std_exp = np.linspace(5e4, 1e3, N_EXP_FILE)
    with open(folder / "Exp_Pca.bin", "wb") as f:
        np.array([N_EXP_FILE], "<i4").tofile(f)
        exp_mu.astype("<f4").tofile(f)
        exp_pc.astype("<f4").tofile(f)
    np.savetxt(folder / "std_exp.txt", std_exp)

    tri = _grid_triangles()
    t = len(tri)
    point_buf = np.full((V, 8), t + 1)            # 1-based, padded with T + 1
    for v in range(V):
        faces = [f + 1 for f in range(t) if v in tri[f]]
        point_buf[v, :len(faces)] = faces
    front_cells = [i for i in range(t) if max(tri[i] % COLS) <= 2]   # left part of the grid
    tri_mask2 = np.roll(tri[front_cells], 1, axis=1)[rng.permutation(len(front_cells))]
    keypoints = rng.integers(1, V + 1, (1, 68))
    skinmask = (rng.uniform(size=(1, V)) > 0.5).astype(np.float32)
    topo = dict(tri=(tri + 1).astype(np.float32), point_buf=point_buf.astype(np.float32),
                tri_mask2=(tri_mask2 + 1).astype(np.float32),
                keypoints=keypoints.astype(np.float32),
                frontmask2_idx=(np.unique(tri_mask2) + 1).reshape(-1, 1).astype(np.float32),
                skinmask=skinmask)
    scipy.io.savemat(folder / "facemodel_info.mat", topo)

    # Expectations, vertex by vertex in float64 (transferBFM09's recipe written out).
    ms = np.zeros((V, 3))
    alb = np.zeros((V, 3))
    id_b = np.zeros((80, V, 3))
    exp_b = np.zeros((64, V, 3))
    tex_b = np.zeros((80, V, 3))   # 0..255 units
    for j in range(V):
        e = int(idx[j]) - 1
        s = int(trim[e]) - 1
        ms[j] = shape_mu[3 * s:3 * s + 3, 0] / 1e5
        alb[j] = tex_mu[3 * s:3 * s + 3, 0]
        for k in range(80):
            id_b[k, j] = shape_pc[3 * s:3 * s + 3, k] * float(shape_ev[k, 0]) / 1e5
            tex_b[k, j] = tex_pc[3 * s:3 * s + 3, k] * float(tex_ev[k, 0])
        for k in range(64):
            exp_b[k, j] = exp_pc[k, 3 * e:3 * e + 3] * std_exp[k] / 1e5
    return dict(folder=folder, topo=topo, tri=tri, point_buf=point_buf, front_cells=front_cells,
                keypoints=keypoints, skinmask=skinmask, ms_uncentred=ms, albedo255=alb,
                id=id_b, exp=exp_b, tex255=tex_b)


def _front_dict(raw: dict) -> dict:
    """BFM_model_front.mat contents from the expectations: flat (3V, n), x0 y0 z0 x1 ..."""
    def flat(b):  # (n, V, 3) -> (3V, n)
        return np.stack([b[k].reshape(-1) for k in range(len(b))], axis=1)
    d = dict(raw["topo"])
    d.update(meanshape=raw["ms_uncentred"].reshape(1, -1).astype(np.float32),
             meantex=raw["albedo255"].reshape(1, -1).astype(np.float32),
             idBase=flat(raw["id"]).astype(np.float32),
             exBase=flat(raw["exp"]),                      # float64, as transferBFM09 leaves it
             texBase=flat(raw["tex255"]).astype(np.float32))
    return d


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    return _make_raw(tmp_path_factory.mktemp("bfm_raw"))


@pytest.fixture(scope="module")
def raw_model(raw):
    return bfm.load_bfm_raw(raw["folder"])


def test_synthetic_files_have_the_real_dtypes(raw):
    f = raw["folder"]
    assert scipy.io.loadmat(f / "BFM_exp_idx.mat")["trimIndex"].dtype == np.uint16
    assert scipy.io.loadmat(f / "BFM_front_idx.mat")["idx"].dtype == np.float32
    assert scipy.io.loadmat(f / "facemodel_info.mat")["tri"].dtype == np.float32
    assert (f / "Exp_Pca.bin").stat().st_size == 4 + 4 * 3 * VE * (1 + N_EXP_FILE)


def test_raw_route_values(raw, raw_model):
    m = raw_model
    assert (m.n_vertices, m.n_id, m.n_exp, m.n_tex) == (V, 80, 64, 80)
    # planted vertex: micrometres / 1e5, then the centroid of the selected vertices removed
    centroid = raw["ms_uncentred"].mean(axis=0)
    np.testing.assert_allclose(m.mean_shape[0] + centroid, PLANTED / 1e5, rtol=1e-6)
    np.testing.assert_allclose(m.mean_shape, raw["ms_uncentred"] - centroid, atol=2e-6)
    assert np.all(np.abs(np.asarray(m.mean_shape).mean(axis=0)) < 1e-6)
    # bases scaled by their EVs / std and NOT re-centred
    np.testing.assert_allclose(m.id_basis, raw["id"], rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(m.exp_basis, raw["exp"], rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(m.tex_basis, raw["tex255"] / 255.0, rtol=1e-5, atol=1e-9)
    assert np.abs(np.asarray(m.id_basis).mean(axis=1)).max() > 1e-4
    np.testing.assert_allclose(m.mean_albedo, raw["albedo255"] / 255.0, rtol=1e-6)
    assert 0.0 <= float(np.min(m.mean_albedo)) and float(np.max(m.mean_albedo)) <= 1.0
    for a in (m.mean_shape, m.id_basis, m.exp_basis, m.tex_basis, m.mean_albedo):
        assert a.dtype == np.float32


def test_raw_route_indices_and_masks(raw, raw_model):
    m = raw_model
    t = len(raw["tri"])
    assert m.triangles.dtype == np.int32 and m.landmarks.dtype == np.int32
    np.testing.assert_array_equal(m.triangles, raw["tri"])
    np.testing.assert_array_equal(m.landmarks, raw["keypoints"].reshape(-1) - 1)
    # point_buf padding T + 1 (1-based) becomes T (0-based), our padding
    np.testing.assert_array_equal(m.vertex_faces, raw["point_buf"] - 1)
    assert int(np.max(m.vertex_faces)) == t
    for v in range(V):
        real = [f for f in m.vertex_faces[v] if f < t]
        assert sorted(real) == [f for f in range(t) if v in raw["tri"][f]]
    expected_front = np.zeros(t, bool)
    expected_front[raw["front_cells"]] = True
    np.testing.assert_array_equal(m.front_mask, expected_front)
    np.testing.assert_array_equal(m.skin_mask, raw["skinmask"].reshape(-1))
    info = m.info
    assert info["units"] == "decimetres" and info["expression_kind"] == "pca"
    assert info["synthetic_texture"] is False
    assert "never redistribute" in info["licence"]
    assert info["name"] == "BFM 2009 (Deep3DFaceRecon front model)"


def test_front_route_agrees_with_raw_route(raw, raw_model, tmp_path):
    path = tmp_path / "BFM_model_front.mat"
    scipy.io.savemat(path, _front_dict(raw))
    front = bfm.load_bfm_front(path)
    for key in ("mean_shape", "id_basis", "exp_basis", "mean_albedo", "tex_basis"):
        np.testing.assert_allclose(getattr(front, key), getattr(raw_model, key),
                                   rtol=1e-6, atol=1e-7, err_msg=key)
    for key in ("triangles", "vertex_faces", "landmarks", "skin_mask", "front_mask"):
        np.testing.assert_array_equal(getattr(front, key), getattr(raw_model, key), err_msg=key)
    assert front.info["source"] == str(path)


def test_load_bfm_dispatch(raw, tmp_path):
    front_dir = tmp_path / "front_only"
    front_dir.mkdir()
    scipy.io.savemat(front_dir / "BFM_model_front.mat", _front_dict(raw))
    assert bfm.load_bfm(front_dir).info["format"] == "deep3dfacerecon_front_mat"
    assert bfm.load_bfm(front_dir / "BFM_model_front.mat").info["format"] == \
        "deep3dfacerecon_front_mat"
    assert bfm.load_bfm(raw["folder"]).info["format"] == "bfm2009_raw"
    assert bfm.load_bfm(raw["folder"] / "01_MorphableModel.mat").info["format"] == "bfm2009_raw"
    with pytest.raises(FileNotFoundError, match="Basel"):
        bfm.load_bfm(tmp_path / "empty_or_missing")


def test_front_missing_key_names_file_and_key(raw, tmp_path):
    d = _front_dict(raw)
    del d["idBase"]
    path = tmp_path / "BFM_model_front.mat"
    scipy.io.savemat(path, d)
    with pytest.raises(FaceModelError) as e:
        bfm.load_bfm_front(path)
    assert str(path) in str(e.value) and "idBase" in str(e.value)


def test_front_wrong_shape_names_file_key_and_shape(raw, tmp_path):
    d = _front_dict(raw)
    d["idBase"] = np.zeros((10, 80), np.float32)
    path = tmp_path / "BFM_model_front.mat"
    scipy.io.savemat(path, d)
    with pytest.raises(FaceModelError) as e:
        bfm.load_bfm_front(path)
    msg = str(e.value)
    assert str(path) in msg and "idBase" in msg and "(10, 80)" in msg and f"{3 * V}" in msg


def test_truncated_exp_pca_names_file_and_sizes(tmp_path):
    r = _make_raw(tmp_path / "bfm", seed=1)
    p = r["folder"] / "Exp_Pca.bin"
    data = p.read_bytes()
    p.write_bytes(data[:-100])
    with pytest.raises(FaceModelError) as e:
        bfm.load_bfm_raw(r["folder"])
    msg = str(e.value)
    assert str(p) in msg and f"{len(data) - 100:,} bytes" in msg and f"{len(data):,}" in msg


def test_missing_raw_file_says_what_to_get(tmp_path):
    r = _make_raw(tmp_path / "bfm", seed=2)
    (r["folder"] / "Exp_Pca.bin").unlink()
    with pytest.raises(FileNotFoundError) as e:
        bfm.load_bfm_raw(r["folder"])
    msg = str(e.value)
    assert "Exp_Pca.bin" in msg and "Basel" in msg and "Guo" in msg


def test_raw_missing_key_and_bad_index_name_the_file(tmp_path):
    r = _make_raw(tmp_path / "bfm", seed=3)
    f = r["folder"]
    m = scipy.io.loadmat(f / "01_MorphableModel.mat")
    scipy.io.savemat(f / "01_MorphableModel.mat",
                     {k: v for k, v in m.items() if not k.startswith("__") and k != "shapeEV"})
    with pytest.raises(FaceModelError, match="01_MorphableModel.mat.*shapeEV"):
        bfm.load_bfm_raw(f)

    r = _make_raw(tmp_path / "bfm2", seed=3)
    topo = dict(r["topo"])
    topo["tri"] = topo["tri"].copy()
    topo["tri"][0, 0] = 1.5
    scipy.io.savemat(r["folder"] / "facemodel_info.mat", topo)
    with pytest.raises(FaceModelError, match="facemodel_info.mat.*tri.*non-integer"):
        bfm.load_bfm_raw(r["folder"])


def test_point_buf_zero_padding_maps_to_T(raw, tmp_path):
    d = _front_dict(raw)
    t = len(raw["tri"])
    pb = d["point_buf"].copy()
    pb[pb == t + 1] = 0          # padding written as 0 (1-based), i.e. index -1
    d["point_buf"] = pb
    path = tmp_path / "BFM_model_front.mat"
    scipy.io.savemat(path, d)
    np.testing.assert_array_equal(bfm.load_bfm_front(path).vertex_faces, raw["point_buf"] - 1)
