"""The in-memory face model and the one .npz schema every face model is stored in.

A face model is a linear 3D morphable model:
  shape  S = mean_shape + id_basis . alpha + exp_basis . beta      (decimetres)
  albedo T = mean_albedo + tex_basis . delta                        (RGB in [0, 1])
with bases scaled so that coefficients are ~N(0, 1) (expression blendshapes may instead be
meaningful in [0, 1]; `info['expression_kind']` says which).

Schema of the .npz (all arrays; `info` is a JSON string):
  mean_shape    (V, 3)          float32  decimetres, centred
  id_basis      (n_id, V, 3)    float32
  exp_basis     (n_exp, V, 3)   float32
  mean_albedo   (V, 3)          float32  [0, 1]
  tex_basis     (n_tex, V, 3)   float32
  triangles     (T, 3)          int32    0-based, counter-clockwise seen from outside
  vertex_faces  (V, K)          int32    faces of each vertex, padded with T (fixed width)
  landmarks     (68,)           int32    iBUG 68 landmark vertices, 0-based
  skin_mask     (V,)            float32  1 on forehead, cheeks and nose (texture-variance loss)
  front_mask    (T,)            bool     triangles of the front face (photometric loss region)
  info          JSON string: name, units, source, licence, attribution, synthetic_texture, ...
"""
from __future__ import annotations

import json
import os
import pathlib
from typing import Any

import flax.struct
import jax.numpy as jnp
import numpy as np

from facerecon_jax.io import atomic_file

SCHEMA_VERSION = 1
ARRAY_KEYS = ("mean_shape", "id_basis", "exp_basis", "mean_albedo", "tex_basis", "triangles",
              "vertex_faces", "landmarks", "skin_mask", "front_mask")


class FaceModelError(ValueError):
    """A face-model file is missing a key or has arrays of the wrong shape."""


@flax.struct.dataclass
class FaceModel:
    mean_shape: Any
    id_basis: Any
    exp_basis: Any
    mean_albedo: Any
    tex_basis: Any
    triangles: Any
    vertex_faces: Any
    landmarks: Any
    skin_mask: Any
    front_mask: Any
    info_json: str = flax.struct.field(pytree_node=False, default="{}")

    @property
    def info(self) -> dict:
        return json.loads(self.info_json)

    @property
    def is_blendshape(self) -> bool:
        """Expression coefficients are blendshape weights in [0, 1] (not ~N(0, 1) PCA)."""
        return "blendshape" in str(self.info.get("expression_kind", ""))

    @property
    def n_vertices(self) -> int:
        return int(self.mean_shape.shape[0])

    @property
    def n_triangles(self) -> int:
        return int(self.triangles.shape[0])

    @property
    def n_id(self) -> int:
        return int(self.id_basis.shape[0])

    @property
    def n_exp(self) -> int:
        return int(self.exp_basis.shape[0])

    @property
    def n_tex(self) -> int:
        return int(self.tex_basis.shape[0])

    def to_jax(self) -> "FaceModel":
        """The same model with every array on the default JAX device."""
        return self.replace(**{k: jnp.asarray(getattr(self, k)) for k in ARRAY_KEYS})

    def to_numpy(self) -> "FaceModel":
        return self.replace(**{k: np.asarray(getattr(self, k)) for k in ARRAY_KEYS})


def vertex_face_table(triangles: np.ndarray, n_vertices: int) -> np.ndarray:
    """(V, K) table of the faces around each vertex, padded with T (an extra zero face)."""
    triangles = np.asarray(triangles, np.int64)
    n_tri = len(triangles)
    corner_vertex = triangles.reshape(-1)
    corner_face = np.repeat(np.arange(n_tri), 3)
    order = np.argsort(corner_vertex, kind="stable")
    corner_vertex, corner_face = corner_vertex[order], corner_face[order]
    counts = np.bincount(corner_vertex, minlength=n_vertices)
    width = max(int(counts.max(initial=0)), 1)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot = np.arange(len(corner_vertex)) - starts[corner_vertex]
    table = np.full((n_vertices, width), n_tri, np.int32)
    table[corner_vertex, slot] = corner_face
    return table


def make_face_model(*, mean_shape, id_basis, exp_basis, mean_albedo, tex_basis, triangles,
                    landmarks, skin_mask, front_mask, info: dict,
                    vertex_faces=None) -> FaceModel:
    """Build a FaceModel from numpy arrays, checking every shape (FaceModelError if wrong)."""
    tri = np.asarray(triangles, np.int32)
    v = np.asarray(mean_shape, np.float32).shape[0]
    if vertex_faces is None:
        vertex_faces = vertex_face_table(tri, v)
    info = dict(info)
    info.setdefault("schema_version", SCHEMA_VERSION)
    model = FaceModel(
        mean_shape=np.asarray(mean_shape, np.float32),
        id_basis=np.asarray(id_basis, np.float32),
        exp_basis=np.asarray(exp_basis, np.float32),
        mean_albedo=np.asarray(mean_albedo, np.float32),
        tex_basis=np.asarray(tex_basis, np.float32),
        triangles=tri,
        vertex_faces=np.asarray(vertex_faces, np.int32),
        landmarks=np.asarray(landmarks, np.int32),
        skin_mask=np.asarray(skin_mask, np.float32),
        front_mask=np.asarray(front_mask, bool),
        info_json=json.dumps(info, sort_keys=True),
    )
    validate(model, source=info.get("name", "face model"))
    return model


def validate(model: FaceModel, source: str = "face model") -> None:
    """Raise FaceModelError naming `source` and the first array whose shape is wrong."""
    def fail(msg):
        raise FaceModelError(f"{source}: {msg}")

    ms = np.shape(model.mean_shape)
    if len(ms) != 2 or ms[1] != 3:
        fail(f"mean_shape must be (V, 3), got {ms}")
    v = ms[0]
    for key in ("id_basis", "exp_basis", "tex_basis"):
        s = np.shape(getattr(model, key))
        if len(s) != 3 or s[1:] != (v, 3):
            fail(f"{key} must be (n, {v}, 3) for a model of {v} vertices, got {s}")
    if np.shape(model.mean_albedo) != (v, 3):
        fail(f"mean_albedo must be ({v}, 3), got {np.shape(model.mean_albedo)}")
    ts = np.shape(model.triangles)
    if len(ts) != 2 or ts[1] != 3:
        fail(f"triangles must be (T, 3), got {ts}")
    tri = np.asarray(model.triangles)
    if tri.size and (tri.min() < 0 or tri.max() >= v):
        fail(f"triangle indices must lie in [0, {v}), got [{tri.min()}, {tri.max()}]")
    vf = np.shape(model.vertex_faces)
    if len(vf) != 2 or vf[0] != v:
        fail(f"vertex_faces must be ({v}, K), got {vf}")
    if np.shape(model.landmarks) != (68,):
        fail(f"landmarks must be (68,), got {np.shape(model.landmarks)}")
    lm = np.asarray(model.landmarks)
    if lm.min() < 0 or lm.max() >= v:
        fail(f"landmark vertex indices must lie in [0, {v}), got [{lm.min()}, {lm.max()}]")
    if np.shape(model.skin_mask) != (v,):
        fail(f"skin_mask must be ({v},), got {np.shape(model.skin_mask)}")
    if np.shape(model.front_mask) != (ts[0],):
        fail(f"front_mask must be ({ts[0]},), got {np.shape(model.front_mask)}")


def save(model: FaceModel, path: str | os.PathLike) -> pathlib.Path:
    """Write the model to `path` (.npz) atomically: a temporary file, then a rename."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.asarray(getattr(model, k)) for k in ARRAY_KEYS}

    def writer(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, info=np.array(model.info_json), **arrays)
    return atomic_file.write(path, writer)


def load(path: str | os.PathLike) -> FaceModel:
    """Read a face model .npz written by `save` (FaceModelError names the file if it is wrong)."""
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"face model file not found: {path}")
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - any read failure is reported with the file name
        raise FaceModelError(f"{path}: not a readable .npz face model ({e})") from e
    with data:
        missing = [k for k in ARRAY_KEYS + ("info",) if k not in data.files]
        if missing:
            raise FaceModelError(f"{path}: not a facerecon-jax face model, missing {missing}")
        arrays = {k: data[k] for k in ARRAY_KEYS}
        info_json = str(data["info"])
    model = FaceModel(info_json=info_json, **arrays)
    validate(model, source=str(path))
    return model
