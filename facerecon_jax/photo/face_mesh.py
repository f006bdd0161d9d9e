"""MediaPipe's face mesh as the photo pipeline's landmark detector: 468 surface points regressed
by a small network from a 192 x 192 crop, of which the 68 iBUG 300-W points are taken.

Why: on the evaluation benchmark's pictures (docs/accuracy.md item 24) the mesh's points follow
a face's true landmarks far more closely than dlib's 68-point predictor: after a similarity and a
per-point bias (what the calibrated offsets absorb), their scatter about the truth is 0.019 /
0.030 / 0.038 inter-ocular distances on the inner points (cooperative / indoor / outdoor) against
dlib's 0.030 / 0.044 / 0.056, and they follow 91-93% of a face's deviation (dlib 64-79%).

The network is MediaPipe's ``face_landmark.tflite`` (Apache 2.0), run by our own JAX code
(`tflite_graph`); `mediapipe_files` finds or fetches the file.

Cropping follows MediaPipe's face pipeline: a square crop of 1.5x the face's extent, turned so
the eyes lie level (the line from mesh point 33 to 263), resized to 192 x 192, RGB in [0, 1].
The first crop comes from dlib's 68 points (their extent, grown to the mesh's, which reaches the
forehead), later ones from the mesh's own points (MediaPipe's tracking rule); points are mapped
back to image pixels (x right, y down, pixel centres at integers, as dlib's).
"""
from __future__ import annotations

import os
import pathlib
import threading
from typing import Tuple

import numpy as np

from facerecon_jax.photo import mediapipe_files

INPUT_SIZE = 192
CROP_SCALE = 1.5              # MediaPipe's face crop: 1.5x the landmarks' extent
EYE_LINE = (33, 263)          # mesh points whose line is turned level (outer eye corners)

# mesh point taken for each of the 68 iBUG points (0-based, iBUG order): jaw 0-16, brows 17-26,
# nose 27-35, eyes 36-47, outer lips 48-59, inner lips 60-67. The correspondence is by meaning;
# where the mesh's point and dlib's annotation differ, the calibrated 3D offsets
# (`landmark_embedding`, `landmark_offsets_ict_mesh.json`) learn where these points sit on the
# face model, as they do for dlib's.
IBUG68 = (162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389,
          71, 63, 105, 66, 107, 336, 296, 334, 293, 301,
          168, 197, 5, 4, 75, 97, 2, 326, 305,
          33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
          61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,
          78, 82, 13, 312, 308, 317, 14, 87)


def crop_frame(points: np.ndarray, scale: float = CROP_SCALE,
               eyes: Tuple[np.ndarray, np.ndarray] | None = None):
    """(centre (2,), side, unit x axis (2,)) of the square crop around `points` (N, 2) image
    pixels: the x axis along the eye line (`eyes`: left and right points in the image; default
    the mesh's 33 and 263), the side `scale` x the points' larger extent in that turned frame,
    centred on that extent's middle."""
    p = np.asarray(points, np.float64)
    a, b = (p[EYE_LINE[0]], p[EYE_LINE[1]]) if eyes is None else eyes
    u = np.asarray(b, np.float64) - np.asarray(a, np.float64)
    u = u / max(np.linalg.norm(u), 1e-9)
    v = np.array([-u[1], u[0]])
    q = np.stack([p @ u, p @ v], 1)
    lo, hi = q.min(0), q.max(0)
    mid = (lo + hi) / 2
    centre = mid[0] * u + mid[1] * v
    return centre, float(scale * np.max(hi - lo)), u


def frame_from_detection(box, keypoints, scale: float = CROP_SCALE):
    """MediaPipe's first face crop from a BlazeFace detection: the box's centre, `scale` x its
    longer side, turned so the line from the person's right eye (keypoint 0, the image's left)
    to the left eye lies level."""
    x0, y0, x1, y1 = box
    u = np.asarray(keypoints[1], np.float64) - np.asarray(keypoints[0], np.float64)
    u = u / max(np.linalg.norm(u), 1e-9)
    return (np.array([(x0 + x1) / 2, (y0 + y1) / 2]) - 0.5,
            float(scale * max(x1 - x0, y1 - y0)), u)


def crop_matrix(centre, side: float, u) -> np.ndarray:
    """(2, 3) affine map from crop pixels (0..192, centres at i + 0.5 / 192 of the side) to image
    pixels (centres at integers)."""
    u = np.asarray(u, np.float64)
    v = np.array([-u[1], u[0]])
    k = side / INPUT_SIZE
    origin = np.asarray(centre, np.float64) - side / 2 * (u + v)
    # crop pixel index i has its centre at (i + 0.5) in crop units
    return np.stack([k * u, k * v, origin + 0.5 * k * (u + v)], 1)


def _crop(image: np.ndarray, m: np.ndarray) -> np.ndarray:
    import cv2  # noqa: PLC0415
    return cv2.warpAffine(image, m, (INPUT_SIZE, INPUT_SIZE),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _to_image(points: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Network outputs (N, 468, 2) in crop units (0..192, edges at 0 and 192) to image pixels."""
    return (points - 0.5) @ m[:, :2].T + m[:, 2]


class FaceMesh:
    """MediaPipe's face landmark network (thread-safe; one instance per process is enough)."""

    def __init__(self, path: str | os.PathLike | None = None, passes: int = 2):
        self.path = (pathlib.Path(path) if path
                     else mediapipe_files.network_file(mediapipe_files.FACE_LANDMARK))
        self.passes = passes
        self._lock = threading.Lock()

    def _run(self, crops: np.ndarray):
        from facerecon_jax.photo import tflite_graph  # noqa: PLC0415
        graph, constants = tflite_graph.load(str(self.path), (INPUT_SIZE, INPUT_SIZE, 3), 2,
                                             "MediaPipe's face landmark network")
        x = np.asarray(crops, np.float32) / 255.0
        with self._lock:
            mesh, flag = tflite_graph.run(graph, constants, x)[:2]
        mesh = np.asarray(mesh, np.float64).reshape(len(crops), 468, 3)
        score = 1.0 / (1.0 + np.exp(-np.asarray(flag, np.float64).reshape(len(crops))))
        return mesh, score

    def mesh_from(self, image: np.ndarray, start: np.ndarray | None = None, *, frame=None):
        """(468 x 3 mesh points: image pixels x, y and the network's depth in image pixels,
        face presence score in [0, 1]) of the face whose dlib 68 points (or any 68-point
        estimate in iBUG order) are `start`, or whose first crop is `frame` ((centre, side,
        x axis), e.g. `frame_from_detection`'s)."""
        if frame is not None:
            centre, side, u = frame
        else:
            start = np.asarray(start, np.float64)
            eyes = (start[36:42].mean(0), start[42:48].mean(0))
            # dlib's 68 stop at the brows; the mesh reaches the forehead: grow the height so
            # the first crop frames the face as the mesh's own extent would (then refined)
            centre, side, u = crop_frame(start, CROP_SCALE, eyes)
            v = np.array([-u[1], u[0]])
            centre = centre - 0.12 * side * v / CROP_SCALE
            side = side * 1.15
        for _ in range(self.passes):
            m = crop_matrix(centre, side, u)
            mesh, score = self._run(_crop(image, m)[None])
            pts = mesh[0]
            xy = _to_image(pts[:, :2], m)
            z = pts[:, 2] * side / INPUT_SIZE
            centre, side, u = crop_frame(xy)
        return np.concatenate([xy, z[:, None]], 1), float(score[0])

    def landmarks68(self, image: np.ndarray, start: np.ndarray) -> np.ndarray:
        """(68, 2) iBUG-order points from the mesh (see `mesh_from`)."""
        return self.mesh_from(image, start)[0][list(IBUG68), :2]
