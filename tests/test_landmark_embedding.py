"""Learned landmark embedding: planted correspondences are recovered, the map picks vertices by
yaw, and the shipped map belongs to the default model only."""
import jax.numpy as jnp
import numpy as np

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
    screen = jnp.asarray(np.random.default_rng(0).normal(size=(3, 200, 3)))
    np.testing.assert_allclose(np.asarray(m.project(screen, angles)),
                               np.take_along_axis(np.asarray(screen)[..., :2], v[..., None],
                                                  axis=1))


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
