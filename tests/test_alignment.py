"""Deep3DFaceRecon alignment: POS, resize + crop, point maps, paste back."""
import numpy as np
import pytest

from facerecon_jax.photo import alignment as al
from facerecon_jax.photo.detection import five_from_68

H, W = 300, 400
S_PLANTED = 120.0                       # pixels per model unit (decimetre)
T_PLANTED = np.array([215.3, 160.7])    # image position of the model origin, y up


def _pattern(u, v):
    """A smooth RGB pattern in [0.1, 0.9] over model-plane coordinates (u right, v up)."""
    return np.stack([0.5 + 0.4 * np.sin(3 * u + 1) * np.cos(2 * v),
                     0.5 + 0.4 * np.cos(2.5 * v - 0.3),
                     0.5 + 0.3 * np.sin(2 * u + 3 * v)], -1)


def _model_coords(x, row, s=S_PLANTED, t=T_PLANTED, h=H):
    """Image pixel (x, row y down) -> model-plane (u, v) under the planted similarity."""
    return (x - t[0]) / s, ((h - 1 - row) - t[1]) / s


def _planted(ref5, s=S_PLANTED, t=T_PLANTED):
    """Image of the pattern under the planted similarity, and the 5 reference points mapped with
    it (orthographic, no rotation), y down."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    img = np.round(_pattern(*_model_coords(xx, yy, s, t)) * 255).astype(np.uint8)
    up = s * ref5[:, :2] + t
    return img, np.stack([up[:, 0], H - 1 - up[:, 1]], axis=1)


@pytest.fixture(scope="module")
def ref5(default_model):
    return al.reference_points(default_model)


def _pos_interleaved(p2, p3):
    """Independent solve: the 2N x 8 system with x and y equations interleaved row by row."""
    n = len(p2)
    a = np.zeros((2 * n, 8))
    a[0::2, :3], a[0::2, 3] = p3, 1.0
    a[1::2, 4:7], a[1::2, 7] = p3, 1.0
    k = np.linalg.lstsq(a, p2.reshape(-1), rcond=None)[0]
    return k[[3, 7]], 0.5 * (np.linalg.norm(k[:3]) + np.linalg.norm(k[4:7]))


def test_reference_points(default_model, ref5):
    assert ref5.shape == (5, 3)
    lm = np.asarray(default_model.mean_shape)[np.asarray(default_model.landmarks)]
    np.testing.assert_allclose(ref5[0], 0.5 * (lm[36] + lm[39]), atol=1e-7)
    np.testing.assert_allclose(ref5[2], lm[30], atol=1e-7)
    assert ref5[0, 0] < ref5[1, 0] and ref5[3, 0] < ref5[4, 0]          # image-left first
    assert ref5[0, 1] > ref5[2, 1] > ref5[3, 1]                           # y up: eyes on top
    # decimetres: eyes ~6 cm apart
    assert 0.5 < ref5[1, 0] - ref5[0, 0] < 0.8


def test_pos_matches_independent_solve(rng):
    for n in (5, 9):
        p3 = rng.normal(size=(n, 3))
        p2 = rng.normal(size=(n, 2)) * 50 + 100
        t, s = al.pos(p2, p3)
        t2, s2 = _pos_interleaved(p2, p3)
        np.testing.assert_allclose(t, t2, rtol=1e-10, atol=1e-9)
        assert s == pytest.approx(s2, rel=1e-10)


def test_pos_coplanar_similarity_closed_form(rng):
    p3 = np.concatenate([rng.normal(size=(7, 2)), np.zeros((7, 1))], axis=1)
    ang, s, t = 0.3, 87.5, np.array([40.0, -12.5])
    rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    p2 = s * p3[:, :2] @ rot.T + t
    t_fit, s_fit = al.pos(p2, p3)
    assert s_fit == pytest.approx(s, rel=1e-10)
    np.testing.assert_allclose(t_fit, t, atol=1e-9)
    t2, s2 = _pos_interleaved(p2, p3)
    assert s2 == pytest.approx(s, rel=1e-10)


def test_align_recovers_planted_similarity_and_pixels(ref5):
    img, lm = _planted(ref5)
    crop, a = al.align(img, lm, ref5)
    assert crop.shape == (224, 224, 3) and crop.dtype == np.uint8
    assert a.scale == pytest.approx(102.0 / S_PLANTED, rel=1e-9)
    assert (a.tx, a.ty) == pytest.approx(tuple(T_PLANTED), abs=1e-8)
    assert (a.w0, a.h0) == (W, H)
    assert (a.width, a.height) == (int(W * a.scale), int(H * a.scale))
    # the model origin lands at the crop centre
    origin = al.image_to_crop(np.array([[T_PLANTED[0], H - 1 - T_PLANTED[1]]]), a)[0]
    assert np.all(np.abs(origin - 112) < 2)
    # every crop pixel shows the pattern at crop_to_image of its position
    g = np.stack(np.meshgrid(np.arange(224.0), np.arange(224.0)), -1)     # (row, col, [x, y])
    p = al.crop_to_image(g, a)
    expect = _pattern(*_model_coords(p[..., 0], p[..., 1])) * 255
    inside = (p[..., 0] > 2) & (p[..., 0] < W - 3) & (p[..., 1] > 2) & (p[..., 1] < H - 3)
    err = np.abs(crop - expect)[inside]
    assert inside.mean() > 0.9
    assert err.mean() < 1.0 and err.max() < 4
    # 68 points give the 5 Deep3DFaceRecon points
    lm68 = np.zeros((68, 2))
    lm68[[36, 39]] = lm[0] + [[-5, 1], [5, -1]]
    lm68[[42, 45]] = lm[1] + [[-4, 0], [4, 0]]
    lm68[[30, 48, 54]] = lm[2:]
    np.testing.assert_allclose(five_from_68(lm68), lm, atol=1e-12)
    crop68, a68 = al.align(img, lm68, ref5)
    assert a68 == a and np.array_equal(crop68, crop)


def test_trans_params_round_trip(ref5):
    img, lm = _planted(ref5)
    _, a = al.align(img, lm, ref5)
    arr = a.to_array()
    assert arr.shape == (5,) and arr.dtype == np.float64
    np.testing.assert_allclose(arr, [W, H, 102.0 / S_PLANTED, *T_PLANTED], rtol=1e-9)
    assert al.Alignment.from_array(arr) == a
    with pytest.raises(ValueError, match="5 numbers"):
        al.Alignment.from_array(arr[:4])


def test_point_maps_round_trip(rng):
    for params in ([W, H, 0.85, 215.3, 160.7], [640, 480, 2.37, 20.0, 470.0],
                   [333, 517, 0.31, 300.2, -10.0]):
        a = al.Alignment.from_array(params)
        pts = rng.uniform(-50, 600, size=(40, 2))
        np.testing.assert_allclose(al.crop_to_image(al.image_to_crop(pts, a), a), pts,
                                   atol=1e-6)
        np.testing.assert_allclose(al.image_to_crop(al.crop_to_image(pts, a), a), pts,
                                   atol=1e-6)
    assert al.Alignment.from_array([640, 480, 2.37, 20.0, 470.0]).left < 0   # truncation case


def test_window_crop_matches_full_resize(ref5):
    img, _ = _planted(ref5)
    for params in ([W, H, 0.85, 215.3, 160.7], [W, H, 1.7, 215.3, 160.7],
                   [W, H, 0.3, 215.3, 160.7], [W, H, 1.3, 20.0, 280.0]):
        a = al.Alignment.from_array(params)
        full = al.crop_image_reference(img, a).astype(int)
        assert np.array_equal(al.crop_image(img, a, method="full"), full)
        diff = np.abs(al.crop_image(img, a, method="window") - full)
        assert diff.max() <= 2 and (diff > 0).mean() < 0.03


def test_deep3d_landmark_formula_offset(ref5, rng):
    img, lm = _planted(ref5)
    _, a = al.align(img, lm, ref5)
    for alignment, pts in ((a, lm), (al.Alignment.from_array([640, 480, 2.37, 20.0, 470.0]),
                                     rng.uniform(0, 480, size=(20, 2)))):
        diff = al.image_to_crop(pts, alignment) - al.deep3d_crop_landmarks(pts, alignment)
        np.testing.assert_allclose(diff, al.deep3d_landmark_offset(pts, alignment), atol=1e-9)
        assert np.abs(diff).max() < 2.5


def _blob_centroid(img, centre, radius=6):
    x0, y0 = np.round(centre).astype(int) - radius
    win = img[y0:y0 + 2 * radius + 1, x0:x0 + 2 * radius + 1].astype(np.float64)
    win = np.clip(win - np.median(img), 0, None)
    yy, xx = np.mgrid[0:win.shape[0], 0:win.shape[1]]
    return np.array([(win * xx).sum() / win.sum() + x0, (win * yy).sum() / win.sum() + y0])


def test_landmarks_stay_on_their_pixels_through_crop_and_paste_back(ref5):
    """Gaussian dots planted at the landmarks: found at image_to_crop(landmarks) in the crop
    and back at the landmarks after paste_back, within 0.5 px."""
    _, lm = _planted(ref5)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    dots = sum(np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 3.0 ** 2)) for x, y in lm)
    img = np.repeat(np.round(20 + 200 * dots)[..., None], 3, axis=2).astype(np.uint8)
    crop, a = al.align(img, lm, ref5)
    lm_crop = al.image_to_crop(lm, a)
    for p, q in zip(lm_crop, lm):
        assert np.linalg.norm(_blob_centroid(crop[..., 0], p) - p) < 0.5
    back = al.paste_back(np.zeros_like(img), crop, np.ones((224, 224)), a)
    np.testing.assert_allclose(al.crop_to_image(lm_crop, a), lm, atol=1e-9)
    for q in lm:
        assert np.linalg.norm(_blob_centroid(back[..., 0], q) - q) < 0.5


def test_paste_back_of_the_crop_reproduces_the_original(ref5):
    img, lm = _planted(ref5)
    crop, a = al.align(img, lm, ref5)
    out = al.paste_back(img, crop, np.ones((224, 224)), a)
    assert out.shape == img.shape and out.dtype == np.uint8
    c = al.crop_to_image(np.array([[0.0, 0.0], [223.0, 223.0]]), a)
    x0, y0 = np.ceil(c[0]).astype(int) + 3
    x1, y1 = np.floor(c[1]).astype(int) - 3
    x0, y0, x1, y1 = max(x0, 3), max(y0, 3), min(x1, W - 3), min(y1, H - 3)
    err = np.abs(out[y0:y1, x0:x1].astype(int) - img[y0:y1, x0:x1])
    assert (y1 - y0) * (x1 - x0) > 0.4 * H * W
    assert err.mean() < 3 and err.max() < 12
    # outside the crop the original is untouched; alpha 0 changes nothing
    assert np.array_equal(out[:, :int(c[0, 0]) - 1], img[:, :int(c[0, 0]) - 1])
    assert np.array_equal(al.paste_back(img, crop, np.zeros((224, 224)), a), img)
    # float render in [0, 1], half alpha: halfway between
    grey = np.full((224, 224, 3), 1.0, np.float32)
    half = al.paste_back(img, grey, np.full((224, 224), 0.5), a)
    mid = (y0 + y1) // 2, (x0 + x1) // 2
    assert abs(int(half[mid][0]) - (255 + int(img[mid][0])) / 2) <= 1


def test_degenerate_landmarks_raise(ref5):
    with pytest.raises(ValueError, match="degenerate"):
        al.fit_alignment(np.full((5, 2), 10.0), ref5, (100, 100))
    with pytest.raises(ValueError):
        al.fit_alignment(np.zeros((7, 2)), ref5, (100, 100))
