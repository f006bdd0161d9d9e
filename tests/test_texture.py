"""Texture baking on a planted scene: a face whose albedo is its own UV coordinates, (u, v, 0.5),
lit by a known light, turned away from the camera and photographed at twice the crop's
resolution. Baking must read back (u, v, 0.5) at every texel it calls seen, fill hidden texels
from their mirror texels (the ICT layout is symmetric: u -> 1 - u), and the re-rendered texture
must match the photo."""
import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from facerecon_jax.geometry import camera as cam, lighting
from facerecon_jax.models import uv_layout
from facerecon_jax.photo import alignment
from facerecon_jax.render import renderer, texture
from facerecon_jax.geometry.coefficients import CoeffLayout

SIZE = 128
_render = jax.jit(renderer.render_vertices, static_argnames=("config",))   # one compile each


def _texel_uv(size):
    i, j = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    return np.stack([(j + 0.5) / size, 1 - (i + 0.5) / size], axis=-1)


@pytest.fixture(scope="module")
def scene(default_model):
    return _scene(default_model)


def _scene(model):
    lay = uv_layout.for_model(model)
    layout = CoeffLayout.for_model(model, "rgb")
    parts = {k: jnp.asarray(v) for k, v in layout.split(np.zeros((1, layout.size),
                                                                  np.float32)).items()}
    parts["angles"] = jnp.asarray([[0.05, 0.6, 0.0]], jnp.float32)        # turned ~34 degrees
    gamma = np.zeros((1, 27), np.float32)
    gamma[0, [3, 12, 21]] = -0.15                                         # light from one side
    gamma[0, [2, 11, 20]] = 0.1
    parts["gamma"] = jnp.asarray(gamma)
    camera = cam.Camera()
    m = model.to_jax()
    verts = jax.jit(renderer.face_vertices, static_argnames=("camera",))(m, parts, camera)
    vuv = lay.vertex_uv(model.n_vertices)
    albedo = np.concatenate([vuv, np.full((len(vuv), 1), 0.5)], axis=1).astype(np.float32)
    colour = lighting.shade(jnp.asarray(albedo)[None], verts["normals"], parts["gamma"])
    assert float(jnp.max(colour)) < 1.0                          # nothing clipped in the photo
    # the photo: twice the crop's resolution; the alignment maps it onto the 224 crop exactly
    big = cam.Camera(2 * camera.focal, 2 * camera.cx + 0.5, 2 * camera.cy + 0.5, 448, 448,
                     camera.distance)
    v_big = dict(verts, albedo=jnp.asarray(albedo)[None], colour=colour,
                 screen=cam.to_screen(verts["posed"], big))
    photo = np.asarray(_render(
        m, v_big, renderer.RenderConfig(camera=big),
        background=jnp.full((1, 448, 448, 3), 0.3))["image"][0])
    align = alignment.Alignment(448, 448, 0.5, 224.0, 224.0)
    np.testing.assert_allclose(alignment.crop_to_image(np.array([[10.0, 20.0]]), align),
                               [[20.5, 40.5]])
    v_crop = dict(verts, albedo=jnp.asarray(albedo)[None], colour=colour)
    crop_render = _render(m, v_crop, renderer.RenderConfig(camera=camera))
    tm = texture.texel_map(lay, SIZE)
    one = {k: np.asarray(v[0]) for k, v in verts.items() if k != "landmarks"}
    irr = np.asarray(lighting.irradiance(verts["normals"], parts["gamma"])[0])
    depth = np.asarray(crop_render["depth"][0])
    bake = texture.bake_photo(tm, lay.triangles, one["posed"], one["normals"], camera, photo,
                              lambda xy: alignment.crop_to_image(xy, align), depth,
                              irradiance=irr)
    lit = texture.bake_photo(tm, lay.triangles, one["posed"], one["normals"], camera, photo,
                             lambda xy: alignment.crop_to_image(xy, align), depth)
    return dict(model=model, lay=lay, tm=tm, bake=bake, lit=lit, irr=irr, one=one,
                crop_render=crop_render)


def test_texel_map_barycentrics_land_on_texel_centres(scene):
    lay = scene["lay"]
    tm = texture.texel_map(lay, SIZE, cache=False)         # drawn now, not read from the cache
    np.testing.assert_array_equal(tm.tri, scene["tm"].tri)
    np.testing.assert_array_equal(tm.bary, scene["tm"].bary)
    uv = texture.corners_at_texels(tm, lay.corner_coords)
    chart = tm.chart
    np.testing.assert_allclose(uv[chart], _texel_uv(SIZE)[chart], atol=1e-4)
    assert np.all(tm.bary[chart] >= -1e-4)
    # the chart covers the UV triangles' area
    c = lay.corner_coords
    area = 0.5 * np.abs((c[:, 1, 0] - c[:, 0, 0]) * (c[:, 2, 1] - c[:, 0, 1])
                        - (c[:, 1, 1] - c[:, 0, 1]) * (c[:, 2, 0] - c[:, 0, 0])).sum()
    assert abs(chart.mean() - area) < 0.01


def test_seen_texels_read_back_the_planted_albedo(scene):
    bake, tm = scene["bake"], scene["tm"]
    seen = bake.seen
    assert 0.3 < seen.sum() / tm.chart.sum() < 0.9               # the far side is hidden
    truth = np.concatenate([_texel_uv(SIZE), np.full((SIZE, SIZE, 1), 0.5)], axis=-1)
    err = np.abs(bake.colour - truth).max(axis=-1)
    inner = bake.weight >= 1.0
    assert inner.sum() > 0.2 * tm.chart.sum()
    assert np.median(err[inner]) < 0.005 and np.percentile(err[inner], 99) < 0.03
    # no occluder's colour in a fully weighted texel (the chart's outermost ring may mix in a
    # bilinear half pixel of the photo's background where the mesh ends)
    ring = cv2.distanceTransform(tm.chart.astype(np.uint8), cv2.DIST_L2, 5) < 1.5
    assert np.all(err[inner & ~ring] < 0.1)
    # seen means facing the camera
    assert np.all(bake.cosine[seen] > 0) and np.all(bake.weight[~seen] == 0)
    assert np.all((bake.weight >= 0) & (bake.weight <= 1))


def test_photo_mode_keeps_the_light(scene):
    """Without the irradiance the texture is the photo's colour: albedo times shading."""
    lit, bake, tm, lay = scene["lit"], scene["bake"], scene["tm"], scene["lay"]
    np.testing.assert_array_equal(lit.seen, bake.seen)
    truth = np.concatenate([_texel_uv(SIZE), np.full((SIZE, SIZE, 1), 0.5)], axis=-1)
    shading = texture.at_texels(tm, lay.triangles, scene["irr"])
    inner = lit.weight >= 1.0
    err = np.abs(lit.colour - truth * shading).max(axis=-1)[inner]
    assert np.median(err) < 0.005 and np.percentile(err, 99) < 0.03
    assert np.std(shading[inner]) > 0.02            # the light does vary over the face


def test_hidden_texels_are_filled_from_their_mirror_texels(scene):
    bake, tm, lay, model = scene["bake"], scene["tm"], scene["lay"], scene["model"]
    fallback = np.zeros((SIZE, SIZE, 3))
    fallback[..., 2] = 1.0                                            # pure blue
    filled = texture.fill(bake.colour, bake.weight, texture.mirror_texels(tm, lay,
                                                                          model.mean_shape),
                          fallback)
    w = bake.weight
    mirror_w = w[:, ::-1]                                             # column j <-> S - 1 - j
    nbr = np.minimum.reduce([np.roll(mirror_w, s, axis=a) for a in (0, 1) for s in (-1, 1)]
                            + [mirror_w])
    hidden_mirrored = tm.chart & (w == 0) & (nbr >= 1.0)
    assert hidden_mirrored.sum() > 50
    uv = _texel_uv(SIZE)
    expected = np.stack([1 - uv[..., 0], uv[..., 1], np.full((SIZE, SIZE), 0.5)], axis=-1)
    err = np.abs(filled - expected).max(axis=-1)[hidden_mirrored]
    assert np.percentile(err, 95) < 0.03
    # hidden on both sides: the fallback
    both = tm.chart & (w == 0) & (mirror_w == 0)
    both &= np.minimum.reduce([np.roll(np.roll(mirror_w, a, 0), b, 1) == 0
                               for a in (-1, 0, 1) for b in (-1, 0, 1)])
    if both.any():
        np.testing.assert_allclose(filled[both], fallback[both], atol=1e-6)
    # seen texels keep their own sample
    inner = w >= 1.0
    np.testing.assert_allclose(filled[inner], bake.colour[inner], atol=1e-6)


def test_redrawn_texture_matches_the_photo_and_a_wrong_one_does_not(scene):
    bake, tm, lay, model, one = (scene[k] for k in ("bake", "tm", "lay", "model", "one"))
    filled = texture.fill(bake.colour, bake.weight,
                          texture.mirror_texels(tm, lay, model.mean_shape),
                          texture.at_texels(tm, lay.triangles, np.full((model.n_vertices, 3), .5)))
    tex8 = (np.clip(texture.pad_chart(filled, tm.chart), 0, 1) * 255 + 0.5).astype(np.uint8)
    out = scene["crop_render"]
    tri_id = np.asarray(out["tri_id"][0])
    target = np.asarray(out["colour"][0])
    # away from silhouettes (where hidden texels take the grey fallback)
    mask = cv2.erode((tri_id >= 0).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    redrawn = texture.render_textured(one["screen"], lay.triangles, lay.corner_coords, tri_id,
                                      tex8, scene["irr"])
    assert texture.psnr(redrawn, target, mask) > 30
    wrong = texture.render_textured(one["screen"], lay.triangles, lay.corner_coords, tri_id,
                                    tex8[::-1], scene["irr"])
    assert texture.psnr(wrong, target, mask) < 20


def test_fill_blend_weights():
    colour = np.full((4, 4, 3), 0.2)
    weight = np.zeros((4, 4))
    weight[:, :2] = 1.0                     # left half seen
    weight[0, 0] = 0.5
    mirror_xy = np.stack(np.meshgrid(np.arange(4)[::-1], np.arange(4)), axis=-1).astype(float)
    fallback = np.full((4, 4, 3), 0.8)
    out = texture.fill(colour, weight, mirror_xy, fallback)
    np.testing.assert_allclose(out[1, 0], 0.2)               # seen
    np.testing.assert_allclose(out[1, 3], 0.2)               # hidden, mirror (1, 0) seen
    np.testing.assert_allclose(out[0, 3], 0.5 * 0.2 + 0.5 * 0.8)   # mirror half seen
    np.testing.assert_allclose(out[0, 0], 0.5 * 0.2 + 0.5 * 0.8)   # half seen, mirror hidden
    w2 = np.zeros((4, 4))
    np.testing.assert_allclose(texture.fill(colour, w2, mirror_xy, fallback), fallback)


def test_pad_chart_average_and_psnr():
    chart = np.zeros((6, 6), bool)
    chart[2:4, 2:4] = True
    img = np.zeros((6, 6, 3))
    img[2, 2], img[2, 3], img[3, 2], img[3, 3] = 0.1, 0.2, 0.3, 0.4
    out = texture.pad_chart(img, chart)
    np.testing.assert_allclose(out[chart], img[chart])
    np.testing.assert_allclose(out[0, 0], 0.1)
    np.testing.assert_allclose(out[5, 5], 0.4)
    np.testing.assert_allclose(out[0, 5], 0.2)
    a, b = np.full((2, 2, 3), 0.2), np.full((2, 2, 3), 0.6)
    wa, wb = np.array([[1.0, 0.0], [1.0, 0.0]]), np.array([[3.0, 0.0], [0.0, 0.0]])
    avg, total = texture.average([a, b], [wa, wb])
    np.testing.assert_allclose(avg[0, 0], 0.5)
    np.testing.assert_allclose(avg[1, 0], 0.2)
    np.testing.assert_allclose(avg[0, 1], 0.0)
    np.testing.assert_allclose(total, [[4, 0], [1, 0]])
    assert texture.psnr(np.zeros((3, 3)), np.full((3, 3), 0.1)) == pytest.approx(20.0)
    m = np.zeros((3, 3), bool)
    m[0, 0] = True
    assert texture.psnr(np.zeros((3, 3)), np.eye(3) * 0.01, m) == pytest.approx(40.0)
