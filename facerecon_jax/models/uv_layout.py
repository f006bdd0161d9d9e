"""The ICT face model's own texture layout: per-corner UVs that follow the model's triangles.

`generic_neutral_mesh.obj` (ICT-FaceKit) holds `vt` lines and `f v/vt` polygons (quads). The
default face model keeps the narrow face area (its first 6,560 polygons), splits each polygon as
a fan (p0, pk, pk+1) (`ict_model.triangulate`) and may flip every triangle's winding to
(0, 2, 1) (`ict_model._orient_outwards`). Here the same polygons' `vt` indices go through the
same fan, and each model triangle's corners are matched to the OBJ polygon it came from by
vertex id, so corner k of `model.triangles[t]` gets the UV its vertex has in that polygon,
whatever winding the model settled on.

UVs are OBJ's: (u, v) in [0, 1], v up (row 0 of a texture image is v = 1). They are per corner,
so a vertex may have several (a seam); `split_seams` gives one vertex per (vertex, uv) pair for
formats without per-corner UVs (glTF).
"""
from __future__ import annotations

import dataclasses
import pathlib
from typing import Optional

import numpy as np

from facerecon_jax.models import ict_model


class UVLayoutError(ValueError):
    """The face model has no UV layout here (not the ICT model, or the OBJ does not match)."""


@dataclasses.dataclass(frozen=True)
class UVLayout:
    uv: np.ndarray          # (N, 2) float64 texture coordinates, v up
    corner_uv: np.ndarray   # (T, 3) int32: UV index of corner k of model.triangles[t]
    triangles: np.ndarray   # (T, 3) int32: the model's triangles (vertex ids) they belong to
    polygon: np.ndarray     # (T,) int32: the OBJ polygon each triangle was cut from

    @property
    def corner_coords(self) -> np.ndarray:
        """(T, 3, 2) UV of every triangle corner."""
        return self.uv[self.corner_uv]

    def vertex_uv(self, n_vertices: int) -> np.ndarray:
        """(V, 2): one UV per vertex (the last corner's where a vertex has several); NaN for a
        vertex no triangle uses."""
        out = np.full((n_vertices, 2), np.nan)
        out[self.triangles.ravel()] = self.uv[self.corner_uv.ravel()]
        return out

    def split_seams(self):
        """One vertex per distinct (vertex, uv) pair: (vertex_of (N',) original vertex ids,
        uv (N', 2), triangles (T, 3) into the N' new vertices)."""
        pairs = np.stack([self.triangles.ravel(), self.corner_uv.ravel()], axis=1)
        unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
        return (unique[:, 0].astype(np.int32), self.uv[unique[:, 1]],
                inverse.reshape(-1, 3).astype(np.int32))


def read_obj_polygons_uv(path: pathlib.Path, n_polygons: int):
    """The first `n_polygons` faces of an OBJ and its `vt` lines:
    (vertex index lists, uv index lists, uv (N, 2)), indices 0-based."""
    uv, verts, uvs = [], [], []
    with open(path, "r", encoding="utf-8") as f:
        for line in f:
            if line.startswith("vt "):
                uv.append([float(t) for t in line.split()[1:3]])
            elif line.startswith("f ") and len(verts) < n_polygons:
                toks = [tok.split("/") for tok in line.split()[1:]]
                if any(len(t) < 2 or not t[1] for t in toks):
                    raise UVLayoutError(f"{path}: face {len(verts) + 1} has no texture "
                                        f"coordinates (expected 'f v/vt ...')")
                verts.append([int(t[0]) - 1 for t in toks])
                uvs.append([int(t[1]) - 1 for t in toks])
    if len(verts) < n_polygons:
        raise UVLayoutError(f"{path}: expected at least {n_polygons} faces, found {len(verts)}")
    uv = np.asarray(uv, np.float64).reshape(-1, 2)
    top = max(max(p) for p in uvs)
    if top >= len(uv):
        raise UVLayoutError(f"{path}: a face uses texture coordinate {top + 1} of {len(uv)}")
    return verts, uvs, uv


def match_corners(model_triangles, fan_vertices, fan_uv) -> np.ndarray:
    """Corner UV indices (T, 3) for `model_triangles`, each triangle t the same vertices as
    `fan_vertices[t]` in any order (the winding may differ): corner k takes the UV of the fan
    corner with the same vertex id."""
    m = np.asarray(model_triangles)
    fan = np.asarray(fan_vertices)
    if m.shape != fan.shape:
        raise UVLayoutError(f"the face model has {len(m)} triangles, the OBJ polygons give "
                            f"{len(fan)}")
    eq = m[:, :, None] == fan[:, None, :]                     # (T, 3 model corners, 3 fan corners)
    if not np.all(eq.sum(axis=2) == 1):
        bad = int(np.argmin(np.all(eq.sum(axis=2) == 1, axis=1)))
        raise UVLayoutError(f"model triangle {bad} {m[bad].tolist()} is not the OBJ's triangle "
                            f"{fan[bad].tolist()}: the model was not built from these polygons")
    j = np.argmax(eq, axis=2)
    return np.take_along_axis(np.asarray(fan_uv), j, axis=1).astype(np.int32)


_CACHE: dict = {}


def for_model(model, obj_path: Optional[pathlib.Path] = None,
              n_polygons: int = ict_model.N_POLYGONS) -> UVLayout:
    """The UV layout of the default (ICT) face model. Raises UVLayoutError for a model whose
    triangles are not the OBJ's narrow face area (BFM, grid models)."""
    obj_path = pathlib.Path(obj_path or ict_model.find_source().neutral_obj)
    tris = np.asarray(model.triangles, np.int32)
    key = (str(obj_path), n_polygons, tris.shape, hash(tris.tobytes()))
    if key in _CACHE:
        return _CACHE[key]
    if not obj_path.exists():
        raise UVLayoutError(f"missing {obj_path}: textures need the ICT-FaceKit OBJ (see "
                            f"shared/assets/ict_facekit/README.md)")
    verts, uvs, uv = read_obj_polygons_uv(obj_path, n_polygons)
    fan_v = ict_model.triangulate(verts)
    fan_t = ict_model.triangulate(uvs)
    polygon = np.repeat(np.arange(len(verts), dtype=np.int32), [len(p) - 2 for p in verts])
    corner = match_corners(tris, fan_v, fan_t)
    used, compact = np.unique(corner, return_inverse=True)      # only these polygons' UVs
    layout = UVLayout(uv[used], compact.reshape(corner.shape).astype(np.int32), tris, polygon)
    _CACHE[key] = layout
    return layout
