"""Skin probability (naive Bayes, self-supervised from landmarks + a published-statistics prior)
and the attention mask A = 1 where P > 0.5 else P."""
import numpy as np
import pytest

from facerecon_jax.photo import skin

SKIN_RGB = (205, 150, 120)
BLUE_RGB = (40, 70, 200)
GREEN_RGB = (50, 170, 70)


@pytest.fixture(scope="module")
def astronaut_landmarks():
    import skimage.data
    from facerecon_jax.photo import detection
    img = skimage.data.astronaut()
    faces = detection.select_faces(detection.FaceDetector().detect_hog(img), "largest")
    assert faces, "no face found in the astronaut photo"
    return img, faces[0].landmarks68


def _hull(lm, grow):
    import cv2
    pts = np.concatenate([lm, skin.face_geometry(lm)["forehead_top"]]).astype(np.float32)
    return skin._scaled(cv2.convexHull(pts).reshape(-1, 2).astype(np.float64), grow)


def _planted(lm, rng, shape=(512, 512)):
    """Skin colour over the grown face hull, dark eyes, red mouth; blue and green halves
    outside (each with noise).  Returns (image, skin pixels mask, blue/green pixels mask)."""
    h, w = shape
    img = np.empty((h, w, 3), np.float64)
    img[:, : w // 2] = BLUE_RGB
    img[:, w // 2:] = GREEN_RGB
    face = skin._fill((h, w), [_hull(lm, 1.1)])
    img[face] = SKIN_RGB
    eyes = skin._fill((h, w), [skin._scaled(lm[36:42], 1.3), skin._scaled(lm[42:48], 1.3)])
    mouth = skin._fill((h, w), [skin._scaled(lm[48:60], 1.1)])
    img[eyes] = (40, 30, 30)
    img[mouth] = (150, 40, 50)
    img += rng.normal(0, 6, size=img.shape)
    img = np.clip(np.round(img), 0, 255).astype(np.uint8)
    return img, face & ~eyes & ~mouth, ~skin._fill((h, w), [_hull(lm, 1.2)])


def test_planted_colour_populations(astronaut_landmarks, rng):
    _, lm = astronaut_landmarks
    img, skin_px, other_px = _planted(lm, rng)
    clf = skin.fit_skin_classifier(img, lm)
    assert clf.source == "image+prior" and clf.n_skin > 500 and clf.n_non_skin > 500
    p = skin.skin_probability(img, lm)
    assert p.shape == img.shape[:2] and p.dtype == np.float32
    assert np.all((p >= 0) & (p <= 1))
    assert p[skin_px].min() > 0.5
    assert p[other_px].max() < 0.5
    a = skin.attention_mask(p)
    assert a.shape == p.shape
    np.testing.assert_array_equal(a[p > 0.5], 1.0)
    np.testing.assert_array_equal(a[p <= 0.5], p[p <= 0.5])
    # the regions: positives on the skin colour only, negatives outside the face
    r = skin.skin_regions(lm, img.shape[:2])
    assert r.skin.sum() > 1000 and not np.any(r.skin & r.non_skin)
    assert np.mean(skin_px[r.skin]) > 0.97


def test_astronaut_cheeks_and_background(astronaut_landmarks):
    img, lm = astronaut_landmarks
    p = skin.skin_probability(img, lm)
    cheeks = skin._fill(img.shape[:2], [skin._scaled(lm[[1, 2, 3, 4, 48, 31, 40, 41, 36]], 0.85),
                                        skin._scaled(lm[[15, 14, 13, 12, 54, 35, 47, 46, 45]],
                                                     0.85)])
    assert p[cheeks].mean() > 0.7
    assert p[:60, :60].mean() < 0.3
    # the orange suit (lower middle) is not skin either
    assert p[420:500, 40:120].mean() < 0.3


def test_prior_fallback(rng):
    img = np.zeros((40, 60, 3), np.uint8)
    img[:, :20] = SKIN_RGB
    img[:, 20:40] = BLUE_RGB
    img[:, 40:] = GREEN_RGB
    clf = skin.fit_skin_classifier(img)
    assert clf.source == "prior"
    p = clf.probability(img)
    assert p[:, :20].min() > 0.5 and p[:, 20:].max() < 0.5
    # landmarks whose regions fall off the image: the prior again
    far = rng.uniform(1000, 1100, size=(68, 2))
    assert skin.fit_skin_classifier(img, far).source == "prior"
    np.testing.assert_allclose(skin.skin_probability(img, far), p)
    with pytest.raises(ValueError, match="68"):
        skin.skin_probability(img, np.zeros((5, 2)))


def test_prior_matches_published_box():
    """The prior's skin samples are exactly the grid colours inside Chai & Ngan's box."""
    x, y = skin._prior_samples()
    inside = ((x[:, 1] >= 133) & (x[:, 1] <= 173) & (x[:, 2] >= 77) & (x[:, 2] <= 127)
              & (x[:, 0] >= 40) & (x[:, 0] <= 250))
    np.testing.assert_array_equal(y == 1, inside)
    assert 100 < inside.sum() < len(y) / 2


def test_posterior_equals_predict_proba(astronaut_landmarks):
    img, lm = astronaut_landmarks
    clf = skin.fit_skin_classifier(img, lm)
    feats = skin.ycrcb(img).reshape(-1, 3)[::97]
    np.testing.assert_allclose(skin.posterior(clf.model, feats, chunk=500),
                               clf.model.predict_proba(feats)[:, 1], atol=1e-5)


def test_attention_mask_on_jax_arrays():
    import jax.numpy as jnp
    p = jnp.array([[0.1, 0.5, 0.51, 0.9]], jnp.float32)
    a = skin.attention_mask(p)
    np.testing.assert_allclose(np.asarray(a), [[0.1, 0.5, 1.0, 1.0]])
