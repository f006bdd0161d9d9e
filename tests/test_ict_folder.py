"""The default model also builds from ICT-FaceKit's own published folder (FaceXModel/): a tiny
fake folder in that layout gives the planted deltas, a missing file is named with how to get the
folder, and on the real neutral mesh the OBJ path and the prepared npz give the same model."""
import json

import numpy as np
import pytest

from facerecon_jax.io import assets
from facerecon_jax.models import face_model, ict_model

HEADER = ("#" * 40 + "\n# ICT FaceKit (fake, for tests)\n" + "#" * 40
          + "\n\nmtllib ICTFaceModelMaterial.mtl\n")
# vertex_indices.json's order, not sorted
EXPRESSIONS = ["jawOpen", "browDown_L", "mouthSmile_R"]
N_V = 80


def _write_obj(path, verts, faces=((1, 2, 3, 4), (2, 5, 3))):
    """An OBJ like ICT's: licence comment, mtllib, v, vt, then f v/vt polygons."""
    with open(path, "w") as f:
        f.write(HEADER)
        np.savetxt(f, verts, fmt="v %.9g %.9g %.9g")
        f.write("".join(f"vt {0.01 * k:.4f} {0.02 * k:.4f}\n" for k in range(1, 6)))
        f.write("usemtl face\n")
        for poly in faces:
            f.write("f " + " ".join(f"{i}/{i}" for i in poly) + "\n")


def _vertex_indices(names, landmarks):
    """A vertex_indices.json with the real file's keys."""
    return {"expressions": list(names), "fitting_expressions": list(names), "incompatibilities": [],
            "idx_to_fitting_verts": [0, 1, 2], "idx_to_rigid_verts": [3, 4],
            "idx_to_lap_rigid_verts": [5], "idx_to_landmark_verts": [int(i) for i in landmarks],
            "idx_to_rigid_landmark_idx": [0, 36, 39, 42, 45, 16, 28, 31, 35]}


def _fake_clone(root, n_id=3, rng=None):
    """<root>/ICT-FaceKit/{LICENSE, FaceXModel/...}; returns (neutral, id deltas, exp deltas)."""
    rng = rng or np.random.default_rng(0)
    clone = root / ict_model.CLONE_DIR
    facex = clone / ict_model.FACEX_DIR
    facex.mkdir(parents=True)
    (clone / "LICENSE").write_text("MIT License\n\nCopyright (c) 2020 USC ICT (fake)\n")
    neutral = rng.normal(0, 5, (N_V, 3)).round(4)
    ids = rng.normal(0, 0.3, (n_id, N_V, 3)).round(4)
    exps = rng.normal(0, 0.2, (len(EXPRESSIONS), N_V, 3)).round(4)
    _write_obj(facex / "generic_neutral_mesh.obj", neutral)
    for k in range(n_id):
        _write_obj(facex / f"identity{k:03d}.obj", neutral + ids[k])
    for name, d in zip(EXPRESSIONS, exps):
        _write_obj(facex / f"{name}.obj", neutral + d)
    _write_obj(facex / "cheekRaiser_L.obj", neutral + 1.0)     # not in the json: not read
    _write_obj(facex / "identity005.obj", neutral + 1.0)       # after a gap: not read (as ICT's)
    (facex / "vertex_indices.json").write_text(json.dumps(_vertex_indices(
        EXPRESSIONS, np.arange(68) + 5)))
    return neutral, ids, exps


@pytest.fixture
def clean_env(tmp_path, monkeypatch):
    monkeypatch.setenv(assets.ASSETS_ENV, str(tmp_path / "assets"))
    monkeypatch.setenv(assets.CACHE_ENV, str(tmp_path / "cache"))
    (tmp_path / "assets").mkdir()
    return tmp_path / "assets"


def test_facex_folder_gives_the_planted_deltas(clean_env, tmp_path):
    neutral, ids, exps = _fake_clone(clean_env)
    src = ict_model.find_source()
    facex = clean_env / "ICT-FaceKit" / "FaceXModel"
    assert src.kind == "FaceXModel" and src.folder == facex
    assert src.licence == clean_env / "ICT-FaceKit" / "LICENSE"
    data = ict_model.read_facex_folder(facex)
    assert data["neutral"].shape == (N_V, 3) and data["neutral"].dtype == np.float32
    np.testing.assert_allclose(data["neutral"], neutral, atol=1e-5)
    assert data["identity_deltas"].shape == (3, N_V, 3)               # identity005 after a gap: no
    np.testing.assert_allclose(data["identity_deltas"], ids, atol=1e-5)
    assert list(data["expression_names"]) == EXPRESSIONS              # json order, extras ignored
    np.testing.assert_allclose(data["expression_deltas"], exps, atol=1e-5)
    np.testing.assert_array_equal(data["landmarks68"], np.arange(68) + 5)
    # the parsed arrays are cached (same values on the second read, from the cache npz)
    first = ict_model.source_arrays(src)
    cached = list((tmp_path / "cache").glob("ict_facekit_light_*.npz"))
    assert len(cached) == 1
    again = ict_model.source_arrays(src)
    for k in ict_model.SOURCE_KEYS:
        np.testing.assert_array_equal(again[k], first[k])
        np.testing.assert_array_equal(first[k], data[k])
    # the clone root or the FaceXModel folder itself can be named explicitly
    assert ict_model.find_source(clean_env / "ICT-FaceKit").folder == facex
    assert ict_model.find_source(facex).kind == "FaceXModel"


def test_prepared_npz_wins_when_both_are_there(clean_env):
    _fake_clone(clean_env)
    prep = clean_env / "ict_facekit"
    prep.mkdir()
    for name in ("ict_facekit_light.npz", "generic_neutral_mesh.obj", "LICENSE"):
        (prep / name).write_bytes(b"x")
    assert ict_model.find_source().kind == "prepared"


def test_nothing_there_says_what_and_how(clean_env):
    with pytest.raises(assets.AssetMissingError) as e:
        ict_model.load_default()
    msg = str(e.value)
    for part in ("ict_facekit_light.npz", "ICT-FaceKit/FaceXModel",
                 "git clone https://github.com/ICT-VGL/ICT-FaceKit", "checkout da5f95a",
                 "FACERECON_ASSETS", str(clean_env)):
        assert part in msg, (part, msg)


def test_incomplete_folder_names_the_missing_files(clean_env):
    _fake_clone(clean_env)
    facex = clean_env / "ICT-FaceKit" / "FaceXModel"
    (facex / "browDown_L.obj").unlink()
    (facex / "identity000.obj").unlink()
    (clean_env / "ICT-FaceKit" / "LICENSE").unlink()
    with pytest.raises(assets.AssetMissingError) as e:
        ict_model.load_default()
    msg = str(e.value)
    for part in ("browDown_L.obj", "identity000.obj", "LICENSE", "da5f95a", "FACERECON_ASSETS"):
        assert part in msg, (part, msg)
    assert "jawOpen.obj" not in msg


def test_mixed_vertex_counts_are_refused(clean_env):
    neutral, _, _ = _fake_clone(clean_env)
    facex = clean_env / "ICT-FaceKit" / "FaceXModel"
    _write_obj(facex / "identity001.obj", neutral[:-1])
    with pytest.raises(face_model.FaceModelError, match=r"identity001\.obj: 79 vertices"):
        ict_model.read_facex_folder(facex)


_REAL = assets.assets_dir() / "ict_facekit"


@pytest.mark.skipif(not (_REAL / "ict_facekit_light.npz").exists(),
                    reason="needs the prepared ICT assets")
def test_real_mesh_obj_folder_and_npz_give_the_same_model(tmp_path, monkeypatch):
    """On the real neutral mesh, vertex_indices.json and LICENSE: a FaceXModel folder whose OBJs
    carry the npz's first 3 identity and 3 expression deltas, and a prepared folder with the same
    modes, convert to the same model (N_ID and N_TEX made small to keep this fast)."""
    monkeypatch.setenv(assets.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(ict_model, "N_ID", 3)
    monkeypatch.setattr(ict_model, "N_TEX", 3)
    real = np.load(_REAL / "ict_facekit_light.npz")
    cfg = json.loads((_REAL / "vertex_indices.json").read_text())
    names = cfg["expressions"][:3]
    n = 3
    # the real OBJ's vertices are the npz's neutral; the json's landmarks and order are the npz's
    obj_neutral = ict_model.read_obj_vertices(_REAL / "generic_neutral_mesh.obj")
    np.testing.assert_allclose(obj_neutral, real["neutral"], atol=1e-5)
    np.testing.assert_array_equal(np.asarray(cfg["idx_to_landmark_verts"]), real["landmarks68"])
    assert [str(x) for x in real["expression_names"]] == cfg["expressions"]

    facex = tmp_path / "ICT-FaceKit" / "FaceXModel"
    facex.mkdir(parents=True)
    (facex / "generic_neutral_mesh.obj").symlink_to(_REAL / "generic_neutral_mesh.obj")
    (tmp_path / "ICT-FaceKit" / "LICENSE").symlink_to(_REAL / "LICENSE")
    (facex / "vertex_indices.json").write_text(json.dumps(dict(cfg, expressions=names)))

    def write_v(path, verts):
        with open(path, "w") as f:
            np.savetxt(f, verts, fmt="v %.6f %.6f %.6f")
    for k in range(n):
        write_v(facex / f"identity{k:03d}.obj", obj_neutral + real["identity_deltas"][k])
    for k, name in enumerate(names):
        write_v(facex / f"{name}.obj", obj_neutral + real["expression_deltas"][k])

    prep = tmp_path / "prepared"
    prep.mkdir()
    np.savez(prep / "ict_facekit_light.npz", neutral=real["neutral"],
             identity_deltas=real["identity_deltas"][:n],
             expression_deltas=real["expression_deltas"][:n],
             expression_names=real["expression_names"][:n], landmarks68=real["landmarks68"])
    for name in ("generic_neutral_mesh.obj", "LICENSE"):
        (prep / name).symlink_to(_REAL / name)

    from_obj = ict_model.convert(tmp_path / "ICT-FaceKit")
    from_npz = ict_model.convert(prep)
    assert "identityNNN.obj" in from_obj.info["source"]
    for k in face_model.ARRAY_KEYS:
        a, b = np.asarray(getattr(from_obj, k)), np.asarray(getattr(from_npz, k))
        if np.issubdtype(a.dtype, np.floating):
            np.testing.assert_allclose(a, b, atol=2e-6, err_msg=k)
        else:
            np.testing.assert_array_equal(a, b, err_msg=k)
    assert from_obj.info["expression_names"] == names
