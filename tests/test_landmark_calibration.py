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
