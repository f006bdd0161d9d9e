"""Learned landmark embedding: planted correspondences are recovered, the map picks vertices by
yaw, and the shipped map belongs to the default model only."""
import json

import jax.numpy as jnp
import numpy as np
import pytest

from facerecon_jax.fit import landmark_embedding as le


def _planted(rng, n_pictures=60):
    v = 400
    rest = rng.uniform(-1, 1, size=(v, 3))
    model_lm = rng.choice(v, 68, replace=False)
    # the detector's point k is another vertex near the model's landmark vertex; contour
    # points (0-16) move with the yaw: one planted vertex per yaw bin
    edges = np.radians([-15.0, 15.0])

    def near(k, r):
        d = np.linalg.norm(rest - rest[model_lm[k]], axis=1)
        cand = np.nonzero((d < r) & (d > 0))[0]
        return int(rng.choice(cand)) if len(cand) else int(model_lm[k])
    truth_static = np.array([near(k, 0.3) for k in range(68)])
    truth_contour = np.array([[near(k, 0.5) for k in range(17)] for _ in range(3)])
    yaws = np.radians(rng.uniform(-40, 40, n_pictures))
    bins = np.searchsorted(edges, yaws)
    screens = np.zeros((n_pictures, v, 2))
    dets = np.zeros((n_pictures, 68, 2))
    for i in range(n_pictures):
        c, s = np.cos(yaws[i]), np.sin(yaws[i])
        p = rest @ np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]).T
        screens[i] = 100 * p[:, :2] + 150
        idx = truth_static.copy()
        idx[:17] = truth_contour[bins[i]]
        dets[i] = screens[i, idx] + rng.normal(scale=0.5, size=(68, 2))
    # make the inter-ocular distance sane whatever vertices 36 and 45 are
    dets[:, 36] = dets[:, 36] * 0 + [100, 100]
    dets[:, 45] = dets[:, 45] * 0 + [200, 100]
    return dict(rest=rest, model_lm=model_lm, edges=edges, yaws=yaws, screens=screens,
                dets=dets, truth_static=truth_static, truth_contour=truth_contour)


def test_learn_map_recovers_planted_vertices(rng):
    p = _planted(rng)
    out = le.learn_map(p["dets"], p["screens"], np.ones(p["screens"].shape[:2], bool),
                       p["yaws"], p["model_lm"], p["rest"], p["edges"])
    inner = [k for k in range(17, 68) if k not in (36, 45)]
    np.testing.assert_array_equal(out["static"][inner], p["truth_static"][inner])
    np.testing.assert_array_equal(out["contour"], p["truth_contour"])
    # the static contour is the frontal bin's
    np.testing.assert_array_equal(out["static"][:17], p["truth_contour"][1])


def test_hidden_vertices_are_not_chosen(rng):
    p = _planted(rng)
    visible = np.ones(p["screens"].shape[:2], bool)
    k = 30
    visible[:, p["truth_static"][k]] = False     # the planted vertex is never seen
    out = le.learn_map(p["dets"], p["screens"], visible, p["yaws"], p["model_lm"], p["rest"],
                       p["edges"])
    assert out["static"][k] != p["truth_static"][k]


def test_map_vertices_follow_the_yaw():
    m = le.LandmarkMap(static=jnp.arange(68, dtype=jnp.int32) + 100,
                       contour=jnp.asarray(np.arange(3 * 17).reshape(3, 17), jnp.int32),
                       yaw_edges=jnp.radians(jnp.array([-15.0, 15.0])))
    angles = jnp.radians(jnp.array([[0.0, -30.0, 0.0], [0.0, 0.0, 0.0], [0.0, 40.0, 0.0]]))
    v = np.asarray(m.vertices(angles))
    for b in range(3):
        np.testing.assert_array_equal(v[b, :17], np.arange(17) + 17 * b)
        np.testing.assert_array_equal(v[b, 17:], np.arange(17, 68) + 100)
    # without offsets a landmark is its vertex's projection
    from facerecon_jax.geometry import camera as cam
    posed = jnp.asarray(np.random.default_rng(0).normal(size=(3, 200, 3)), jnp.float32)
    screen = np.asarray(cam.to_screen(posed, cam.Camera()))
    rot = cam.euler_rotation(angles)
    np.testing.assert_allclose(np.asarray(m.locate(posed, rot, angles, cam.Camera())),
                               np.take_along_axis(screen[..., :2], v[..., None], axis=1),
                               rtol=1e-5)


def test_shipped_map_is_for_the_default_model_only(default_model, small_grid):
    m = le.for_model(default_model)
    assert m is not None and m.static.shape == (68,)
    assert int(m.static.max()) < default_model.n_vertices
    assert le.for_model(small_grid) is None
    text = le.to_json(m, {"n": 1})
    back, info = le.from_json(text)
    np.testing.assert_array_equal(np.asarray(back.contour), np.asarray(m.contour))
    np.testing.assert_allclose(np.asarray(back.yaw_edges), np.asarray(m.yaw_edges), atol=1e-6)
    assert info == {"n": 1}


def test_learn_offsets_recovers_planted_offsets(rng):
    """Heads posed at yaws over +-50 degrees, the detector's point k at a planted 3D offset from
    landmark vertex k in the head's frame (the contour's by yaw bin), pixel noise on top, and a
    few failed detections far away: `learn_offsets` finds the offsets (depth included, which
    only the turning heads reveal) and the residual falls to the noise."""
    from facerecon_jax.geometry import camera as cam

    n = 480
    camera = cam.Camera(focal=1015.0, cx=150.0, cy=150.0, width=300, height=300)
    face = rng.uniform(-0.5, 0.5, (68, 3)) * [1.0, 1.2, 0.3]
    face[36], face[45] = [-0.45, 0.3, 0.0], [0.45, 0.3, 0.0]
    edges = np.radians([-20.0, 20.0])
    off = rng.normal(0, 0.03, (68, 3))
    contour_off = rng.normal(0, 0.03, (3, 17, 3))
    angles = np.radians(np.stack([rng.uniform(-10, 10, n), rng.uniform(-50, 50, n),
                                  rng.uniform(-8, 8, n)], 1))
    rot = np.asarray(cam.euler_rotation(jnp.asarray(angles)), np.float64)
    trans = np.stack([rng.uniform(-0.1, 0.1, n), rng.uniform(-0.1, 0.1, n),
                      rng.uniform(-0.5, 0.5, n)], 1)
    world = np.einsum("nij,kj->nki", rot, face) + trans[:, None]
    bins = np.searchsorted(edges, angles[:, 1])
    moved = np.broadcast_to(off, (n, 68, 3)).copy()
    moved[:, :17] = contour_off[bins]
    det = np.asarray(cam.to_screen(jnp.asarray(world + np.einsum("nij,nkj->nki", rot, moved)),
                                   camera))[..., :2]
    det = det + rng.normal(0, 0.5, det.shape)
    det[:5, 50] += 200.0                               # failed detections
    out = le.learn_offsets(det, world, rot, camera, angles[:, 1], edges, prior_sd=0.05,
                           noise_px=0.5)
    np.testing.assert_allclose(out["offset"][17:], off[17:], atol=0.004)
    # a yaw bin sees depth and sideways offsets through nearly one direction: less exact
    np.testing.assert_allclose(out["contour_offset"], contour_off, atol=0.008)
    np.testing.assert_allclose(out["offset"][:17], out["contour_offset"][1])  # frontal bin
    assert np.mean(out["after"]) < 0.3 * np.mean(out["before"])
    assert np.max(out["after"]) < 0.01                  # 0.5 px noise over ~95 px IOD


def test_noise_by_yaw_recovers_a_planted_growth_of_the_scatter(rng):
    """Residuals whose scatter is planted as 0.05 (1 + (|yaw| / 30 deg)^2) inter-ocular
    distances, plus failed points beyond the cap: `noise_by_yaw` returns each 10-degree bin's
    RMS over the inner points (failures left out) and its ratio to the frontal bin's; the
    shipped calibration holds such knots, growing with yaw, and the fit config reads them."""
    from facerecon_jax.fit import fitting

    n = 20000
    yaw = np.radians(rng.uniform(-50, 50, n))
    sd = 0.05 * (1 + (np.degrees(yaw) / 30.0) ** 2)
    r = rng.normal(0, 1, (n, 68, 2)) * sd[:, None, None] / np.sqrt(2)
    r[:50, 30] = 5.0                                    # failed points: left out
    out = le.noise_by_yaw(r, yaw, bin_degrees=10.0, cap=1.5)
    assert out["yaw_deg"] == [5.0, 15.0, 25.0, 35.0, 45.0]
    expect = np.array([np.sqrt(np.mean((0.05 * (1 + (rng.uniform(lo, lo + 10, 200000) / 30)
                                                     ** 2)) ** 2)) for lo in range(0, 50, 10)])
    np.testing.assert_allclose(out["rms"], expect, rtol=0.03)
    np.testing.assert_allclose(out["ratio"], expect / expect[0], rtol=0.03)
    shipped = le.detector_noise_by_yaw()
    assert shipped[0] == (5.0, 1.0) and shipped[-1][1] > 1.5
    assert all(b[1] > a[1] for a, b in zip(shipped, shipped[1:]))
    assert fitting.landmark_noise_by_yaw(True) == shipped
    assert fitting.landmark_noise_by_yaw(False) == ()


def test_error_covariance_recovers_a_planted_covariance(rng):
    """Residuals drawn from a known covariance (a shared shift of every point on top of
    independent scatter): the estimate is that covariance moved `shrink` of the way towards
    its diagonal; a failed point counts as an error of the cap's length, not its own."""
    shift = np.tile([0.0, 1.0], 68)
    cov = np.diag(rng.uniform(0.02, 0.06, 136) ** 2) + 0.03 ** 2 * np.outer(shift, shift)
    r = rng.multivariate_normal(np.zeros(136), cov, 40000).reshape(-1, 68, 2)
    est = le.error_covariance(r, cap=10.0, shrink=0.2)
    expect = 0.8 * cov + 0.2 * np.diag(np.diag(cov))
    assert np.abs(est - expect).max() < 0.06 * np.abs(cov).max()
    failed = np.zeros((2, 68, 2))
    failed[0, 5] = [3.0, 4.0]                            # 5 IOD away: counted as 0.3
    est = le.error_covariance(failed, cap=0.3, shrink=0.0)
    np.testing.assert_allclose(est[10:12, 10:12], np.outer([0.18, 0.24], [0.18, 0.24]) / 2)
    assert np.count_nonzero(est) == 4


def test_shipped_offsets_are_for_the_default_model_only(default_model, small_grid):
    """The shipped offsets map: the default model's own landmark vertices, offsets of a few mm
    (a face's landmarks, not a wrong file), and a round trip through its JSON."""
    m = le.for_model(default_model, le.OFFSETS_FILE)
    assert m is not None and m.offset.shape == (68, 3)
    np.testing.assert_array_equal(np.asarray(m.static), np.asarray(default_model.landmarks))
    assert m.contour_offset.shape == (len(m.yaw_edges) + 1, 17, 3)
    mm = 100 * np.linalg.norm(np.asarray(m.offset), axis=-1)
    assert 1.0 < np.median(mm) < 20.0 and mm.max() < 40.0
    assert le.for_model(small_grid, le.OFFSETS_FILE) is None
    from facerecon_jax.fit import fitting
    assert fitting.landmark_map_for(default_model, "calibrated").offset is not None
    assert fitting.landmark_map_for(default_model, "learned").offset is None
    with pytest.raises(ValueError, match="'calibrated'"):
        fitting.landmark_map_for(default_model, "offsets")
    back, _ = le.from_json(le.to_json(m, {}))
    np.testing.assert_allclose(np.asarray(back.contour_offset), np.asarray(m.contour_offset),
                               atol=1e-6)
    # the detector's error covariance about these points: positive definite, the jaw
    # contour's scatter the largest, and a round trip through the file's JSON
    cov = le.detector_covariance()
    assert cov.shape == (136, 136) and np.linalg.eigvalsh(cov)[0] > 0
    point_var = np.diag(cov).reshape(68, 2).sum(1)
    assert point_var[:17].mean() > point_var[17:].mean()
    assert 0.03 < np.sqrt(np.median(point_var)) < 0.2     # inter-ocular distances
    text = le.to_json(m, {}, cov)
    np.testing.assert_allclose(json.loads(text)["noise_covariance"], cov, atol=1e-8)
    assert fitting.landmark_noise("covariance")["lan_covariance"] == tuple(cov.reshape(-1))


def test_each_landmark_source_has_its_own_calibration(default_model):
    """The face mesh's points and dlib's are calibrated apart (`landmark_embedding.files`):
    the fitting's noise, yaw scatter and offsets come from the config's source, and the mesh's
    points, measured closer to the faces' true landmarks, carry less scatter than dlib's."""
    from facerecon_jax.fit import fitting
    mesh_map, mesh_off = le.files("mesh")
    dlib_map, dlib_off = le.files("dlib")
    assert (le.DEFAULT_FILE, le.OFFSETS_FILE) == (mesh_map, mesh_off)
    for path in (mesh_map, mesh_off, dlib_map, dlib_off):
        assert path.is_file()
    for source, (map_file, off_file) in (("mesh", (mesh_map, mesh_off)),
                                         ("dlib", (dlib_map, dlib_off))):
        # (dlib's files predate the field)
        for path in (map_file, off_file):
            assert json.loads(path.read_text())["info"].get("landmarks", "dlib") == source
        assert fitting.landmark_noise("calibrated", source)["lan_noise"] == tuple(
            le.detector_noise(map_file))
        assert fitting.landmark_noise_by_yaw(True, source) == le.detector_noise_by_yaw(off_file)
        got = fitting.landmark_map_for(default_model, "calibrated", source)
        np.testing.assert_array_equal(np.asarray(got.offset),
                                      np.asarray(le.for_model(default_model, off_file).offset))
    mesh_noise, dlib_noise = le.detector_noise(mesh_map), le.detector_noise(dlib_map)
    assert np.median(mesh_noise[17:]) < 0.75 * np.median(dlib_noise[17:])
    with pytest.raises(ValueError, match="landmarks must be one of"):
        le.files("sift")
