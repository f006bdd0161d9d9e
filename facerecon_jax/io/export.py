"""Writing results: meshes with vertex colours (OBJ, PLY), textured meshes (OBJ + MTL with
per-corner UVs; binary glTF with an embedded JPEG texture), coefficient files, PNG renders.

Colours are clipped to [0, 1] here and only here (the loss works on unclipped values).
Meshes are written in the model's units (decimetres) unless `scale` says otherwise.
"""
from __future__ import annotations

import pathlib
from typing import Dict

import numpy as np
import trimesh
from PIL import Image

from facerecon_jax.io import atomic_file


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
    return atomic_file.write(path, lambda tmp: mesh.export(tmp, file_type=fmt, **kwargs))


def save_coefficients(path, parts: Dict[str, np.ndarray], **extra) -> pathlib.Path:
    """The split coefficients (id, exp, tex, angles, gamma, trans) and any extra arrays, .npz."""
    arrays = {k: np.asarray(v) for k, v in parts.items()}
    arrays.update({k: np.asarray(v) for k, v in extra.items()})

    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    return atomic_file.write(pathlib.Path(path), write)


def load_coefficients(path) -> Dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as d:
        return {k: d[k] for k in d.files}


def to_uint8(image) -> np.ndarray:
    return (np.clip(np.asarray(image, np.float64), 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def write_text(path, text: str) -> pathlib.Path:
    """A text file, written atomically."""
    return atomic_file.write_text(path, text)


def save_png(path, image) -> pathlib.Path:
    """(H, W, 3) float image in [0, 1] (clipped) or uint8, as PNG."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        img = to_uint8(img)
    return atomic_file.write(pathlib.Path(path),
                             lambda tmp: Image.fromarray(img).save(tmp, format="PNG"))


def gradient_background(height: int, width: int, top=(0.22, 0.26, 0.32),
                        bottom=(0.55, 0.58, 0.62)) -> np.ndarray:
    """A soft vertical gradient, the default backdrop for renders people look at."""
    t = np.linspace(0.0, 1.0, height)[:, None, None]
    bg = (1 - t) * np.asarray(top) + t * np.asarray(bottom)
    return np.broadcast_to(bg, (height, width, 3)).astype(np.float32)


def save_textured_obj(path, vertices, triangles, uv, corner_uv, texture_file: str,
                      scale: float = 1.0) -> list:
    """OBJ + MTL with per-corner texture coordinates: `f v/vt` with the vt index of each corner
    (`corner_uv` (T, 3) into `uv` (N, 2), v up), so UV seams need no split vertices. The MTL
    (same stem, .mtl) points `map_Kd` at `texture_file` (a name beside the OBJ). Returns both
    paths."""
    path = pathlib.Path(path)
    mtl = path.with_suffix(".mtl")
    v = np.asarray(vertices, np.float64) * scale
    t = np.asarray(triangles, np.int64) + 1
    c = np.asarray(corner_uv, np.int64) + 1
    lines = [f"# facerecon-jax textured mesh: {len(v)} vertices, {len(t)} triangles",
             f"mtllib {mtl.name}"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in v]
    lines += [f"vt {a:.6f} {b:.6f}" for a, b in np.asarray(uv, np.float64)]
    lines.append("usemtl face")
    lines += [f"f {a}/{ta} {b}/{tb} {cc}/{tc}" for (a, b, cc), (ta, tb, tc) in zip(t, c)]
    text = "\n".join(lines) + "\n"
    material = ("newmtl face\nKa 1 1 1\nKd 1 1 1\nKs 0 0 0\nd 1\nillum 1\n"
                f"map_Kd {texture_file}\n")

    def write_text(content):
        def write(tmp):
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(content)
        return write
    atomic_file.write(mtl, write_text(material))
    atomic_file.write(path, write_text(text))
    return [path, mtl]


GLB_MAGIC, GLB_JSON, GLB_BIN = 0x46546C67, 0x4E4F534A, 0x004E4942


def glb_bytes(vertices, triangles, normals, uv, texture, name: str = "face",
              jpeg_quality: int = 90) -> bytes:
    """A binary glTF 2.0 file: one mesh with positions, normals, texture coordinates (given v
    up as in OBJ; stored flipped, glTF's origin is the image's top left), uint32 indices, and
    one PBR material (not metallic, fully rough) whose base colour is `texture` ((H, W, 3) uint8
    or float in [0, 1]), embedded as JPEG. Vertex attributes are per vertex: split UV seams first
    (`uv_layout.UVLayout.split_seams`)."""
    import io
    import json
    import struct

    pos = np.ascontiguousarray(vertices, np.float32)
    nrm = np.asarray(normals, np.float32)
    nrm = np.ascontiguousarray(nrm / np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-12))
    tex = np.asarray(uv, np.float64)
    st = np.ascontiguousarray(np.stack([tex[:, 0], 1.0 - tex[:, 1]], axis=1), np.float32)
    idx = np.ascontiguousarray(np.asarray(triangles).reshape(-1), np.uint32)
    img = np.asarray(texture)
    if img.dtype != np.uint8:
        img = to_uint8(img)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=jpeg_quality)
    blobs = [pos.tobytes(), nrm.tobytes(), st.tobytes(), idx.tobytes(), buf.getvalue()]
    views, offset, body = [], 0, b""
    for k, blob in enumerate(blobs):
        view = {"buffer": 0, "byteOffset": offset, "byteLength": len(blob)}
        if k < 3:
            view["target"] = 34962          # ARRAY_BUFFER
        elif k == 3:
            view["target"] = 34963          # ELEMENT_ARRAY_BUFFER
        views.append(view)
        pad = (-len(blob)) % 4
        body += blob + b"\0" * pad
        offset += len(blob) + pad
    n = len(pos)
    accessors = [
        {"bufferView": 0, "componentType": 5126, "count": n, "type": "VEC3",
         "min": pos.min(0).tolist(), "max": pos.max(0).tolist()},
        {"bufferView": 1, "componentType": 5126, "count": n, "type": "VEC3"},
        {"bufferView": 2, "componentType": 5126, "count": n, "type": "VEC2"},
        {"bufferView": 3, "componentType": 5125, "count": len(idx), "type": "SCALAR"},
    ]
    gltf = {
        "asset": {"version": "2.0", "generator": "facerecon-jax"},
        "scene": 0, "scenes": [{"nodes": [0]}], "nodes": [{"mesh": 0, "name": name}],
        "meshes": [{"name": name, "primitives": [{
            "attributes": {"POSITION": 0, "NORMAL": 1, "TEXCOORD_0": 2}, "indices": 3,
            "material": 0}]}],
        "materials": [{"name": f"{name}_texture", "pbrMetallicRoughness": {
            "baseColorTexture": {"index": 0}, "metallicFactor": 0.0, "roughnessFactor": 1.0}}],
        "textures": [{"source": 0, "sampler": 0}],
        "samplers": [{"magFilter": 9729, "minFilter": 9987, "wrapS": 33071, "wrapT": 33071}],
        "images": [{"bufferView": 4, "mimeType": "image/jpeg"}],
        "accessors": accessors, "bufferViews": views,
        "buffers": [{"byteLength": len(body)}],
    }
    js = json.dumps(gltf, separators=(",", ":")).encode("utf-8")
    js += b" " * ((-len(js)) % 4)
    total = 12 + 8 + len(js) + 8 + len(body)
    return (struct.pack("<III", GLB_MAGIC, 2, total) + struct.pack("<II", len(js), GLB_JSON)
            + js + struct.pack("<II", len(body), GLB_BIN) + body)


def save_glb(path, vertices, triangles, normals, uv, texture, name: str = "face",
             jpeg_quality: int = 90) -> pathlib.Path:
    """`glb_bytes` written atomically to `path`."""
    data = glb_bytes(vertices, triangles, normals, uv, texture, name, jpeg_quality)

    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(data)
    return atomic_file.write(pathlib.Path(path), write)
