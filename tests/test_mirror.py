"""Mirror images of faces (models/mirror.py, geometry/mirror_image.py): the coefficients
`mirror_coefficients` gives render the picture flipped left-right; R-Net's mirror-averaged
prediction."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from facerecon_jax.geometry import camera as cam
from facerecon_jax.geometry import mirror_image
from facerecon_jax.geometry.coefficients import CoeffLayout
from facerecon_jax.models import grid_model, mirror
from facerecon_jax.render import renderer
from facerecon_jax.training import data, rnet, train


def random_faces(model, layout, n, seed=0):
    rng = np.random.default_rng(seed)
    exp = rng.uniform(0, 0.6, (n, model.n_exp)) * (rng.uniform(size=(n, model.n_exp)) < 0.15)
    return layout.join({"id": rng.normal(size=(n, model.n_id)), "exp": exp,
                        "tex": rng.normal(size=(n, model.n_tex)),
                        "angles": rng.uniform(-0.3, 0.3, (n, 3)),
                        "gamma": rng.normal(0, 0.2, (n, layout.n_gamma)),
                        "trans": rng.uniform(-0.3, 0.3, (n, 3))}).astype(jnp.float32)


@pytest.mark.parametrize("size", [64, 96])
def test_mirrored_coefficients_render_the_flipped_picture(default_model, size):
    """The default model's faces (identity, blendshapes, texture, yaw and roll, RGB light,
    translation) rendered from `mirror_coefficients` of x are the renders of x flipped left-right
    (columns c -> W - 1 - c): the same pixels covered, the same colours, the 68 landmarks where
    `data.flip_landmarks` moves them; mirroring twice gives the face back."""
    m = default_model.to_jax()
    layout = CoeffLayout.for_model(default_model, "rgb")
    maps = mirror.coefficient_mirror(default_model)
    assert maps.residual < 0.01                     # the ICT face area is near-symmetric
    camera = cam.Camera().scaled(size)
    x = random_faces(default_model, layout, 3)
    xm = mirror_image.mirror_coefficients(x, layout, maps, camera)
    cfg = renderer.RenderConfig(camera=camera)
    bg = jnp.zeros((3, size, size, 3))
    a = renderer.render_jit(m, x, layout, cfg, bg)
    b = renderer.render_jit(m, xm, layout, cfg, bg)
    flipped, cover = np.asarray(a["image"])[:, :, ::-1], np.asarray(a["mask"])[:, :, ::-1] > 0
    image, mask = np.asarray(b["image"]), np.asarray(b["mask"]) > 0
    assert (cover & mask).sum() / (cover | mask).sum() > 0.99
    assert np.abs(flipped - image)[cover & mask].mean() < 0.005
    lm = data.flip_landmarks(np.asarray(a["landmarks"]), size)
    assert np.abs(lm - np.asarray(b["landmarks"])).max() < 0.2           # pixels
    # without the shift between the flipped picture's centre (W - 1) / 2 and the camera's cx
    # the face lands a pixel off: the comparison above sees it
    parts = layout.split(xm)
    naive = layout.join(dict(parts, trans=layout.split(x)["trans"] * jnp.array([-1.0, 1, 1])))
    off = renderer.render_jit(m, naive, layout, cfg, bg)["landmarks"]
    assert np.abs(lm - np.asarray(off)).max() > 0.5
    twice = mirror_image.mirror_coefficients(xm, layout, maps, camera)
    for field in ("exp", "angles", "gamma", "trans"):
        np.testing.assert_allclose(np.asarray(layout.split(twice)[field]),
                                   np.asarray(layout.split(x)[field]), atol=2e-3)
    shape = lambda v: np.asarray(train.shape_difference_mm(                 # noqa: E731
        m, layout.split(v)["id"], jnp.zeros((3, m.n_exp)), jnp.zeros((3, m.n_id)),
        jnp.zeros((3, m.n_exp)), centred=False))
    assert np.abs(shape(twice) - shape(x)).max() < 0.2                       # mm


def test_mirror_averaged_prediction_reads_the_flipped_picture_back(tmp_path):
    """`load_predictor(..., mirror_model=)`: the mean of the network's prediction for each
    picture and of its prediction for the flipped picture mapped back through the mirror
    (numpy's flip and `mirror_coefficients` applied by hand, a second reading); a model of
    another size than the network's output is refused."""
    import optax

    model = grid_model.grid_model(12, n_id=4, n_exp=3, n_tex=3)
    layout = CoeffLayout.for_model(model, "mono")
    size = 32
    net = rnet.make_rnet("resnet18", layout.size, width=4)
    v = train.init_variables(net, jax.random.PRNGKey(0), size)
    params = dict(v["params"], head={      # a head that is not zero: predictions that vary
        "kernel": np.random.default_rng(1).normal(size=(32, layout.size)).astype(np.float32),
        "bias": np.zeros(layout.size, np.float32)})
    state = train.TrainState.create(apply_fn=net.apply, params=params, tx=optax.adam(1e-3),
                                    batch_stats=v["batch_stats"])
    train.save_checkpoint(train.checkpoint_manager(tmp_path),
                          state.replace(step=jnp.zeros((), jnp.int32)),
                          {"arch": "resnet18", "num_outputs": layout.size, "image_size": size,
                           "width": 4, "head": "mean", "stem": "imagenet", "ema": False,
                           "light": "mono"})
    img = np.random.default_rng(0).uniform(size=(3, size, size, 3)).astype(np.float32)
    plain, _ = train.load_predictor(tmp_path)
    averaged, _ = train.load_predictor(tmp_path, mirror_model=model)
    back = mirror_image.mirror_coefficients(plain(img[:, :, ::-1].copy()), layout,
                                            mirror.coefficient_mirror(model),
                                            cam.Camera().scaled(size))
    want = 0.5 * (np.asarray(plain(img)) + np.asarray(back))
    np.testing.assert_allclose(np.asarray(averaged(img)), want, rtol=1e-4, atol=1e-5)
    assert np.abs(want - np.asarray(plain(img))).max() > 1e-3
    with pytest.raises(ValueError, match="coefficients"):
        train.load_predictor(tmp_path, mirror_model=grid_model.grid_model(12, n_id=5, n_exp=3,
                                                                          n_tex=3))
