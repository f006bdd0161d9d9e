"""Pictures people look at: landmark drawings and side-by-side overlays (uint8 RGB arrays)."""
from __future__ import annotations

import cv2
import numpy as np

GREEN = (40, 220, 60)
RED = (235, 50, 40)


def to_uint8(image) -> np.ndarray:
    img = np.asarray(image)
    if img.dtype == np.uint8:
        return img
    return (np.clip(img.astype(np.float64), 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def draw_landmarks(image, points, colour=GREEN, radius: int | None = None) -> np.ndarray:
    """Dots at (x, y) image pixels, y down, on a copy of the image."""
    img = np.ascontiguousarray(to_uint8(image).copy())
    if radius is None:
        radius = max(1, int(round(min(img.shape[:2]) / 200)))
    for x, y in np.asarray(points, np.float64).reshape(-1, 2):
        if np.isfinite(x) and np.isfinite(y):
            cv2.circle(img, (int(round(x)), int(round(y))), radius, colour, -1, cv2.LINE_AA)
    return img


def overlay_panel(crop, render, alpha, detected=None, fitted=None) -> np.ndarray:
    """Three panels side by side: the input crop, the render over it, landmarks on the crop
    (detected green, fitted red)."""
    crop8 = to_uint8(crop)
    a = np.asarray(alpha, np.float64)[..., None]
    blended = to_uint8(a * np.asarray(render, np.float64) + (1 - a) * crop8 / 255.0)
    marks = crop8
    if detected is not None:
        marks = draw_landmarks(marks, detected, GREEN)
    if fitted is not None:
        marks = draw_landmarks(marks, fitted, RED)
    return np.concatenate([crop8, blended, marks], axis=1)
