import json

import numpy as np
import pytest

from facerecon_jax.io import assets
from facerecon_jax.models import face_model, ict_model


def test_save_load_round_trip(small_grid, tmp_path):
    path = face_model.save(small_grid, tmp_path / "m.npz")
    back = face_model.load(path)
    for k in face_model.ARRAY_KEYS:
        np.testing.assert_array_equal(getattr(back, k), getattr(small_grid, k))
    assert back.info == small_grid.info
    assert not list(tmp_path.glob("*.tmp"))


def test_wrong_shape_names_the_file_and_array(small_grid, tmp_path):
    arrays = {k: np.asarray(getattr(small_grid, k)) for k in face_model.ARRAY_KEYS}
    arrays["id_basis"] = arrays["id_basis"][:, :10]
    np.savez(tmp_path / "bad.npz", info=np.array("{}"), **arrays)
    with pytest.raises(face_model.FaceModelError, match=r"bad\.npz.*id_basis"):
        face_model.load(tmp_path / "bad.npz")
    np.savez(tmp_path / "partial.npz", mean_shape=arrays["mean_shape"])
    with pytest.raises(face_model.FaceModelError, match=r"partial\.npz.*missing"):
        face_model.load(tmp_path / "partial.npz")


def test_default_model_conversion(default_model):
    m = default_model
    info = m.info
    assert info["synthetic_texture"] is True and info["licence"] == "MIT"
    assert "MIT License" in info["licence_text"] or "Permission is hereby granted" in info[
        "licence_text"]
    assert info["units"] == "decimetres"
    assert (m.n_id, m.n_exp, m.n_tex) == (80, 53, 80)
    # decimetres: a face is about 1.5 dm wide; centred
    extent = m.mean_shape.max(0) - m.mean_shape.min(0)
    assert 1.2 < extent[0] < 1.8 and 1.5 < extent[1] < 2.5
    np.testing.assert_allclose(m.mean_shape.mean(0), 0, atol=1e-5)
    # identity modes re-orthogonalised: B B^T diagonal, singular values decreasing
    b = m.id_basis.reshape(80, -1).astype(np.float64)
    gram = b @ b.T
    off = gram - np.diag(np.diag(gram))
    assert np.abs(off).max() < 1e-3 * np.diag(gram).max()
    assert np.all(np.diff(np.diag(gram)) <= 1e-6)
    # the cropped identity space of the 100 published modes is kept: projecting a random
    # published-mode combination (cropped) onto our 80 modes loses only a little
    raw = np.load(assets.asset_path("ict_facekit", "ict_facekit_light.npz"))["identity_deltas"]
    raw = raw[:, :m.n_vertices].reshape(100, -1) * 0.1
    z = np.random.default_rng(0).normal(size=100)
    target = z @ raw
    coef, *_ = np.linalg.lstsq(b.T, target, rcond=None)
    assert np.linalg.norm(b.T @ coef - target) < 0.2 * np.linalg.norm(target)
    # normals point out of the face: the nose tip's normal faces the camera (+z)
    from facerecon_jax.geometry import morphable
    n = np.asarray(morphable.vertex_normals(m.mean_shape, m.triangles, m.vertex_faces))
    assert n[m.landmarks[30], 2] > 0.7
    # masks: skin on the forehead, both cheeks and the nose; front region most of the face
    s = m.mean_shape[m.skin_mask > 0]
    lm = m.mean_shape[m.landmarks]
    assert (s[:, 1] > lm[17:27, 1].max()).any()                  # forehead
    assert (s[:, 0] < lm[31, 0]).any() and (s[:, 0] > lm[35, 0]).any()  # cheeks
    assert 0.5 < m.front_mask.mean() < 1.0
    # texture: mean albedo skin-coloured, modes smooth and small
    assert np.all((m.mean_albedo > 0.2) & (m.mean_albedo < 0.9))
    assert np.abs(m.tex_basis).max() < 0.2


def test_missing_assets_name_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv(assets.ASSETS_ENV, str(tmp_path))
    with pytest.raises(assets.AssetMissingError, match=r"ict_facekit.*FACERECON_ASSETS"):
        ict_model.load_default()
    (tmp_path / "ict_facekit").mkdir()
    with pytest.raises(assets.AssetMissingError, match=r"ict_facekit_light\.npz"):
        ict_model.load_default()


def test_conversion_is_cached_outside_the_repo(tmp_path, monkeypatch):
    monkeypatch.setenv(assets.CACHE_ENV, str(tmp_path / "cache"))
    m = ict_model.load_default()
    cached = list((tmp_path / "cache").glob("ict_face_model_*.npz"))
    assert len(cached) == 1
    again = face_model.load(cached[0])
    np.testing.assert_array_equal(again.id_basis, m.id_basis)
    assert json.loads(again.info_json)["synthetic_texture"] is True
