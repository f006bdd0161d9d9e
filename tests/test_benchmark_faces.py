"""Benchmark heads: whole ICT heads beyond the fitting model, their scans, and the model floor."""
import numpy as np
import pytest

from facerecon_jax.eval import benchmark_faces as bf
from facerecon_jax.eval import evaluation
from facerecon_jax.training import synthetic


@pytest.fixture(scope="module")
def head():
    return bf.load_head()


def test_head_parts_and_frame(head, default_model):
    assert head.neutral.shape == (bf.N_HEAD_VERTICES, 3)
    assert head.id_deltas.shape[0] == 100 and head.exp_deltas.shape[0] == default_model.n_exp
    assert head.triangles.max() < bf.N_HEAD_VERTICES
    # the face area is the default model's mesh, in the same frame
    np.testing.assert_array_equal(head.scan_triangles, np.asarray(default_model.triangles))
    np.testing.assert_allclose(head.neutral[:bf.SCAN_VERTICES],
                               np.asarray(default_model.mean_shape), atol=1e-5)
    np.testing.assert_array_equal(head.landmarks, np.asarray(default_model.landmarks))


def test_person_detail_and_scan(head):
    rng = np.random.default_rng(0)
    p = bf.make_person(head, rng, detail_mm=2.0)
    rms = np.sqrt(np.mean(np.sum(p.detail[:bf.SCAN_VERTICES] ** 2, 1))) * 100
    assert abs(rms - 2.0) < 1e-3
    scan = bf.person_scan(head, p)
    expected = (head.neutral + (p.id_coeffs @ head.id_deltas.reshape(100, -1)).reshape(-1, 3)
                + p.detail)[:bf.SCAN_VERTICES]
    np.testing.assert_allclose(scan, expected, atol=1e-5)
    assert p.albedo.shape == head.neutral.shape and 0 <= p.albedo.min() <= p.albedo.max() <= 1


def test_albedo_without_brows_or_lips_changes_only_them(head):
    """The realism ablation's switches: the same person (same draws) with the brows' or the
    lips' colour left out differs visibly (by more than one 8-bit level) only near the brow or
    the lip landmarks (each colour falls off as a Gaussian of 0.045 / 0.035 face heights)."""
    def person(**options):
        return bf.make_person(head, np.random.default_rng(5), **options)
    full, no_brows, no_lips = person(), person(with_brows=False), person(with_lips=False)
    np.testing.assert_array_equal(full.id_coeffs, no_lips.id_coeffs)
    np.testing.assert_array_equal(full.detail, no_brows.detail)
    shape = bf.person_neutral(head, full)
    lm = shape[head.landmarks]
    face_h = float(lm[36:48, 1].mean() - lm[8, 1])
    for other, points in ((no_brows, lm[17:27]), (no_lips, lm[48:60])):
        changed = np.any(np.abs(other.albedo - full.albedo) > 1 / 255, axis=1)
        near = np.min(np.linalg.norm(shape[:, None] - points[None], axis=-1), axis=1)
        assert changed.sum() > 50
        assert near[changed].max() < 0.2 * face_h, near[changed].max() / face_h


def test_lips_fill_the_vermilion_and_stop_at_the_outer_contour(head):
    """The lips' colour covers the red of the lips, between the outer contour (48-59) and the
    inner one (60-67), and ends at the outer contour: a band centred on the outer contour (the
    old albedo) left the vermilion by the mouth opening skin-coloured and coloured skin outside."""
    person = bf.make_person(head, np.random.default_rng(3))
    shape = bf.person_neutral(head, person)
    lm = shape[head.landmarks]
    face_h = float(lm[36:48, 1].mean() - lm[8, 1])
    w = bf._lips(shape, lm, face_h)
    face = shape[:bf.SCAN_VERTICES]

    def nearest(point):
        return int(np.argmin(np.linalg.norm(face - point, axis=1)))

    # the middle of the vermilion, upper and lower lip
    for outer, inner in ((50, 61), (51, 62), (52, 63), (56, 65), (57, 66), (58, 67)):
        assert w[nearest((lm[outer] + lm[inner]) / 2)] > 0.99, (outer, inner)
    # skin 3 mm (0.03 dm) outside the outer contour, above the upper lip and below the lower
    # (the old band was ~0.7 there)
    for outer, up in ((51, 1.0), (57, -1.0)):
        assert w[nearest(lm[outer] + np.array([0.0, up * 0.03, 0.0]))] < 0.05, outer
    # every coloured vertex lies on the lips or within ~2 mm of them
    coloured = np.flatnonzero(w[:bf.SCAN_VERTICES] > 0.05)
    lip_pts = np.concatenate([lm[48:68], (lm[48:60] + lm[[60, 61, 61, 62, 63, 63, 64, 65, 65, 66,
                                                          67, 67]]) / 2])
    d = np.min(np.linalg.norm(face[coloured][:, None] - lip_pts[None], axis=-1), axis=1)
    assert len(coloured) > 30 and d.max() < 0.1 * face_h, (len(coloured), d.max() / face_h)


def test_model_floor_recovers_an_in_model_face_and_not_the_detail(head, default_model):
    m = default_model
    rng = np.random.default_rng(1)
    ids = rng.normal(size=m.n_id).astype(np.float32)
    inside = evaluation.neutral_mesh(m, ids)
    moved = 1.05 * inside @ np.array([[0.99, -0.14, 0], [0.14, 0.99, 0], [0, 0, 1]]).T + 0.2
    f = evaluation.model_floor(m, moved)
    # (the coefficients are not unique: blendshapes and the alignment's scale can stand in for
    # some identity; the surface is)
    fitted = evaluation.neutral_mesh(m, f["id"], f["exp"])
    # (alternating alignment and least squares converges slowly in scale: a tenth of a mm is left
    # after the 6 rounds, a tenth of the mean face's error)
    mean_face = evaluation.neutral_mesh(m, np.zeros(m.n_id))
    in_model = evaluation.score_mesh(m, fitted, moved)["rmse_mm"]
    mean_err = evaluation.score_mesh(m, mean_face, moved)["rmse_mm"]
    assert in_model < 0.2 and in_model < 0.15 * mean_err
    # a benchmark person: the 20 modes the model drops and the detail stay out of reach
    person = bf.make_person(head, rng, detail_mm=2.0)
    scan = bf.person_scan(head, person)
    floor = evaluation.model_floor(m, scan)
    err = evaluation.score_mesh(m, evaluation.neutral_mesh(m, floor["id"]), scan)["rmse_mm"]
    mean = evaluation.score_mesh(m, evaluation.neutral_mesh(m, np.zeros(m.n_id)), scan)["rmse_mm"]
    assert 0.2 < err < 0.6 * mean, (err, mean)


def test_pictures_show_the_face_where_the_landmarks_are(head):
    rng = np.random.default_rng(2)
    person = bf.make_person(head, rng)
    size = 160
    views = {"exp": np.zeros((2, len(head.exp_names)), np.float32),
             "angles": np.radians([[0, 0, 0], [5, 30, 0]]).astype(np.float32),
             "gamma": np.stack([synthetic.sample_light(rng, synthetic.CONDITIONS["indoor"],
                                                       "rgb") for _ in range(2)]),
             "trans": np.zeros((2, 3), np.float32),
             "background": np.zeros((2, size, size, 3), np.float32)}
    views["trans"][:, 2] = -6.0            # closer to the camera: the head fills the picture
    pics = bf.render_pictures(head, person, views, size, rng, noise=0.0, blur=0.0)
    assert pics["image"].shape == (2, size, size, 3)
    for i in range(2):
        lm = np.round(pics["landmarks"][i]).astype(int)
        inside = (lm >= 0).all(1) & (lm < size).all(1)
        assert inside.all()
        assert pics["face_mask"][i][lm[:, 1], lm[:, 0]].mean() > 0.95
        # screen holds the face area's projected vertices: the landmarks are among them
        np.testing.assert_allclose(pics["screen"][i][head.landmarks, :2], pics["landmarks"][i],
                                   atol=1e-4)
        # and undone, they are the head's landmark vertices posed by the view's rotation and
        # translation (R = Rz Ry Rx, here with no roll)
        (cx, cy), (sx, sy) = np.cos(views["angles"][i, :2]), np.sin(views["angles"][i, :2])
        rot = (np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
               @ np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]]))
        posed = bf.person_neutral(head, person)[head.landmarks] @ rot.T + views["trans"][i]
        np.testing.assert_allclose(bf.world_points(pics["screen"][i][head.landmarks], size),
                                   posed, atol=2e-4)
    # the eyes are drawn (dark pupils between the eye corners), not holes onto the background
    lm = pics["landmarks"][0]
    centre = np.round(lm[36:42].mean(0)).astype(int)
    assert pics["face_mask"][0][centre[1], centre[0]] == 1
