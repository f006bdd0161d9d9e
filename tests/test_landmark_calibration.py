"""landmark_calibration.detector_gain: a planted detector that keeps a known share of each
face's deviation, seen through random similarities."""
import numpy as np

from facerecon_jax.eval import landmark_calibration


def _moved(points, rng):
    a, s = rng.uniform(-0.3, 0.3), rng.uniform(0.8, 1.3)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return points @ rot.T * s + rng.uniform(-20, 20, 2)


def test_detector_gain_recovers_a_planted_slope():
    rng = np.random.default_rng(0)
    ref = rng.uniform(0, 100, (68, 2))
    ref[36], ref[45] = [20.0, 40.0], [80.0, 40.0]            # inter-ocular distance 60
    dev = rng.normal(0, 3.0, (400, 68, 2))                      # 0.05 IOD per coordinate
    noise = rng.normal(0, 1.5, dev.shape)
    truth = np.stack([_moved(ref + d, rng) for d in dev])
    det = np.stack([_moved(ref + 0.5 * d + n + [1.0, -2.0], rng) for d, n in zip(dev, noise)])
    g = landmark_calibration.detector_gain(det, truth)
    # the similarity removes 4 of the 136 degrees of freedom; the rest keeps its slope
    assert abs(g["gain"] - 0.5) < 0.03, g
    assert abs(g["residual"] - np.sqrt(2) * 1.5 / 60) < 0.004, g
    assert abs(g["truth_spread"] - np.sqrt(2) * 3.0 / 60) < 0.006, g
    same = landmark_calibration.detector_gain(truth, truth)
    assert abs(same["gain"] - 1) < 1e-9 and same["residual"] < 1e-9
    # a detector that returns one shape whatever the face
    fixed = np.stack([_moved(ref, rng) for _ in dev])
    assert abs(landmark_calibration.detector_gain(fixed, truth)["gain"]) < 1e-6


def test_shared_error_fraction_recovers_a_planted_person_bias():
    """Detections = truth + an error every picture of a person shares (variance sb^2) + an
    error of each picture (sr^2) + one offset for every face, each picture seen through its
    own similarity: rho = sb^2 / (sb^2 + sr^2), whatever the offset and the similarities."""
    rng = np.random.default_rng(1)
    ref = rng.uniform(0, 100, (68, 2))
    ref[36], ref[45] = [20.0, 40.0], [80.0, 40.0]
    offset = rng.normal(0, 2.0, (68, 2))
    for sb, sr, rho in ((1.0, 1.0, 0.5), (0.0, 1.5, 0.0), (1.5, 0.5, 0.9)):
        truth, det, person = [], [], []
        for p in range(60):
            face = ref + rng.normal(0, 3.0, (68, 2))
            bias = rng.normal(0, sb, (68, 2))
            for _ in range(4):
                t = _moved(face, rng)
                truth.append(t)
                det.append(_moved(face + offset + bias + rng.normal(0, sr, (68, 2)), rng))
                person.append(p)
        out = landmark_calibration.shared_error_fraction(np.stack(det), np.stack(truth),
                                                         np.array(person))
        assert abs(out["rho"] - rho) < 0.06, (sb, sr, out)
        assert out["pictures"] == 240 and out["pairs_same"] == 60 * 6
    noise = np.full(68, 2.0)
    noise[:17] = 4.0                                       # the contour weighed by its scatter
    w = landmark_calibration.shared_error_fraction(np.stack(det), np.stack(truth),
                                                   np.array(person), noise)
    assert abs(w["rho"] - 0.9) < 0.06, w
