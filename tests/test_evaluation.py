"""The benchmark's scoring: the truth scores ~0, the mean face does not, and the multi-image
methods recover planted people."""
import jax
import numpy as np

from facerecon_jax.eval import evaluation
from facerecon_jax.geometry.coefficients import CoeffLayout


def test_truth_scores_zero_and_mean_face_does_not(default_model):
    m = default_model
    rng = np.random.default_rng(5)
    gt = evaluation.neutral_mesh(m, rng.normal(size=m.n_id))
    assert evaluation.score_mesh(m, gt, gt)["rmse_mm"] < 1e-3
    # a similarity-moved copy is aligned away by ICP
    moved = 1.1 * gt @ np.array([[0.98, -0.2, 0], [0.2, 0.98, 0], [0, 0, 1]]).T + 0.3
    assert evaluation.score_mesh(m, moved, gt)["rmse_mm"] < 0.05
    mean = evaluation.neutral_mesh(m, np.zeros(m.n_id))
    assert evaluation.score_mesh(m, mean, gt)["rmse_mm"] > 0.5
    err = evaluation.per_vertex_error(m, mean, gt)
    assert err.shape == (m.n_vertices,) and err.max() > 0


def test_per_vertex_error_is_the_planted_displacement_in_mm(default_model):
    """Displace 40 vertices by known lengths (mm), move the mesh by a known similarity: the
    per-vertex error is the planted length there and ~0 elsewhere (the 40 vertices barely move
    the all-vertex alignment)."""
    m = default_model
    rng = np.random.default_rng(5)
    gt = evaluation.neutral_mesh(m, rng.normal(size=m.n_id)).astype(np.float64)
    idx = rng.choice(m.n_vertices, 40, replace=False)
    dirs = rng.normal(size=(40, 3))
    lengths = rng.uniform(0.5, 3.0, 40)                        # mm
    planted = np.zeros(m.n_vertices)
    planted[idx] = lengths
    d = np.zeros_like(gt)
    d[idx] = dirs / np.linalg.norm(dirs, axis=1, keepdims=True) * lengths[:, None] / 100.0
    c, s = np.cos(0.3), np.sin(0.3)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ np.array([[1, 0, 0], [0, c, s],
                                                                    [0, -s, c]])
    pred = 1.1 * (gt + d) @ rot.T + np.array([0.3, -0.2, 0.1])
    err = evaluation.per_vertex_error(m, pred, gt)
    assert err.shape == (m.n_vertices,)
    np.testing.assert_allclose(err, planted, atol=0.03)


def test_multi_image_methods_recover_planted_people():
    layout = CoeffLayout(6, 3, 4, "mono")
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(3, layout.size)).astype(np.float32) * 3
    person = np.repeat(np.arange(3), 5)
    x = truth[person] + rng.normal(size=(15, layout.size)).astype(np.float32) * 0.05
    out = evaluation.aggregate_people(layout, x, person, 3, jax.random.PRNGKey(0))
    ids = layout.slices()["id"]
    for name, vecs in out.items():
        np.testing.assert_allclose(vecs[:, ids], truth[:, ids], atol=0.1, err_msg=name)


def test_ablation_rows_fit_their_own_landmark_source(monkeypatch):
    """A row naming another landmark source is fitted on that source's detections (detected once
    per source), the true-landmark row on the truth; every row scores every condition."""
    import ml_collections

    from facerecon_jax.io import config_files
    from facerecon_jax.photo import detection

    made = []
    real = detection.FaceDetector

    def recording(*args, **kwargs):
        made.append(kwargs.get("landmarks", "mesh"))
        return real(*args, **kwargs)
    monkeypatch.setattr(evaluation.detection, "FaceDetector", recording)
    cfg = config_files.packaged("evaluate")
    cfg.fit.steps_landmark, cfg.fit.steps = 3, 2
    cfg.conditions = ("cooperative",)
    cfg.ablation_people, cfg.ablation_images = 1, 1
    cfg.ablations = ml_collections.ConfigDict({
        "defaults": {}, "dlib": {"landmarks": "dlib"}, "dlib again": {"landmarks": "dlib",
                                                                      "prior_scale": 3.0},
        "truth": {"true_landmarks": True}})
    out = evaluation.run_ablation(cfg, log=lambda *_: None)
    assert made.count("dlib") == 1 and made.count("mesh") >= 1
    for name in ("defaults", "dlib", "dlib again", "truth"):
        assert np.isfinite(out["rows"][name]["cooperative"])
    assert out["rows"]["dlib"]["cooperative"] != out["rows"]["defaults"]["cooperative"]
