"""The renderer's gradients against finite differences, and soft vs hard silhouettes."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from facerecon_jax.geometry import camera as cam
from facerecon_jax.fit import losses
from facerecon_jax.geometry import coefficients
from facerecon_jax.render import renderer

SIZE = 48


def _photo(out, target):
    """The photometric term over the rendered region (no skin mask)."""
    return losses.photometric(out["image"], target, out["alpha"])


def _setup(model, light="rgb", seed=0):
    m = model.to_jax()
    lay = coefficients.CoeffLayout.for_model(m, light)
    rng = np.random.default_rng(seed)
    parts = lay.split(lay.zeros((1,)))
    parts["id"] = jnp.asarray(rng.normal(size=(1, m.n_id)) * 0.5, jnp.float32)
    parts["exp"] = jnp.asarray(rng.normal(size=(1, m.n_exp)) * 0.5, jnp.float32)
    parts["tex"] = jnp.asarray(rng.normal(size=(1, m.n_tex)) * 0.5, jnp.float32)
    parts["angles"] = jnp.array([[0.1, 0.2, -0.05]])
    parts["gamma"] = jnp.asarray(rng.normal(size=(1, lay.n_gamma)) * 0.1, jnp.float32)
    parts["trans"] = jnp.array([[0.02, -0.03, 0.1]])
    cfg = renderer.RenderConfig(camera=cam.Camera().scaled(SIZE))
    target = jnp.asarray(rng.uniform(0.2, 0.8, (1, SIZE, SIZE, 3)), jnp.float32)
    return m, lay, lay.join(parts), cfg, target


def test_photometric_gradient_matches_finite_differences(small_grid):
    """Hard mode differentiates through barycentrics with visibility held: check that exactly."""
    with jax.enable_x64(True):
        m, lay, x, cfg, target = _setup(small_grid)
        m = m.replace(**{k: jnp.asarray(getattr(m, k), jnp.float64) for k in
                         ("mean_shape", "id_basis", "exp_basis", "mean_albedo", "tex_basis")})
        x = jnp.asarray(x, jnp.float64)
        target = jnp.asarray(target, jnp.float64)
        verts0 = renderer.face_vertices(m, lay.split(x), cfg.camera)
        tri_id = renderer.rasterize(m, verts0["screen"], cfg).tri_id
        assert (np.asarray(tri_id) >= 0).mean() > 0.2

        def loss(x):
            verts = renderer.face_vertices(m, lay.split(x), cfg.camera)
            out = renderer.shade_pixels(m, verts, tri_id, cfg)
            return _photo(out, target)[0]

        loss = jax.jit(loss)
        g = np.asarray(jax.grad(loss)(x))[0]
        eps = 1e-6
        idx = np.concatenate([np.arange(s.start, s.stop)[:3] for s in lay.slices().values()])
        for i in idx:
            e = jnp.zeros_like(x).at[0, i].set(eps)
            fd = (float(loss(x + e)) - float(loss(x - e))) / (2 * eps)
            assert abs(g[i] - fd) <= 1e-5 + 1e-4 * abs(fd), (i, g[i], fd)


def test_gradient_of_full_render_matches_fd_for_appearance(small_grid):
    """Texture and light do not move geometry: the whole render differentiates exactly."""
    with jax.enable_x64(True):
        m, lay, x, cfg, target = _setup(small_grid, light="mono", seed=1)
        x = jnp.asarray(x, jnp.float64)

        def loss(x):
            return _photo(renderer.render(m, x, lay, cfg), target)[0]

        loss = jax.jit(loss)
        g = np.asarray(jax.grad(loss)(x))[0]
        sl = lay.slices()
        for i in list(range(sl["tex"].start, sl["tex"].start + 3)) + list(
                range(sl["gamma"].start, sl["gamma"].stop)):
            e = jnp.zeros_like(x).at[0, i].set(1e-5)
            fd = (float(loss(x + e)) - float(loss(x - e))) / 2e-5
            assert abs(g[i] - fd) <= 1e-6 + 1e-4 * abs(fd), (i, g[i], fd)


def _flat_model(model):
    m = model.to_jax()
    return m.replace(tex_basis=jnp.zeros_like(m.tex_basis),
                     mean_albedo=jnp.full_like(m.mean_albedo, 0.6))


@pytest.mark.parametrize("backend", ["scatter", "tiled"])
def test_soft_mode_gives_silhouette_gradients_hard_mode_does_not(small_grid, backend):
    m = _flat_model(small_grid)
    lay = coefficients.CoeffLayout.for_model(m, "mono")
    x = lay.zeros((1,))
    # target: white on the right half, black on the left. Moving the (flat grey) face right
    # covers more white and uncovers black: the loss falls, d loss / d t_x < 0.
    target = jnp.zeros((1, SIZE, SIZE, 3)).at[:, :, SIZE // 2:, :].set(1.0)
    t_x = lay.slices()["trans"].start
    grads = {}
    for soft in (False, True):
        cfg = renderer.RenderConfig(camera=cam.Camera().scaled(SIZE), soft=soft, backend=backend,
                                    tile=8)

        def loss(x):
            img = renderer.render(m, x, lay, cfg)["image"]
            return jnp.sum((img - target) ** 2)
        loss = jax.jit(loss)
        grads[soft] = np.asarray(jax.grad(loss)(x))[0]
        if soft:
            # the rendered loss is a staircase in t_x, one step per pixel column crossed
            # (1 px = 0.05 here): a central difference over 1.5 px either side spans 3 steps
            # and ends mid-step, so it is the loss's mean slope over those pixels
            shift = jnp.zeros_like(x).at[0, t_x].set(0.075)
            fd = (float(loss(x + shift)) - float(loss(x - shift))) / 0.15
    assert np.abs(grads[False][t_x]) < 1e-6
    assert grads[True][t_x] < 0 and fd < 0
    # the soft gradient is that slope to within 15% (0.925 measured, both backends)
    assert 0.85 < grads[True][t_x] / fd < 1.15, (grads[True][t_x], fd)
    # silhouette gradients exist only at the border: a pure translation of a flat face does not
    # change interior pixels, so the hard gradient w.r.t. every pose entry vanishes too
    assert np.all(np.abs(grads[False][lay.slices()["trans"]]) < 1e-6)


def test_soft_and_hard_images_agree_inside_the_face(small_grid):
    m, lay, x, _, _ = _setup(small_grid)
    hard = renderer.render(m, x, lay, renderer.RenderConfig(camera=cam.Camera().scaled(SIZE)))
    soft = renderer.render(m, x, lay, renderer.RenderConfig(camera=cam.Camera().scaled(SIZE),
                                                            soft=True))
    mask = np.asarray(hard["mask"][0]) > 0
    interior = mask.copy()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            interior &= np.roll(np.roll(mask, dy, 0), dx, 1)
    a, s = np.asarray(soft["alpha"][0]), np.asarray(soft["image"][0])
    np.testing.assert_allclose(a[interior], 1.0, atol=1e-5)
    # interior colours are a 3 x 3 blur of the hard colours: close, not equal
    assert np.abs(s[interior] - np.asarray(hard["image"][0])[interior]).mean() < 0.02
    assert ((a > 0) & (a < 1)).sum() > 0          # a soft border exists


def test_landmarks_land_on_the_rendered_vertices(default_model):
    """2D landmarks from the vertex stage sit where the renderer draws those vertices."""
    m = default_model.to_jax()
    lay = coefficients.CoeffLayout.for_model(m, "mono")
    cfg = renderer.RenderConfig()
    out = renderer.render(m, lay.zeros((1,)), lay, cfg)
    lm = np.asarray(out["landmarks"][0])
    # Frontal mean face: nose tip (30) below the eyes (36-47) in image rows, chin (8) lowest,
    # and left-image-side contour points (0-7) at smaller x than the right (9-16).
    assert lm[30, 1] > lm[36:48, 1].mean()
    assert lm[8, 1] > lm[30, 1] > lm[27, 1]
    assert lm[0:8, 0].mean() < lm[9:17, 0].mean()
    # every landmark pixel is covered by the face
    cols, rows = np.round(lm[:, 0]).astype(int), np.round(lm[:, 1]).astype(int)
    assert np.asarray(out["mask"][0])[rows, cols].mean() > 0.9


def test_gradient_stays_finite_when_background_pixels_see_a_degenerate_triangle(small_grid):
    """Background pixels borrow triangle 0's corners (masked out later); a zero-area triangle 0
    once sent 0 * inf = NaN back through the masked barycentrics."""
    tris = np.asarray(small_grid.triangles).copy()
    tris[0] = [tris[0, 0], tris[0, 0], tris[0, 1]]          # zero area
    m = small_grid.replace(triangles=tris).to_jax()
    m, lay, x, cfg, target = _setup(m)

    def loss(x):
        return _photo(renderer.render(m, x, lay, cfg), target)[0]
    g = np.asarray(jax.grad(loss)(x))
    assert np.all(np.isfinite(g)) and np.abs(g).max() > 0
