"""MediaPipe's short-range BlazeFace detector: faces dlib's HOG and CNN detectors miss.

The network (``face_detection_short_range.tflite``, Apache 2.0; `mediapipe_files` finds or
fetches it, `tflite_graph` runs it) reads a 128 x 128 RGB picture scaled to [-1, 1] and scores
896 anchors, each with a box and six keypoints (the eyes, the nose tip, the mouth, the ear
tragions; the person's right eye first). Decoding follows MediaPipe's face detection graph:

- anchors: a 16 x 16 grid (stride 8) with 2 anchors per cell, then an 8 x 8 grid (stride 16)
  with 6 (three layers of stride 16 merged), centres at the cells' middles, unit size;
- each anchor's 16 numbers are offsets in input pixels: box centre (x, y), width, height, then
  (x, y) of the six keypoints, all divided by 128 and added to the anchor's centre;
- score sigmoid(logit), kept above `min_score`; overlapping boxes (IoU > 0.3) are merged by
  their score-weighted mean (MediaPipe's weighted non-maximum suppression).

The picture is letterboxed into the square (its aspect kept, padded with zeros), and the
detections mapped back into its pixels. "Short range" means faces that fill a good part of the
picture (selfies, portraits, crops of ~1/5 of the picture and more); the pipeline runs it only
when dlib found no face.
"""
from __future__ import annotations

import dataclasses
import pathlib
import threading
from typing import List, Optional

import numpy as np

from facerecon_jax.photo import mediapipe_files

INPUT_SIZE = 128
NMS_IOU = 0.3


@dataclasses.dataclass(frozen=True)
class Detection:
    box: tuple               # (x0, y0, x1, y1) image pixels
    score: float
    keypoints: np.ndarray    # (6, 2) image pixels: right eye, left eye (the person's), nose
                             # tip, mouth centre, right ear tragion, left ear tragion


def anchors() -> np.ndarray:
    """(896, 2) anchor centres in [0, 1] (x, y), in the network's output order."""
    out = []
    for size, per_cell in ((16, 2), (8, 6)):
        ys, xs = np.mgrid[0:size, 0:size]
        centres = np.stack([(xs + 0.5) / size, (ys + 0.5) / size], -1).reshape(-1, 2)
        out.append(np.repeat(centres, per_cell, axis=0))
    return np.concatenate(out)


def decode(raw: np.ndarray, logits: np.ndarray, min_score: float = 0.5):
    """(boxes (N, 4) x0, y0, x1, y1 in [0, 1] of the input square, keypoints (N, 6, 2), scores
    (N,)) of the anchors scoring above `min_score` (before suppression)."""
    a = anchors()
    raw = np.asarray(raw, np.float64).reshape(-1, 16) / INPUT_SIZE
    score = 1.0 / (1.0 + np.exp(-np.clip(np.asarray(logits, np.float64).reshape(-1), -100, 100)))
    keep = score > min_score
    raw, a, score = raw[keep], a[keep], score[keep]
    centre = raw[:, :2] + a
    half = raw[:, 2:4] / 2
    boxes = np.concatenate([centre - half, centre + half], 1)
    keypoints = raw[:, 4:].reshape(-1, 6, 2) + a[:, None]
    return boxes, keypoints, score


def _iou(box, boxes):
    lo = np.maximum(box[:2], boxes[:, :2])
    hi = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    area = lambda b: np.prod(b[..., 2:] - b[..., :2], axis=-1)  # noqa: E731
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-12)


def weighted_nms(boxes, keypoints, scores, iou: float = NMS_IOU):
    """MediaPipe's weighted suppression: the best remaining detection and all overlapping it by
    more than `iou` become one, their boxes and keypoints averaged by score (the best's score
    kept). Returns lists (boxes, keypoints, scores), best first."""
    order = np.argsort(-scores)
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    out_b, out_k, out_s = [], [], []
    left = np.arange(len(scores))
    while len(left):
        overlap = _iou(boxes[left[0]], boxes[left]) > iou
        group = left[overlap]
        w = scores[group][:, None]
        out_b.append((boxes[group] * w).sum(0) / w.sum())
        out_k.append((keypoints[group] * w[:, :, None]).sum(0) / w.sum())
        out_s.append(float(scores[group[0]]))
        left = left[~overlap]
    return out_b, out_k, out_s


class BlazeFace:
    """The detector (thread-safe)."""

    def __init__(self, path=None, min_score: float = 0.5):
        self.path = (pathlib.Path(path) if path
                     else mediapipe_files.network_file(mediapipe_files.FACE_DETECTOR))
        self.min_score = float(min_score)
        self._lock = threading.Lock()

    def detect(self, image: np.ndarray, min_score: Optional[float] = None) -> List[Detection]:
        """Faces in an (H, W, 3) uint8 RGB image, best first."""
        import cv2  # noqa: PLC0415

        from facerecon_jax.photo import tflite_graph  # noqa: PLC0415
        h, w = image.shape[:2]
        side = max(h, w)
        scale = INPUT_SIZE / side
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        top, left = (INPUT_SIZE - nh) // 2, (INPUT_SIZE - nw) // 2
        square = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), np.float32)
        square[top:top + nh, left:left + nw] = cv2.resize(
            image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        x = square[None] / 127.5 - 1.0
        graph, constants = tflite_graph.load(str(self.path), (INPUT_SIZE, INPUT_SIZE, 3), 2,
                                             "MediaPipe's short-range face detector")
        with self._lock:
            raw, logits = tflite_graph.run(graph, constants, x)
        boxes, keypoints, scores = decode(np.asarray(raw), np.asarray(logits),
                                          self.min_score if min_score is None else min_score)
        if not len(scores):
            return []
        out = []
        offset = np.array([left, top], np.float64)
        for b, k, s in zip(*weighted_nms(boxes, keypoints, scores)):
            # input-square units -> image pixel edges (the box) / centres at integers (points)
            def to_img(p):
                return (np.asarray(p).reshape(-1, 2) * INPUT_SIZE - offset) / scale
            (x0, y0), (x1, y1) = to_img(b)
            out.append(Detection((float(x0), float(y0), float(x1), float(y1)), s,
                                 to_img(k) - 0.5))
        return out
