import jax.numpy as jnp
import numpy as np

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
