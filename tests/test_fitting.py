import jax.numpy as jnp
import numpy as np

from facerecon_jax import camera as cam
from facerecon_jax import coefficients, fitting, morphable, renderer


def test_fitting_recovers_a_planted_face(default_model):
    """Render a face with known coefficients, fit from the mean face: landmarks, image and
    shape all get closer to the truth than the mean face is."""
    m = default_model.to_jax()
    lay = coefficients.CoeffLayout.for_model(m, "mono")
    rng = np.random.default_rng(3)
    parts = lay.split(lay.zeros((2,)))
    parts["id"] = jnp.asarray(rng.normal(size=(2, m.n_id)) * 0.8, jnp.float32)
    parts["tex"] = jnp.asarray(rng.normal(size=(2, m.n_tex)), jnp.float32)
    parts["angles"] = jnp.asarray([[0.05, 0.2, 0.0], [-0.1, -0.15, 0.05]], jnp.float32)
    parts["trans"] = jnp.asarray([[0.05, -0.03, 0.0], [-0.04, 0.02, 0.1]], jnp.float32)
    truth = lay.join(parts)
    size = 96
    cfg = fitting.FitConfig(steps_landmark=80, steps=40, perceptual=False,
                            camera=cam.Camera().scaled(size))
    bg = jnp.full((2, size, size, 3), 0.3)
    target = renderer.render(m, truth, lay, renderer.RenderConfig(camera=cfg.camera), bg)
    batch = fitting.prepare_batch(target["image"], target["landmarks"], jnp.ones((2, size, size)))
    x, hist = fitting.fit(m, lay, batch, cfg)
    assert hist["landmarks"][-1]["lan"] < 0.05 * hist["landmarks"][0]["lan"]
    assert hist["hybrid"][-1]["photo"] < hist["hybrid"][0]["photo"]
    fitted = lay.split(x)
    s_true = morphable.shape(m, parts["id"], parts["exp"])
    s_fit = morphable.shape(m, fitted["id"], fitted["exp"])
    s_mean = jnp.broadcast_to(m.mean_shape, s_true.shape)
    err_fit = float(jnp.sqrt(jnp.mean((s_fit - s_true) ** 2)))
    err_mean = float(jnp.sqrt(jnp.mean((s_mean - s_true) ** 2)))
    assert err_fit < 0.7 * err_mean, (err_fit, err_mean)
    np.testing.assert_allclose(np.asarray(fitted["angles"]), np.asarray(parts["angles"]),
                               atol=0.05)
