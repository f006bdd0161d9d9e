"""Closed-form checks of facerecon_jax.geometry.metrics (decimetre meshes, millimetre metrics)."""
import numpy as np
import pytest
import trimesh
from scipy.spatial.transform import Rotation

from facerecon_jax.geometry import metrics


def _rot(rotvec):
    return Rotation.from_rotvec(np.asarray(rotvec, np.float64)).as_matrix()


def _height_field(n=21, extent=0.9):
    """A face-sized bumpy patch (decimetres): a 'nose' bump plus ripples, right-handed winding
    (normals towards +z). Returns (vertices, faces, index of the tip vertex)."""
    x, y = np.meshgrid(np.linspace(-extent, extent, n), np.linspace(-extent, extent, n))
    z = 0.4 * np.exp(-(x ** 2 + y ** 2) / 0.25) + 0.05 * np.sin(3 * x) * np.cos(2 * y) + 0.1 * x * y
    v = np.stack([x.ravel(), y.ravel(), z.ravel()], axis=1)
    idx = np.arange(n * n).reshape(n, n)
    a, b = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel()
    c, d = idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    faces = np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)])
    return v, faces, int(idx[n // 2, n // 2])


def _sphere(subdivisions=3, radius=1.0):
    m = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    return np.asarray(m.vertices, np.float64), np.asarray(m.faces, np.int64)


def _centroids_normals(v, f):
    return v[f].mean(axis=1), metrics.face_normals(v, f)


PLANTED = (1.37, _rot([0.3, -0.5, 0.8]), np.array([0.4, -1.2, 2.5]))


# ----------------------------------------------------------------------------- similarity
def test_similarity_transform_recovers_planted(rng):
    src = rng.normal(size=(30, 3))
    s, r, t = PLANTED
    dst = metrics.apply_similarity(src, s, r, t)
    s2, r2, t2 = metrics.similarity_transform(src, dst)
    assert s2 == pytest.approx(s, abs=1e-12)
    np.testing.assert_allclose(r2, r, atol=1e-12)
    np.testing.assert_allclose(t2, t, atol=1e-12)
    # rigid fit of a rigid motion: scale 1
    s3, r3, t3 = metrics.similarity_transform(src, metrics.apply_similarity(src, 1.0, r, t),
                                              scale=False)
    assert s3 == 1.0
    np.testing.assert_allclose(r3, r, atol=1e-12)
    np.testing.assert_allclose(t3, t, atol=1e-12)


def test_similarity_transform_never_reflects(rng):
    src = rng.normal(size=(25, 3))
    dst = src * np.array([1.0, 1.0, -1.0])            # a mirror image
    _, r, _ = metrics.similarity_transform(src, dst)
    assert np.linalg.det(r) == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)


def test_compose_and_invert_similarity(rng):
    p = rng.normal(size=(10, 3))
    a = PLANTED
    b = (0.6, _rot([-0.2, 0.1, 0.4]), np.array([0.1, 0.2, -0.3]))
    np.testing.assert_allclose(metrics.apply_similarity(p, *metrics.compose_similarity(a, b)),
                               metrics.apply_similarity(metrics.apply_similarity(p, *b), *a),
                               atol=1e-12)
    back = metrics.apply_similarity(metrics.apply_similarity(p, *a),
                                    *metrics.invert_similarity(a))
    np.testing.assert_allclose(back, p, atol=1e-12)


# ----------------------------------------------------------------------------- cropping
def test_crop_radius_matches_brute_force_including_boundary():
    # integer coordinates: squared distances are exact, so the boundary is unambiguous
    g = np.arange(-7, 8)
    pts = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    centre = (1, -2, 0)
    mask = metrics.crop_radius(pts.astype(np.float64), np.array(centre, np.float64), 5.0)
    expected = [sum((int(p[k]) - centre[k]) ** 2 for k in range(3)) <= 25 for p in pts]
    np.testing.assert_array_equal(mask, expected)
    on_boundary = [sum((int(p[k]) - centre[k]) ** 2 for k in range(3)) == 25 for p in pts]
    assert np.sum(on_boundary) > 0 and np.all(mask[on_boundary])   # e.g. centre + (3, 4, 0)
    # a non-integer radius about the origin: a point exactly at it is kept, one a float step
    # beyond is not (sqrt(x * x) == x exactly in binary floating point)
    r = 0.95
    p = np.array([[r, 0, 0], [0, np.nextafter(r, 1.0), 0], [0, 0, -r], [0.1, 0.2, 0.3]])
    np.testing.assert_array_equal(metrics.crop_radius(p, np.zeros(3), r),
                                  [True, False, True, True])


# ----------------------------------------------------------------------------- point to surface
def test_point_to_surface_plane(rng):
    v = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], np.float64)
    f = np.array([[0, 1, 2], [0, 2, 3]])                 # normals +z
    xy = rng.uniform(-0.9, 0.9, size=(50, 2))
    z = rng.uniform(-0.3, 0.3, size=50)
    pts = np.column_stack([xy, z])
    d, c, fid = metrics.point_to_surface(pts, v, f)
    np.testing.assert_allclose(d, z, atol=1e-12)
    np.testing.assert_allclose(c, np.column_stack([xy, np.zeros(50)]), atol=1e-12)
    assert set(fid.tolist()) <= {0, 1}
    du, _, _ = metrics.point_to_surface(pts, v, f, unsigned=True)
    np.testing.assert_allclose(du, np.abs(z), atol=1e-12)
    # beside the patch: point-to-plane keeps the normal component, unsigned the full distance
    out = np.array([[1.5, 0.0, 0.2], [0.0, -1.3, -0.4]])
    d, c, _ = metrics.point_to_surface(out, v, f)
    np.testing.assert_allclose(d, [0.2, -0.4], atol=1e-12)
    np.testing.assert_allclose(c, [[1.0, 0.0, 0.0], [0.0, -1.0, 0.0]], atol=1e-12)
    du, _, _ = metrics.point_to_surface(out, v, f, unsigned=True)
    np.testing.assert_allclose(du, [np.hypot(0.5, 0.2), np.hypot(0.3, 0.4)], atol=1e-12)


def test_point_to_surface_sphere_offsets():
    r = 1.2
    v, f = _sphere(3, r)
    cen, nrm = _centroids_normals(v, f)
    for dist in (0.004, -0.004):
        d, c, fid = metrics.point_to_surface(cen + dist * nrm, v, f)
        np.testing.assert_allclose(d, dist, atol=1e-12)
        np.testing.assert_allclose(c, cen, atol=1e-12)
        np.testing.assert_array_equal(fid, np.arange(len(f)))
    # radially outside a vertex of the inscribed (convex) polyhedron, at radius r + d: the
    # closest point is the vertex itself, at Euclidean distance exactly d
    dist = 0.05
    pts = v * (r + dist) / r
    du, c, _ = metrics.point_to_surface(pts, v, f, unsigned=True)
    np.testing.assert_allclose(du, dist, atol=1e-12)
    np.testing.assert_allclose(c, v, atol=1e-12)


def test_closest_points_agree_with_a_second_implementation(rng):
    """libigl's tree query against trimesh's r-tree query (another exact implementation) on a
    bumpy, non-convex surface: the same closest points and distances."""
    import trimesh

    v, f = _sphere(3, 1.0)
    v = v * (1.0 + 0.15 * np.sin(5 * v[:, :1]) * np.cos(4 * v[:, 1:2]))
    pts = rng.normal(size=(400, 3)) * 0.8
    c, fid = metrics.closest_points(pts, v, f)
    ref, ref_d, _ = trimesh.proximity.closest_point(
        trimesh.Trimesh(vertices=v, faces=f, process=False), pts)
    np.testing.assert_allclose(np.linalg.norm(pts - c, axis=1), ref_d, atol=1e-9)
    np.testing.assert_allclose(c, ref, atol=1e-7)
    # the returned face holds the returned point (barycentric coordinates in [0, 1])
    tri = v[f[fid]]
    e1, e2, w = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], c - tri[:, 0]
    g = np.stack([np.stack([np.sum(e1 * e1, 1), np.sum(e1 * e2, 1)], -1),
                  np.stack([np.sum(e1 * e2, 1), np.sum(e2 * e2, 1)], -1)], -2)
    ab = np.linalg.solve(g, np.stack([np.sum(w * e1, 1), np.sum(w * e2, 1)], -1)[..., None])
    assert ab.min() > -1e-6 and ab.sum(1).max() < 1 + 1e-6
    with pytest.raises(ValueError, match="faces index vertices"):
        metrics.closest_points(pts, v[:10], f)


# ----------------------------------------------------------------------------- ICP
def test_icp_recovers_planted_similarity_from_perturbed_init():
    v, f, _ = _height_field()
    s, r, t = PLANTED
    dst = metrics.apply_similarity(v, s, r, t)
    init = (s * 1.05, _rot([0.04, -0.03, 0.05]) @ r, t + np.array([0.03, -0.02, 0.04]))
    s2, r2, t2, hist = metrics.icp_similarity(v, dst, init=init)
    assert s2 == pytest.approx(s, abs=1e-9)
    np.testing.assert_allclose(r2, r, atol=1e-9)
    np.testing.assert_allclose(t2, t, atol=1e-9)
    assert hist[0] > 1e-4 and hist[-1] < 1e-20
    assert np.all(np.diff(hist) <= 1e-15)                  # ICP never increases the error


def test_icp_default_init():
    v, f, _ = _height_field(n=13)
    s, r, t = 0.8, _rot([0.05, 0.1, -0.08]), np.array([0.2, 0.1, -0.3])
    # default init (centroids and RMS radii, R = I) is enough for a small rotation
    s2, r2, t2, _ = metrics.icp_similarity(v, metrics.apply_similarity(v, s, r, t))
    assert s2 == pytest.approx(s, abs=1e-9)
    np.testing.assert_allclose(r2, r, atol=1e-9)
    np.testing.assert_allclose(t2, t, atol=1e-9)


def test_icp_surface_correspondences_beat_vertices_off_vertex_targets():
    # targets at the triangle centroids of a coarse mesh (15 mm apart): nearest-vertex pairs
    # bias the fit; closest-surface-point pairs remove most of the bias (point-to-point ICP
    # slides along the surface only linearly fast, so not to machine precision in 50 steps)
    v, f, _ = _height_field(n=13)
    s, r, t = 0.8, _rot([0.05, 0.1, -0.08]), np.array([0.2, 0.1, -0.3])
    dst = metrics.apply_similarity(v[f].mean(axis=1), s, r, t)
    init = (s * 0.97, _rot([0.02, 0.0, 0.03]) @ r, t + 0.01)
    sv, rv, tv, hv = metrics.icp_similarity(v, dst, init=init)
    ss, rs, ts, hs = metrics.icp_similarity(v, dst, init=(sv, rv, tv), src_faces=f)
    assert hs[-1] < hv[-1] / 100
    assert abs(ss - s) < abs(sv - s) / 5
    assert np.abs(rs - r).max() < np.abs(rv - r).max() / 3
    assert np.all(np.diff(hs) <= 1e-15)


def test_icp_trim_ignores_outliers(rng):
    v, f, _ = _height_field()
    s, r, t = PLANTED
    inliers = metrics.apply_similarity(v, s, r, t)
    outliers = metrics.apply_similarity(v[rng.choice(len(v), 40, replace=False)]
                                        + [0.0, 0.0, 0.6], s, r, t)
    dst = np.concatenate([inliers, outliers])
    init = (s * 1.03, _rot([0.02, -0.02, 0.03]) @ r, t + 0.02)
    s2, r2, t2, _ = metrics.icp_similarity(v, dst, init=init, trim=0.15)
    assert s2 == pytest.approx(s, abs=1e-9)
    np.testing.assert_allclose(r2, r, atol=1e-9)
    np.testing.assert_allclose(t2, t, atol=1e-9)
    s3, _, _, _ = metrics.icp_similarity(v, dst, init=init)  # untrimmed: pulled off
    assert abs(s3 - s) > 1e-3


# ----------------------------------------------------------------------------- MICC
def test_micc_rmse_known_offset_without_icp():
    v, f = _sphere(3, 1.0)
    cen, nrm = _centroids_normals(v, f)
    d = 0.002                                             # 0.2 mm
    sign = np.where(np.arange(len(f)) % 2 == 0, 1.0, -1.0)
    gt = cen + (d * sign)[:, None] * nrm
    nose = np.array([0.0, 0.0, 1.0])
    res = metrics.micc_rmse(v, f, gt, nose, icp=False)
    assert res["rmse_mm"] == pytest.approx(0.2, abs=1e-9)
    assert res["n_points"] == int(np.sum(np.linalg.norm(gt - nose, axis=1) <= 0.95))
    assert 0 < res["n_points"] < len(gt)
    s, r, t = res["transform"]
    assert s == 1.0 and np.all(r == np.eye(3)) and np.all(t == 0)


@pytest.mark.parametrize("use_landmarks", [True, False])
def test_micc_rmse_similarity_copy_scores_zero(use_landmarks):
    v, f, tip = _height_field()
    if use_landmarks:                                    # any pose, given correspondences
        s, r, t = PLANTED
    else:       # default init: small rotations only; the crop keeps 40% of the copy, so the
        # RMS-radius scale (0.79) is far off and only the multi-scale start finds 1.25
        s, r, t = 1.25, _rot([0.06, -0.08, 0.05]), np.array([0.3, -0.2, 0.1])
    gt = metrics.apply_similarity(v, s, r, t)
    lm = [tip, 0, 20, 440, 100, 300] if use_landmarks else None
    init = (v[lm], gt[lm]) if use_landmarks else None
    res = metrics.micc_rmse(v, f, gt, gt[tip], init_landmarks=init)
    assert res["rmse_mm"] < 1e-3
    assert res["n_points"] < len(gt)                      # the 95 mm crop removed some
    assert res["transform"][0] == pytest.approx(s, abs=1e-6)


def test_micc_rmse_surface_icp_on_off_vertex_points():
    v, f, tip = _height_field(n=13)
    s, r, t = PLANTED
    gt = metrics.apply_similarity(np.concatenate([v, v[f].mean(axis=1)]), s, r, t)
    lm = [tip, 0, 12, 160]
    # a slightly wrong initial similarity (GT landmarks moved by 1 mm)
    init = (v[lm], gt[lm] + [[0.01, 0, 0], [0, 0.01, 0], [0, 0, 0.01], [0.01, 0.01, 0]])
    vert = metrics.micc_rmse(v, f, gt, gt[tip], init_landmarks=init)
    surf = metrics.micc_rmse(v, f, gt, gt[tip], init_landmarks=init, icp_surface=True)
    assert surf["rmse_mm"] < vert["rmse_mm"] / 5
    assert abs(surf["transform"][0] - s) < abs(vert["transform"][0] - s)


# ----------------------------------------------------------------------------- NoW
def test_now_errors_copy_and_known_offset():
    v, f = _sphere(2, 0.9)
    lm = [0, 5, 11, 20, 33, 50, 70]
    s, r, t = PLANTED
    cen, nrm = _centroids_normals(v, f)
    gt_lm = metrics.apply_similarity(v[lm], s, r, t)
    # the scan is the same surface: ~0
    scan = metrics.apply_similarity(np.concatenate([v, cen]), s, r, t)
    res = metrics.now_errors(v, f, v[lm], scan, gt_lm)
    assert res["median_mm"] < 1e-3 and res["mean_mm"] < 1e-3
    # scan points d off the faces (both sides): every distance is s * d
    d = 0.003
    sign = np.where(np.arange(len(f)) % 3 == 0, -1.0, 1.0)
    scan = metrics.apply_similarity(cen + (d * sign)[:, None] * nrm, s, r, t)
    res = metrics.now_errors(v, f, v[lm], scan, gt_lm)
    np.testing.assert_allclose(res["distances_mm"], s * d * 100.0, atol=1e-9)
    assert res["median_mm"] == pytest.approx(s * d * 100.0, abs=1e-9)
    assert res["std_mm"] == pytest.approx(0.0, abs=1e-9)


def test_now_landmark_indices():
    assert metrics.NOW_LANDMARKS_68 == (36, 39, 42, 45, 33, 48, 54)


# ----------------------------------------------------------------------------- 2D landmarks
def test_landmark_nme_uniform_shift(rng):
    gt = rng.uniform(0, 200, size=(68, 2))
    iod = 80.0
    gt[36] = [60.0, 90.0]
    gt[45] = [60.0 + iod * 0.6, 90.0 + iod * 0.8]
    k = 3.0
    shift = k * np.array([np.cos(0.7), np.sin(0.7)])
    assert metrics.landmark_nme(gt + shift, gt) == pytest.approx(k / iod, rel=1e-12)
    assert metrics.landmark_nme(gt, gt) == 0.0
    batch_gt = np.stack([gt, gt * 2.0])                   # second face: iod 160
    batch_pred = batch_gt + shift
    np.testing.assert_allclose(metrics.landmark_nme(batch_pred, batch_gt),
                               [k / iod, k / (2 * iod)], rtol=1e-12)


def test_cumulative_error_curve():
    curve = metrics.cumulative_error_curve([1.0, 2.0, 2.0, 3.0], [0.0, 1.0, 2.0, 2.5, 3.0, 4.0])
    np.testing.assert_allclose(curve, [0.0, 0.25, 0.75, 0.75, 1.0, 1.0])
