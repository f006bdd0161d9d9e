"""MediaPipe's BlazeFace (facerecon_jax.photo.blazeface): the anchors, the decoding and the
weighted suppression against planted outputs, and the network on rendered faces of known
landmarks, with and without an occluder dlib's detectors do not see through.
"""
import numpy as np
import pytest

from facerecon_jax.photo import blazeface, detection


def test_anchors_follow_the_ssd_layout():
    a = blazeface.anchors()
    assert a.shape == (896, 2)
    # 16 x 16 cells of stride 8, two anchors each, row-major; then 8 x 8 cells, six each
    np.testing.assert_allclose(a[0], a[1])
    np.testing.assert_allclose(a[0], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(a[2], [1.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(a[32], [0.5 / 16, 1.5 / 16])
    np.testing.assert_allclose(a[512:518], np.tile([0.5 / 8, 0.5 / 8], (6, 1)))
    np.testing.assert_allclose(a[-1], [7.5 / 8, 7.5 / 8])


def test_decode_a_planted_detection():
    raw = np.zeros((896, 16))
    logits = np.full(896, -10.0)
    k = 2 * (16 * 5 + 3)                                # cell (x 3, y 5) of the 16 x 16 grid
    logits[k] = 2.0
    raw[k, :4] = [6.4, -3.2, 32.0, 48.0]                # centre offset, width, height (px)
    raw[k, 4:6] = [-12.8, -12.8]                        # first keypoint
    boxes, keypoints, scores = blazeface.decode(raw[None], logits[None, :, None])
    assert len(scores) == 1 and scores[0] == pytest.approx(1 / (1 + np.exp(-2.0)))
    cx, cy = 3.5 / 16 + 0.05, 5.5 / 16 - 0.025
    np.testing.assert_allclose(boxes[0], [cx - 0.125, cy - 0.1875, cx + 0.125, cy + 0.1875])
    np.testing.assert_allclose(keypoints[0, 0], [3.5 / 16 - 0.1, 5.5 / 16 - 0.1])
    np.testing.assert_allclose(keypoints[0, 1], [3.5 / 16, 5.5 / 16])


def test_weighted_suppression_merges_overlaps_by_score():
    boxes = np.array([[0.1, 0.1, 0.5, 0.5], [0.12, 0.1, 0.52, 0.5], [0.7, 0.7, 0.9, 0.9]])
    keypoints = np.zeros((3, 6, 2))
    keypoints[1] += 0.3
    scores = np.array([0.9, 0.6, 0.8])
    b, k, s = blazeface.weighted_nms(boxes, keypoints, scores)
    assert s == [0.9, 0.8]
    np.testing.assert_allclose(b[0], (0.9 * boxes[0] + 0.6 * boxes[1]) / 1.5)
    np.testing.assert_allclose(k[0], np.full((6, 2), 0.6 * 0.3 / 1.5))
    np.testing.assert_allclose(b[1], boxes[2])


@pytest.fixture(scope="module")
def rendered():
    from facerecon_jax.eval import evaluation
    people = evaluation.make_people(1, 5)
    return evaluation.make_benchmark(people, 2, "cooperative", 5)


def test_finds_rendered_faces(rendered):
    bf = blazeface.BlazeFace()
    for img, truth in zip(rendered.images, rendered.landmarks):
        found = bf.detect(img)
        assert len(found) == 1 and found[0].score > 0.7
        x0, y0, x1, y1 = found[0].box
        inner = truth[17:].mean(0)
        assert x0 < inner[0] < x1 and y0 < inner[1] < y1
        iod = np.linalg.norm(truth[36:42].mean(0) - truth[42:48].mean(0))
        # keypoints 0 / 1: the person's right / left eye (the image's left / right)
        assert np.linalg.norm(found[0].keypoints[0] - truth[36:42].mean(0)) < 0.25 * iod
        assert np.linalg.norm(found[0].keypoints[1] - truth[42:48].mean(0)) < 0.25 * iod
    assert bf.detect(np.full((200, 200, 3), 128, np.uint8)) == []


def test_a_face_dlib_misses_is_found(rendered):
    """An occluder over the brows, eyes and nose hides the face from dlib's HOG and CNN;
    BlazeFace finds it and the face mesh places its points."""
    img = rendered.images[0].copy()
    truth = rendered.landmarks[0]
    covered = np.concatenate([truth[17:48], truth[30:31]])
    lo, hi = covered.min(0) - [25, 12], covered.max(0) + [25, 12]
    img[int(lo[1]):int(hi[1]), int(lo[0]):int(hi[0])] = [40, 160, 220]
    assert detection.FaceDetector(landmarks="dlib").detect(img) == []
    faces = detection.FaceDetector().detect(img)
    assert len(faces) == 1 and faces[0].detector == "blazeface"
    iod = np.linalg.norm(truth[36:42].mean(0) - truth[42:48].mean(0))
    err = np.linalg.norm(faces[0].landmarks68[48:] - truth[48:], axis=1).mean() / iod
    assert err < 0.2                                   # the mouth, below the occluder
