"""Writing results: meshes with vertex colours (OBJ, PLY), coefficient files, PNG renders.

Colours are clipped to [0, 1] here and only here (the loss works on unclipped values).
Meshes are written in the model's units (decimetres) unless `scale` says otherwise.
"""
from __future__ import annotations

import os
import pathlib
import tempfile
from typing import Dict

import numpy as np
import trimesh
from PIL import Image


def _atomic(path: pathlib.Path, write) -> pathlib.Path:
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name, suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def to_trimesh(vertices, triangles, colours=None, scale: float = 1.0) -> trimesh.Trimesh:
    vc = None
    if colours is not None:
        c = np.clip(np.asarray(colours, np.float64), 0.0, 1.0)
        vc = np.concatenate([np.round(c * 255), np.full((len(c), 1), 255)], 1).astype(np.uint8)
    return trimesh.Trimesh(vertices=np.asarray(vertices, np.float64) * scale,
                           faces=np.asarray(triangles), vertex_colors=vc, process=False)


def save_mesh(path, vertices, triangles, colours=None, scale: float = 1.0) -> pathlib.Path:
    """OBJ or PLY (by suffix) with per-vertex colours in [0, 1]."""
    path = pathlib.Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("obj", "ply"):
        raise ValueError(f"{path}: mesh format must be .obj or .ply")
    mesh = to_trimesh(vertices, triangles, colours, scale)
    kwargs = {"include_texture": False} if fmt == "obj" else {}
    return _atomic(path, lambda tmp: mesh.export(tmp, file_type=fmt, **kwargs))


def save_coefficients(path, parts: Dict[str, np.ndarray], **extra) -> pathlib.Path:
    """The split coefficients (id, exp, tex, angles, gamma, trans) and any extra arrays, .npz."""
    arrays = {k: np.asarray(v) for k, v in parts.items()}
    arrays.update({k: np.asarray(v) for k, v in extra.items()})

    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    return _atomic(pathlib.Path(path), write)


def load_coefficients(path) -> Dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as d:
        return {k: d[k] for k in d.files}


def to_uint8(image) -> np.ndarray:
    return (np.clip(np.asarray(image, np.float64), 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def save_png(path, image) -> pathlib.Path:
    """(H, W, 3) float image in [0, 1] (clipped) or uint8, as PNG."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        img = to_uint8(img)
    return _atomic(pathlib.Path(path), lambda tmp: Image.fromarray(img).save(tmp, format="PNG"))


def gradient_background(height: int, width: int, top=(0.22, 0.26, 0.32),
                        bottom=(0.55, 0.58, 0.62)) -> np.ndarray:
    """A soft vertical gradient, the default backdrop for renders people look at."""
    t = np.linspace(0.0, 1.0, height)[:, None, None]
    bg = (1 - t) * np.asarray(top) + t * np.asarray(bottom)
    return np.broadcast_to(bg, (height, width, 3)).astype(np.float32)
