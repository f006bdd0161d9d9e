import jax.numpy as jnp
import numpy as np
import pytest

from facerecon_jax.fit import losses


def test_photometric_is_attention_weighted_mean_of_l2(rng):
    img = rng.uniform(size=(2, 5, 6, 3)).astype(np.float32)
    tgt = rng.uniform(size=(2, 5, 6, 3)).astype(np.float32)
    region = (rng.uniform(size=(2, 5, 6)) > 0.3).astype(np.float32)
    att = rng.uniform(size=(2, 5, 6)).astype(np.float32)
    got = np.asarray(losses.photometric(jnp.asarray(img), jnp.asarray(tgt), jnp.asarray(region),
                                        jnp.asarray(att), eps=0.0))
    for b in range(2):
        a = region[b] * att[b]
        d = np.linalg.norm(img[b] - tgt[b], axis=-1)
        np.testing.assert_allclose(got[b], (a * d).sum() / a.sum(), rtol=1e-5)


def test_squared_photometric_kernel_pulls_as_the_distance_at_the_mean_distance(rng):
    """kernel "squared": sum A d^2 / (2 m sum A), m the attention-weighted mean distance; its
    gradient on a pixel is d / m times the distance kernel's (equal at d = m, finite
    differences of the value with m held), and anything else is refused."""
    import jax

    img = rng.uniform(size=(2, 5, 6, 3)).astype(np.float32)
    tgt = rng.uniform(size=(2, 5, 6, 3)).astype(np.float32)
    region = (rng.uniform(size=(2, 5, 6)) > 0.3).astype(np.float32)
    att = rng.uniform(size=(2, 5, 6)).astype(np.float32)
    args = (jnp.asarray(tgt), jnp.asarray(region), jnp.asarray(att))
    got = np.asarray(losses.photometric(jnp.asarray(img), *args, eps=0.0, kernel="squared"))
    d = np.linalg.norm(img - tgt, axis=-1).astype(np.float64)
    a = region * att
    m = (a * d).sum((1, 2)) / a.sum((1, 2))
    np.testing.assert_allclose(got, (a * d ** 2).sum((1, 2)) / (2 * m * a.sum((1, 2))),
                               rtol=1e-5)

    def grad(kernel):
        f = lambda x: jnp.sum(losses.photometric(x, *args, kernel=kernel))  # noqa: E731
        return np.asarray(jax.grad(f)(jnp.asarray(img)), np.float64)
    g_sq, g_d = grad("squared"), grad("distance")
    on = a > 0.05
    ratio = np.linalg.norm(g_sq, axis=-1)[on] / np.linalg.norm(g_d, axis=-1)[on]
    np.testing.assert_allclose(ratio, (d / m[:, None, None])[on], rtol=1e-3)
    with pytest.raises(ValueError, match="kernel"):
        losses.photometric(jnp.asarray(img), *args, kernel="cauchy")


def test_landmark_openings_ignore_a_shift_of_every_point_and_see_an_eye_closing():
    """Moving all detected points together costs nothing; closing the right eye by lowering its
    upper lid points 37 and 38 by 3 px costs 2 x 9 / 7 px^2 (two of the seven pairs); the term
    joins the hybrid loss at lan x lan_open."""
    pred = np.random.default_rng(0).uniform(40, 180, (1, 68, 2)).astype(np.float32)
    shifted = pred + np.array([5.0, -7.0], np.float32)
    np.testing.assert_allclose(losses.landmark_openings(jnp.asarray(pred),
                                                        jnp.asarray(shifted)), [0.0], atol=1e-3)
    closed = pred.copy()
    closed[0, [37, 38], 1] += 3.0
    np.testing.assert_allclose(losses.landmark_openings(jnp.asarray(pred),
                                                        jnp.asarray(closed)), [18.0 / 7],
                               rtol=1e-5)
    w = losses.LossWeights(lan_open=0.5)
    np.testing.assert_allclose(losses.total({"open": jnp.ones(1)}, w), [0.5 * w.lan])


def test_landmark_weights_and_value():
    w = losses.landmark_weights()
    assert w[28] == w[29] == w[30] == 20 and w[27] == 1 and w[31] == 1
    assert np.all(w[60:68] == 20) and w[59] == 1 and w.sum() == 57 + 11 * 20
    pred = np.zeros((1, 68, 2), np.float32)
    tgt = np.zeros((1, 68, 2), np.float32)
    tgt[0, 29] = [3, 4]           # 25 px^2 at weight 20
    tgt[0, 0] = [1, 0]            # 1 px^2 at weight 1
    np.testing.assert_allclose(losses.landmark(jnp.asarray(pred), jnp.asarray(tgt)),
                               [(20 * 25 + 1) / 68], rtol=1e-6)


def test_perceptual_is_one_minus_cosine():
    a = jnp.array([[1.0, 0.0], [1.0, 1.0]])
    b = jnp.array([[0.0, 2.0], [3.0, 3.0]])
    np.testing.assert_allclose(losses.perceptual(a, b), [1.0, 0.0], atol=1e-6)


def test_coefficient_reg_and_texture_variance(rng):
    parts = {k: jnp.asarray(rng.normal(size=(2, n)), jnp.float32) for k, n in
             (("id", 4), ("exp", 3), ("tex", 5), ("gamma", 9))}
    w = losses.LossWeights()
    got = np.asarray(losses.coefficient_reg(parts, w))
    p = {k: np.asarray(v) for k, v in parts.items()}
    np.testing.assert_allclose(got, (p["id"] ** 2).sum(1) + 0.8 * (p["exp"] ** 2).sum(1)
                               + 1.7e-3 * (p["gamma"] ** 2).sum(1), rtol=1e-5)
    d3 = losses.LossWeights.deep3d()
    np.testing.assert_allclose(losses.coefficient_reg(parts, d3),
                               (p["id"] ** 2).sum(1) + 0.8 * (p["exp"] ** 2).sum(1)
                               + 1.7e-2 * (p["tex"] ** 2).sum(1), rtol=1e-5)
    albedo = rng.uniform(size=(2, 10, 3)).astype(np.float32)
    skin = np.zeros(10, np.float32)
    skin[[1, 4, 5, 8]] = 1
    tv = np.asarray(losses.texture_variance(jnp.asarray(albedo), jnp.asarray(skin)))
    np.testing.assert_allclose(tv, albedo[:, skin > 0].var(axis=1).sum(-1), rtol=1e-5)


def test_gamma_channel_variance_zero_for_grey_light(rng):
    g = rng.normal(size=9).astype(np.float32)
    assert float(losses.gamma_channel_variance(jnp.asarray(np.tile(g, 3)))) < 1e-12
    assert float(losses.gamma_channel_variance(jnp.asarray(rng.normal(size=27)))) > 0


def test_expression_l1_shared_prior_and_landmark_groups(rng):
    parts = {k: jnp.asarray(rng.normal(size=(3, n)), jnp.float32) for k, n in
             (("id", 4), ("exp", 3), ("tex", 5), ("gamma", 9))}
    p = {k: np.asarray(v) for k, v in parts.items()}
    w = losses.LossWeights(exp_l1=0.01)
    base = (p["id"] ** 2).sum(1) + 0.8 * (p["exp"] ** 2).sum(1) + 1.7e-3 * (p["gamma"] ** 2).sum(1)
    # the term is reported in units of w.coef: coef * reg = coef * L2 + exp_l1 * |beta|_1
    np.testing.assert_allclose(np.asarray(losses.coefficient_reg(parts, w)) * w.coef,
                               base * w.coef + 0.01 * np.abs(p["exp"]).sum(1), rtol=1e-5)
    # a joint fit's shared scale multiplies the identity prior only
    scale = jnp.asarray([1.0, 0.5, 0.0])
    got = np.asarray(losses.coefficient_reg(parts, losses.LossWeights(), scale))
    np.testing.assert_allclose(got, np.asarray(scale) * (p["id"] ** 2).sum(1)
                               + 0.8 * (p["exp"] ** 2).sum(1) + 1.7e-3 * (p["gamma"] ** 2).sum(1),
                               rtol=1e-5)
    wl = losses.landmark_weights(contour=0.25, nose_mouth=1.0)
    assert np.all(wl[:17] == 0.25) and np.all(wl[17:] == 1.0)


def test_landmark_shape_scales_only_the_shapes_landmark_gradient(small_grid, rng):
    """landmark_shape s: the landmark term's value and its gradient on the pose stay; its
    gradient on identity and expression is s times the full one (landmark_expression e: the
    expression's s e times)."""
    import dataclasses

    import jax

    from facerecon_jax.geometry import camera as cam
    from facerecon_jax.geometry.coefficients import CoeffLayout

    model = small_grid.to_jax()
    lay = CoeffLayout.for_model(model, "mono")
    x = jnp.asarray(0.3 * rng.normal(size=(2, lay.size)), jnp.float32)
    batch = {"landmarks": jnp.asarray(rng.uniform(90, 130, (2, 68, 2)), jnp.float32)}
    base = losses.LossWeights(coef=0.0)

    def landmark_grad(s, exp=1.0):
        w = dataclasses.replace(base, lan_shape=s, lan_exp=exp)
        fn = losses.make_hybrid_loss(model, lay, camera=cam.Camera(), weights=w,
                                     landmarks_only=True)
        (_, terms), g = jax.value_and_grad(fn, has_aux=True)(x, batch)
        return np.asarray(terms["lan"]), lay.split(g)

    v1, g1 = landmark_grad(1.0)
    v4, g4 = landmark_grad(0.25)
    np.testing.assert_allclose(v4, v1, rtol=1e-6)
    for k in ("id", "exp"):
        assert np.abs(g1[k]).max() > 0
        np.testing.assert_allclose(g4[k], 0.25 * g1[k], rtol=1e-4, atol=1e-9)
    for k in ("angles", "trans"):
        np.testing.assert_allclose(g4[k], g1[k], rtol=1e-5, atol=1e-9)
    # landmark_expression e multiplies the expression's share alone: s e of the full gradient
    v, g = landmark_grad(0.25, exp=4.0)
    np.testing.assert_allclose(v, v1, rtol=1e-6)
    np.testing.assert_allclose(g["exp"], g1["exp"], rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(g["id"], 0.25 * g1["id"], rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(g["angles"], g1["angles"], rtol=1e-5, atol=1e-9)


def test_landmark_gain_compares_with_what_a_shrinking_detector_returns(small_grid, rng):
    """A planted detector that follows g of a face's identity deviation (its points: g of the
    face's landmarks plus 1 - g of the mean identity's, same pose and expression): with
    lan_gain g the true face leaves no landmark error; taken as exact (gain 1), the points fit
    the face shrunk to g of its identity instead."""
    import dataclasses

    from facerecon_jax.geometry import camera as cam
    from facerecon_jax.geometry.coefficients import CoeffLayout
    from facerecon_jax.render import renderer

    model = small_grid.to_jax()
    lay = CoeffLayout.for_model(model, "mono")
    parts = lay.split(jnp.asarray(0.2 * rng.normal(size=(2, lay.size)), jnp.float32))
    parts["id"] = parts["id"] * 8.0                   # faces well away from the mean
    x = lay.join(parts)
    g = 0.6
    lm_face = renderer.face_vertices(model, parts, cam.Camera())["landmarks"]
    lm_mean = renderer.face_vertices(model, dict(parts, id=0.0 * parts["id"]),
                                     cam.Camera())["landmarks"]
    batch = {"landmarks": g * lm_face + (1.0 - g) * lm_mean}

    def lan(gain, x_):
        w = dataclasses.replace(losses.LossWeights(coef=0.0), lan_gain=gain)
        fn = losses.make_hybrid_loss(model, lay, camera=cam.Camera(), weights=w,
                                     landmarks_only=True)
        return np.asarray(fn(x_, batch)[1]["lan"])

    shrunk = lay.join(dict(parts, id=g * parts["id"]))
    exact_at_face = lan(1.0, x)
    assert exact_at_face.min() > 1.0                    # px^2: the points are not the face's
    np.testing.assert_allclose(lan(g, x), 0.0, atol=1e-6 * exact_at_face.max())
    assert lan(1.0, shrunk).max() < 0.01 * exact_at_face.min()


def test_landmark_weights_fall_with_the_detectors_scatter_at_the_fitted_yaw(small_grid, rng):
    """lan_yaw_noise knots (|yaw| degrees, scatter ratio): a head at yaw +-15 degrees, between
    knots (0, 1) and (30, 2), has its landmark term divided by 1.5^2 (linear interpolation,
    either side); at 40 degrees, past the last knot, by 2^2; the robust kernel's scale grows
    with the scatter (e (c D)^2 log(1 + e / (c D)^2) with e the weighted error) alike."""
    import dataclasses

    from facerecon_jax.geometry import camera as cam
    from facerecon_jax.geometry.coefficients import CoeffLayout

    model = small_grid.to_jax()
    lay = CoeffLayout.for_model(model, "mono")
    parts = lay.split(jnp.asarray(0.1 * rng.normal(size=(3, lay.size)), jnp.float32))
    parts["angles"] = jnp.asarray(np.radians([[0.0, 15.0, 0.0], [0.0, -15.0, 0.0],
                                              [0.0, 40.0, 0.0]]), jnp.float32)
    x = lay.join(parts)
    batch = {"landmarks": jnp.asarray(rng.uniform(40, 180, (3, 68, 2)), jnp.float32)}

    def lan(**changes):
        w = dataclasses.replace(losses.LossWeights(coef=0.0), **changes)
        fn = losses.make_hybrid_loss(model, lay, camera=cam.Camera(), weights=w,
                                     landmarks_only=True)
        return np.asarray(fn(x, batch)[1]["lan"], np.float64)

    knots = ((0.0, 1.0), (30.0, 2.0))
    np.testing.assert_allclose(lan(lan_yaw_noise=knots), lan() / np.array([2.25, 2.25, 4.0]),
                               rtol=1e-5)
    robust = lan(lan_yaw_noise=knots, lan_robust=0.25)
    assert np.all(robust < lan(lan_yaw_noise=knots)) and np.all(robust > 0)


def test_supervised_coefficients_masks_shape_and_pose_parts(small_grid, rng):
    from facerecon_jax.geometry.coefficients import CoeffLayout
    lay = CoeffLayout.for_model(small_grid, "mono")
    x = rng.normal(size=(3, lay.size)).astype(np.float32)
    t = rng.normal(size=(3, lay.size)).astype(np.float32)
    shape_ok, pose_ok = np.array([1, 0, 1], np.float32), np.array([1, 1, 0], np.float32)
    got = np.asarray(losses.supervised_coefficients(jnp.asarray(x), jnp.asarray(t), lay,
                                                    jnp.asarray(shape_ok), jnp.asarray(pose_ok)))
    sl = lay.slices()
    for b in range(3):
        shape = sum(((x[b, sl[f]] - t[b, sl[f]]) ** 2).sum() for f in ("id", "exp", "tex"))
        pose = sum(((x[b, sl[f]] - t[b, sl[f]]) ** 2).sum() for f in ("angles", "gamma", "trans"))
        np.testing.assert_allclose(got[b], shape_ok[b] * shape + pose_ok[b] * pose, rtol=1e-5)


def test_group_consistency_is_the_distance_from_each_persons_mean(rng):
    v = rng.normal(size=(6, 4)).astype(np.float32)
    got = np.asarray(losses.group_consistency(jnp.asarray(v), 3))
    want = np.concatenate([np.sum((g - g.mean(0)) ** 2, -1) for g in (v[:3], v[3:])])
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # a left-out row (mirrored picture): out of its group's mean and of the term
    valid = np.array([1, 1, 0, 1, 1, 1], np.float32)
    got = np.asarray(losses.group_consistency(jnp.asarray(v), 3, jnp.asarray(valid)))
    m = v[:2].mean(0)
    np.testing.assert_allclose(got[:3], [np.sum((v[0] - m) ** 2), np.sum((v[1] - m) ** 2), 0.0],
                               rtol=1e-5, atol=1e-7)


def test_calibrated_landmark_noise_weights_by_inverse_variance():
    from facerecon_jax.fit import fitting, landmark_embedding
    noise = np.full(68, 0.1)
    noise[:17] = 0.2
    w = losses.landmark_weights(1.0, 20.0, tuple(noise))
    base = losses.landmark_weights(1.0, 20.0)
    np.testing.assert_allclose(w[17:], base[17:], rtol=1e-6)          # median spread: as before
    np.testing.assert_allclose(w[:17], base[:17] / 4.0, rtol=1e-6)    # twice the spread: 1/4
    shipped = landmark_embedding.detector_noise()
    assert shipped.shape == (68,) and shipped[:17].mean() > shipped[17:].mean()
    assert fitting.landmark_noise("calibrated") == {
        "lan_noise": tuple(float(s) for s in shipped)}
    assert fitting.landmark_noise("none") == {}
    with pytest.raises(ValueError, match="landmark_noise"):
        fitting.landmark_noise("dlib")


def test_landmark_precision_generalises_the_per_point_weights(rng):
    """With a diagonal covariance (each point's scatter split evenly over x and y) the matrix
    term equals the per-point inverse-variance weights; with a correlated one it is the
    Mahalanobis distance r^T C^-1 r, scaled by the median point's variance per axis and written
    out here with numpy; an error the covariance says all points share (a shift of the whole
    shape) then costs far less than under the per-point weights."""
    noise = rng.uniform(0.05, 0.2, 68)
    diag = np.diag(np.repeat(noise ** 2 / 2.0, 2))
    pred = jnp.asarray(rng.normal(0, 3, (3, 68, 2)), jnp.float32)
    target = jnp.asarray(rng.normal(0, 3, (3, 68, 2)), jnp.float32)
    for contour, nose_mouth in ((1.0, 1.0), (0.25, 20.0)):
        p = losses.landmark_precision(diag, contour, nose_mouth)
        w = losses.landmark_weights(contour, nose_mouth, tuple(noise))
        np.testing.assert_allclose(np.diag(p), np.repeat(w, 2), rtol=1e-5)
        np.testing.assert_allclose(losses.landmark(pred, target, jnp.asarray(p)),
                                   losses.landmark(pred, target, jnp.asarray(w)), rtol=1e-5)
    shift = np.tile([1.0, 0.0], 68)                        # every point moved right together
    cov = diag + 0.01 * np.outer(shift, shift)
    p = losses.landmark_precision(cov, 1.0, 1.0)
    r = np.asarray(pred - target, np.float64).reshape(3, 136)
    per_axis = np.median(np.sqrt(np.diag(cov).reshape(68, 2).sum(1))) ** 2 / 2
    expect = per_axis * np.einsum("bi,ij,bj->b", r, np.linalg.inv(cov), r) / 68
    np.testing.assert_allclose(losses.landmark(pred, target, jnp.asarray(p)), expect, rtol=1e-4)
    moved = jnp.asarray(shift.reshape(1, 68, 2) * 2.0, jnp.float32)
    zero = jnp.zeros((1, 68, 2), jnp.float32)
    assert (losses.landmark(moved, zero, jnp.asarray(p))
            < 0.05 * losses.landmark(moved, zero, jnp.asarray(losses.landmark_weights(
                1.0, 1.0, tuple(noise)))))
    with pytest.raises(ValueError, match="positive definite"):
        losses.landmark_precision(-diag)


def test_calibrated_map_places_the_detectors_points_off_the_vertices(small_grid, rng):
    """A planted detector whose points sit at a fixed 3D offset from the model's landmark
    vertices in the head's frame (the contour's by yaw bin), computed here by rotating the
    offset with numpy: with the map carrying those offsets the true face leaves no landmark
    error; with the plain landmark vertices it does."""
    from facerecon_jax.fit import landmark_embedding as le
    from facerecon_jax.geometry import camera as cam
    from facerecon_jax.geometry.coefficients import CoeffLayout
    from facerecon_jax.render import renderer

    model = small_grid.to_jax()
    lay = CoeffLayout.for_model(model, "mono")
    parts = lay.split(jnp.asarray(0.2 * rng.normal(size=(2, lay.size)), jnp.float32))
    parts["angles"] = jnp.asarray([[0.1, -0.5, 0.05], [-0.1, 0.4, -0.05]], jnp.float32)
    x = lay.join(parts)
    edges = np.radians([0.0])                        # the two faces fall in different bins
    lm = np.asarray(model.landmarks)
    off = rng.normal(0, 0.04, (68, 3))
    contour_off = rng.normal(0, 0.04, (2, 17, 3))
    lmap = le.LandmarkMap(static=jnp.asarray(lm), contour=jnp.asarray(np.tile(lm[:17], (2, 1))),
                          yaw_edges=jnp.asarray(edges, jnp.float32),
                          offset=jnp.asarray(off, jnp.float32),
                          contour_offset=jnp.asarray(contour_off, jnp.float32))
    posed = np.asarray(renderer.face_vertices(model, parts, cam.Camera())["posed"], np.float64)
    det = []
    for b in range(2):
        a = np.asarray(parts["angles"][b], np.float64)
        (cx, cy, cz), (sx, sy, sz) = np.cos(a), np.sin(a)
        rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
        ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
        rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
        o = off.copy()
        o[:17] = contour_off[0 if a[1] < 0 else 1]
        p = posed[b, lm] + o @ (rz @ ry @ rx).T
        c = cam.Camera()
        zc = c.distance - p[:, 2]
        det.append(np.stack([c.focal * p[:, 0] / zc + c.cx,
                             c.height - 1 - (c.focal * p[:, 1] / zc + c.cy)], 1))
    batch = {"landmarks": jnp.asarray(np.stack(det), jnp.float32)}

    def lan(m):
        fn = losses.make_hybrid_loss(model, lay, camera=cam.Camera(),
                                     weights=losses.LossWeights(coef=0.0), landmarks_only=True,
                                     landmark_map=m)
        return np.asarray(fn(x, batch)[1]["lan"])
    on_vertices = lan(None)
    assert on_vertices.min() > 1.0                     # px^2: the offsets move the points
    np.testing.assert_allclose(lan(lmap), 0.0, atol=1e-5 * on_vertices.max())


def test_robust_landmark_kernel_is_cauchy_in_interocular_units(rng):
    """`landmark(..., robust=c)`: per point (cD)^2 log(1 + w ||r||^2 / (cD)^2), D the target's
    eye-centre distance (numpy, by hand); tiny errors cost what the squared error costs, and a
    gross error pulls (gradient) far less than under the squared error."""
    import jax
    target = rng.uniform(20, 200, (2, 68, 2))
    pred = target + rng.normal(0, 2.0, target.shape)
    pred[1, 30] += 80.0                                        # one point dlib put off the face
    w = losses.landmark_weights(contour=0.2, nose_mouth=1.0)
    c = 0.25
    iod = np.linalg.norm(target[:, 36:42].mean(1) - target[:, 42:48].mean(1), axis=-1)
    e = np.sum((pred - target) ** 2, -1) * w
    s2 = (c * iod[:, None]) ** 2
    want = np.mean(s2 * np.log1p(e / s2), -1)
    got = np.asarray(losses.landmark(jnp.asarray(pred), jnp.asarray(target), jnp.asarray(w), c))
    np.testing.assert_allclose(got, want, rtol=1e-5)
    small = target + 1e-3 * rng.normal(size=target.shape)
    np.testing.assert_allclose(
        np.asarray(losses.landmark(jnp.asarray(small), jnp.asarray(target), jnp.asarray(w), c)),
        np.asarray(losses.landmark(jnp.asarray(small), jnp.asarray(target), jnp.asarray(w))),
        rtol=1e-4)

    def pull(robust):
        g = jax.grad(lambda p: jnp.sum(losses.landmark(p, jnp.asarray(target), jnp.asarray(w),
                                                       robust)))(jnp.asarray(pred))
        return np.linalg.norm(np.asarray(g)[1, 30])
    # d/de of s2 log(1 + e / s2) is 1 / (1 + e / s2): the point's pull shrinks by that
    ratio = 1.0 / (1.0 + e[1, 30] / s2[1, 0])
    assert ratio < 0.3
    np.testing.assert_allclose(pull(c) / pull(0.0), ratio, rtol=1e-4)
    with pytest.raises(ValueError, match="per-point"):
        losses.landmark(jnp.asarray(pred), jnp.asarray(target), jnp.eye(136), c)
    # points all at one place (no inter-ocular distance): finite, not 0 / 0
    flat = jnp.zeros((1, 68, 2))
    assert np.all(np.isfinite(np.asarray(losses.landmark(flat + 1.0, flat, jnp.asarray(w), c))))
