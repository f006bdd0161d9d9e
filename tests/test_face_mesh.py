"""MediaPipe's face mesh as the landmark detector (facerecon_jax.photo.face_mesh): the crop's
geometry, the 68-point correspondence, the network on rendered faces of known landmarks, and
fetching the files (`mediapipe_files`; the registry's wheel stood in for by a local one).
"""
import subprocess
import zipfile

import numpy as np
import pytest

from facerecon_jax.photo import detection, face_mesh, mediapipe_files


def test_correspondence_is_68_distinct_mesh_points():
    idx = np.asarray(face_mesh.IBUG68)
    assert idx.shape == (68,) and len(set(idx.tolist())) == 68
    assert idx.min() >= 0 and idx.max() < 468
    assert face_mesh.IBUG68[36] == face_mesh.EYE_LINE[0] and face_mesh.IBUG68[45] == \
        face_mesh.EYE_LINE[1]


def test_crop_maps_back_to_the_image():
    """A dot drawn at a known pixel is found in the turned, scaled crop, and the crop's
    coordinates map back onto that pixel."""
    img = np.zeros((300, 400, 3), np.uint8)
    dot = np.array([231.0, 140.0])
    img[140, 231] = 255
    angle = np.radians(23.0)
    u = np.array([np.cos(angle), np.sin(angle)])
    m = face_mesh.crop_matrix(np.array([220.0, 150.0]), 96.0, u)   # 2 crop px per image px
    crop = face_mesh._crop(img, m).astype(float).sum(-1)
    cy, cx = np.unravel_index(np.argmax(crop), crop.shape)
    # the centre of mass of the blurred dot, in crop units (pixel i spans i .. i + 1)
    ys, xs = np.mgrid[cy - 3:cy + 4, cx - 3:cx + 4]
    wgt = crop[cy - 3:cy + 4, cx - 3:cx + 4]
    at = np.array([(xs * wgt).sum(), (ys * wgt).sum()]) / wgt.sum() + 0.5
    back = face_mesh._to_image(at[None], m)[0]
    assert np.linalg.norm(back - dot) < 0.3
    # the crop's x axis runs along u: a step along u moves the dot along the crop's x
    m2 = face_mesh.crop_matrix(np.array([220.0, 150.0]) - 10 * u, 96.0, u)
    crop2 = face_mesh._crop(img, m2).astype(float).sum(-1)
    cy2, cx2 = np.unravel_index(np.argmax(crop2), crop2.shape)
    assert abs((cx2 - cx) - 20) <= 1 and abs(cy2 - cy) <= 1


def test_crop_frame_of_a_turned_box():
    angle = np.radians(-30.0)
    u = np.array([np.cos(angle), np.sin(angle)])
    v = np.array([-u[1], u[0]])
    corners = np.array([c + 40 * a * u + 25 * b * v for a in (-1, 1) for b in (-1, 1)
                        for c in [np.array([100.0, 80.0])]])
    centre, side, axis = face_mesh.crop_frame(corners, 1.5, eyes=(corners[0], corners[2]))
    np.testing.assert_allclose(centre, [100, 80], atol=1e-9)
    np.testing.assert_allclose(axis, u, atol=1e-9)
    assert side == pytest.approx(1.5 * 80)


@pytest.fixture(scope="module")
def rendered():
    """Four benchmark pictures (2 people x 2, cooperative light) and their true landmarks."""
    from facerecon_jax.eval import evaluation
    people = evaluation.make_people(2, 7)
    return evaluation.make_benchmark(people, 2, "cooperative", 7)


def test_mesh_points_follow_the_true_landmarks(rendered):
    mesh_det = detection.FaceDetector(landmarks="mesh")
    dlib_det = detection.FaceDetector(landmarks="dlib")
    errs, dlib_errs = [], []
    for img, truth in zip(rendered.images, rendered.landmarks):
        face = detection.select_faces(dlib_det.detect(img), "largest")[0]
        pts, score = mesh_det.mesh.mesh_from(img, face.landmarks68)
        assert score > 0.9 and pts.shape == (468, 3)
        lm = mesh_det.landmarks_in_box(img, face.box)
        np.testing.assert_allclose(lm, pts[list(face_mesh.IBUG68), :2])
        iod = np.linalg.norm(truth[36:42].mean(0) - truth[42:48].mean(0))
        errs.append(np.linalg.norm(lm[17:] - truth[17:], axis=1).mean() / iod)
        dlib_errs.append(np.linalg.norm(face.landmarks68[17:] - truth[17:], axis=1).mean() / iod)
    # inner points within ~0.1 inter-ocular distances of the model's landmark vertices (the
    # two annotations differ by a few hundredths where they name different points)
    assert max(errs) < 0.12, errs
    assert np.mean(errs) < np.mean(dlib_errs) + 0.02, (errs, dlib_errs)


def test_no_face_scores_low():
    rng = np.random.default_rng(3)
    noise = rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)
    start = np.array([[128 + 40 * np.cos(t), 128 + 50 * np.sin(t)]
                      for t in np.linspace(0, 2 * np.pi, 68)])
    start[36:42], start[42:48] = [100, 110], [156, 110]
    _, score = face_mesh.FaceMesh(passes=1).mesh_from(noise, start)
    assert score < 0.5


def _fake_pip(contents, ok=True):
    def run(cmd, capture_output, text):
        dest = cmd[cmd.index("-d") + 1]
        if ok:
            with zipfile.ZipFile(f"{dest}/mediapipe-0.10.21-cp311-cp311-x.whl", "w") as zf:
                for member in mediapipe_files.MEMBERS:
                    zf.writestr(member, contents + member.encode())
        return subprocess.CompletedProcess(cmd, 0 if ok else 1, "",
                                           "" if ok else "ERROR: no matching distribution")
    return run


def test_fetch_reads_the_files_out_of_the_wheel(tmp_path, monkeypatch):
    monkeypatch.setenv("FACERECON_CACHE", str(tmp_path))
    monkeypatch.setattr(mediapipe_files, "_installed", lambda member: None)
    monkeypatch.setattr(mediapipe_files.subprocess, "run", _fake_pip(b"planted "))
    paths = mediapipe_files.fetch()
    for member, path in zip(mediapipe_files.MEMBERS, paths):
        assert path == mediapipe_files.cached_file(member)
        assert path.read_bytes() == b"planted " + member.encode()
    assert sorted(p.name for p in paths[0].parent.iterdir()) == sorted(p.name for p in paths)
    # present: not fetched again
    monkeypatch.setattr(mediapipe_files.subprocess, "run", _fake_pip(b"other", ok=False))
    path = mediapipe_files.network_file(mediapipe_files.FACE_DETECTOR)
    assert path.read_bytes() == b"planted " + mediapipe_files.FACE_DETECTOR.encode()
    with pytest.raises(ValueError, match="unknown MediaPipe file"):
        mediapipe_files.network_file("mediapipe/other.tflite")


def test_fetch_failure_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("FACERECON_CACHE", str(tmp_path))
    monkeypatch.setattr(mediapipe_files.subprocess, "run", _fake_pip(b"", ok=False))
    with pytest.raises(mediapipe_files.MediaPipeFileError) as e:
        mediapipe_files.fetch()
    msg = str(e.value)
    folder = mediapipe_files.cached_file(mediapipe_files.FACE_LANDMARK).parent
    assert "no matching distribution" in msg and str(folder) in msg
    assert "--config.landmarks=dlib" in msg
    assert not any(mediapipe_files.cached_file(m).exists() for m in mediapipe_files.MEMBERS)
