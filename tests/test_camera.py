import jax.numpy as jnp
import numpy as np

from facerecon_jax.geometry import camera as cam


def _axis_rotation(axis, a):
    c, s = np.cos(a), np.sin(a)
    if axis == 0:
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == 1:
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def test_rotation_is_orthonormal_with_det_one(rng):
    angles = rng.uniform(-np.pi, np.pi, (64, 3)).astype(np.float32)
    r = np.asarray(cam.euler_rotation(jnp.asarray(angles)), np.float64)
    eye = np.einsum("bij,bkj->bik", r, r)
    np.testing.assert_allclose(eye, np.broadcast_to(np.eye(3), eye.shape), atol=1e-5)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-5)


def test_rotation_is_rz_ry_rx(rng):
    a = rng.uniform(-1, 1, 3)
    expected = _axis_rotation(2, a[2]) @ _axis_rotation(1, a[1]) @ _axis_rotation(0, a[0])
    np.testing.assert_allclose(np.asarray(cam.euler_rotation(jnp.asarray(a, jnp.float32))),
                               expected, atol=1e-6)
    # A positive yaw (about y) turns the nose (+z) towards +x.
    nose = cam.pose(jnp.array([[0.0, 0.0, 1.0]]), cam.euler_rotation(jnp.array([0.0, 0.3, 0.0])),
                    jnp.zeros(3))
    assert float(nose[0, 0]) > 0


def test_projection_matches_pinhole_and_round_trips(rng):
    c = cam.Camera()
    pts = rng.uniform(-1, 1, (100, 3)).astype(np.float32)
    uvz = np.asarray(cam.project(jnp.asarray(pts), c))
    zc = 10.0 - pts[:, 2]
    np.testing.assert_allclose(uvz[:, 0], 1015 * pts[:, 0] / zc + 112, rtol=1e-5)
    np.testing.assert_allclose(uvz[:, 1], 1015 * pts[:, 1] / zc + 112, rtol=1e-5)
    back = np.asarray(cam.unproject(jnp.asarray(uvz), c))
    np.testing.assert_allclose(back, pts, atol=1e-5)


def test_image_rows_run_down():
    c = cam.Camera()
    # A point above the optical axis (+y, up) lands in an upper row (smaller y_img).
    s = np.asarray(cam.to_screen(jnp.array([[0.0, 0.5, 0.0], [0.0, 0.0, 0.0]]), c))
    assert s[0, 1] < s[1, 1]
    np.testing.assert_allclose(s[1, :2], [112.0, 223 - 112.0])
    xy = jnp.array([[10.0, 20.0], [100.5, 3.0]])
    np.testing.assert_allclose(cam.image_to_yup(cam.yup_to_image(xy, 224), 224), xy)
    np.testing.assert_allclose(cam.yup_to_image(xy, 224)[:, 1], 223 - np.asarray(xy)[:, 1])


def test_scaled_camera_keeps_field_of_view():
    c = cam.Camera().scaled(112)
    p = jnp.array([[0.3, -0.2, 0.1]])
    np.testing.assert_allclose(np.asarray(cam.project(p, c))[0, :2],
                               (np.asarray(cam.project(p, cam.Camera()))[0, :2]) / 2, rtol=1e-5)


def test_resampled_camera_lines_up_with_a_resized_picture():
    """A point's pixel under the resampled camera is where resizing the picture moves the
    point's pixel under the original one: x' = (x + 0.5) s - 0.5 on both axes."""
    pts = jnp.asarray(np.random.default_rng(0).uniform(-0.8, 0.8, (20, 3)), jnp.float32)
    big = cam.Camera()
    for size in (112, 64, 448):
        s = size / big.width
        small = big.resampled(size)
        np.testing.assert_allclose(np.asarray(cam.to_screen(pts, small)[..., :2]),
                                   (np.asarray(cam.to_screen(pts, big)[..., :2]) + 0.5) * s - 0.5,
                                   rtol=1e-5, atol=1e-4)
