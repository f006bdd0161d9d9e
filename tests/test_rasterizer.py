import jax.numpy as jnp
import numpy as np
import pytest
import trimesh

from facerecon_jax.geometry import camera as cam
from facerecon_jax.geometry import coefficients
from facerecon_jax.render import rasterizer, renderer

BACKENDS = [dict(backend="scatter", window=2, chunk=64),      # many chunks, multi-job triangles
            dict(backend="scatter", window=3, chunk=1 << 12),
            dict(backend="tiled", tile=8, tile_capacity=4, large_capacity=3)]


def _random_mesh(rng, n_vert, n_tri, lo, hi, size=None):
    xy = rng.uniform(lo, hi, (n_vert, 2))
    z = rng.uniform(2.0, 6.0, (n_vert, 1))
    return (np.concatenate([xy, z], 1).astype(np.float32),
            rng.integers(0, n_vert, (n_tri, 3)).astype(np.int32))


def _check_against_reference(screen, tri, h, w, **kw):
    ref_ids, ref_depth = rasterizer.rasterize_reference(screen, tri, h, w)
    frags = rasterizer.rasterize(screen, tri, height=h, width=w, **kw)
    ids = np.asarray(frags.tri_id)
    assert ids.shape == (h, w)
    # Coverage is exact; the visible triangle may differ only where two depths tie within the
    # key's depth quantum (then both candidates are at the same depth).
    np.testing.assert_array_equal(ids >= 0, ref_ids >= 0)
    same = ids == ref_ids
    assert same.mean() >= 0.99
    if (~same).any():
        _, d = _depth_of(screen, tri, ids)
        np.testing.assert_allclose(d[~same], ref_depth[~same], rtol=1e-3)
    return frags, ref_ids


def _depth_of(screen, tri, ids):
    h, w = ids.shape
    ref_ids, _ = rasterizer.rasterize_reference(screen, tri, h, w)
    s = screen.astype(np.float64)
    py, px = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    v = s[tri[np.maximum(ids, 0)]]
    x, y, z = v[..., 0], v[..., 1], v[..., 2]

    def e(i, j):
        return ((x[..., j] - x[..., i]) * (py - y[..., i])
                - (y[..., j] - y[..., i]) * (px - x[..., i]))
    w_ = np.stack([e(1, 2), e(2, 0), e(0, 1)], -1)
    b = w_ / w_.sum(-1, keepdims=True)
    return ref_ids, 1.0 / np.sum(b / z, -1)


@pytest.mark.parametrize("kw", BACKENDS)
def test_small_overlapping_triangles_match_brute_force(rng, kw):
    screen, tri = _random_mesh(rng, 300, 400, 0, 40)
    # shrink each triangle towards its first corner: ~1-4 px triangles, many overlaps
    v = screen[tri]
    v[:, 1:, :2] = v[:, :1, :2] + 0.15 * (v[:, 1:, :2] - v[:, :1, :2])
    screen = v.reshape(-1, 3)
    tri = np.arange(len(screen), dtype=np.int32).reshape(-1, 3)
    _check_against_reference(screen, tri, 36, 40, **kw)


@pytest.mark.parametrize("kw", BACKENDS)
def test_large_triangles_have_no_holes(rng, kw):
    # triangles far larger than the scatter window and the tiles, some off-screen corners
    screen, tri = _random_mesh(rng, 40, 30, -20, 60)
    frags, ref = _check_against_reference(screen, tri, 40, 44, **kw)
    assert int(frags.n_large) > 0


@pytest.mark.parametrize("kw", BACKENDS)
def test_full_screen_quad_covers_every_pixel(kw):
    screen = np.array([[-5, -5, 3], [50, -5, 3], [50, 50, 3], [-5, 50, 3]], np.float32)
    tri = np.array([[0, 1, 2], [0, 2, 3]], np.int32)
    ids = np.asarray(rasterizer.rasterize(screen, tri, height=33, width=31, **kw).tri_id)
    assert (ids >= 0).all()
    # pixels strictly below the diagonal x == y belong to triangle 0 (x > y)
    py, px = np.meshgrid(np.arange(33), np.arange(31), indexing="ij")
    np.testing.assert_array_equal(ids[px > py], 0)
    np.testing.assert_array_equal(ids[px < py], 1)


def test_nearer_surface_wins_and_behind_camera_is_dropped():
    far = [[0, 0, 5], [20, 0, 5], [0, 20, 5]]
    near = [[0, 0, 2], [20, 0, 2], [0, 20, 2]]
    behind = [[0, 0, -1], [20, 0, -1], [0, 20, -1]]
    screen = np.array(far + near + behind, np.float32)
    tri = np.arange(9, dtype=np.int32).reshape(3, 3)
    for kw in BACKENDS:
        ids = np.asarray(rasterizer.rasterize(screen, tri, height=16, width=16, **kw).tri_id)
        assert ids[2, 2] == 1 and not (ids == 2).any()


def test_backends_agree_on_a_face(small_grid, rng):
    m = small_grid.to_jax()
    lay = coefficients.CoeffLayout.for_model(m, "mono")
    x = jnp.asarray(rng.normal(size=(3, lay.size)).astype(np.float32) * 0.2)
    c = cam.Camera().scaled(64)
    verts = renderer.face_vertices(m, lay.split(x), c)
    a = rasterizer.rasterize(verts["screen"], m.triangles, height=64, width=64, backend="scatter")
    b = rasterizer.rasterize(verts["screen"], m.triangles, height=64, width=64, backend="tiled",
                             tile=8, tile_capacity=8)
    np.testing.assert_array_equal(np.asarray(a.tri_id), np.asarray(b.tri_id))
    assert (np.asarray(a.tri_id) >= 0).mean() > 0.2


def test_default_model_against_trimesh_ray_casting(default_model):
    m = default_model.to_jax()
    lay = coefficients.CoeffLayout.for_model(m, "mono")
    parts = lay.split(lay.zeros((1,)))
    parts["angles"] = jnp.array([[0.15, 0.5, 0.1]])          # turned: self-occlusion at the nose
    parts["id"] = jnp.asarray(np.random.default_rng(0).normal(size=(1, m.n_id)), jnp.float32)
    x = lay.join(parts)
    size = 96
    c = cam.Camera().scaled(size)
    verts = renderer.face_vertices(m, lay.split(x), c)
    frags = rasterizer.rasterize(verts["screen"], m.triangles, height=size, width=size)
    ids = np.asarray(frags.tri_id[0])
    posed = np.asarray(verts["posed"][0], np.float64)
    mesh = trimesh.Trimesh(posed, np.asarray(m.triangles), process=False)
    rows, cols = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    u, v = cols.reshape(-1), size - 1 - rows.reshape(-1)
    dirs = np.stack([(u - c.cx) / c.focal, (v - c.cy) / c.focal, -np.ones_like(u, float)], 1)
    origins = np.tile([0.0, 0.0, c.distance], (len(dirs), 1))
    hit_tri = mesh.ray.intersects_first(origins, dirs).reshape(size, size)
    covered = (ids >= 0) | (hit_tri >= 0)
    agree = (ids >= 0) == (hit_tri >= 0)
    assert agree[covered].mean() >= 0.995, agree[covered].mean()
    same_tri = (ids == hit_tri)[covered].mean()
    assert same_tri >= 0.99, same_tri
    # depth: ray parameter along dirs with z component -1 is exactly z_cam
    loc, ray_idx, tri_idx = mesh.ray.intersects_location(origins, dirs, multiple_hits=False)
    ray_depth = np.full(size * size, np.nan)
    ray_depth[ray_idx] = c.distance - loc[:, 2]
    both = ((ids >= 0) & (hit_tri >= 0)).reshape(-1)
    pix = renderer.shade_pixels(m, verts, frags.tri_id, renderer.RenderConfig(camera=c))
    depth = np.asarray(pix["depth"][0]).reshape(-1)
    err = np.abs(depth[both] - ray_depth[both])
    assert np.median(err) < 1e-5 and np.quantile(err, 0.99) < 1e-3, (np.median(err), err.max())
