"""Textured-face files: OBJ + MTL with per-corner UVs and binary glTF load back with their texture,
and a person's texture is the weight-averaged texture of the members, mirrored where unseen."""
import json
import struct

import numpy as np
import trimesh
from PIL import Image

from facerecon_jax.geometry import morphable
from facerecon_jax.models import uv_layout
from facerecon_jax.pipeline import textured_face


def _mesh(model):
    v = np.asarray(model.mean_shape, np.float64)
    n = np.asarray(morphable.vertex_normals(v, model.triangles, model.vertex_faces))
    return v, n


def _gradient(size):
    i, j = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    return np.stack([j * 255 // (size - 1), i * 255 // (size - 1),
                     np.full_like(i, 128)], axis=-1).astype(np.uint8)


def test_textured_obj_and_glb_load_back(default_model, tmp_path):
    lay = uv_layout.for_model(default_model)
    v, n = _mesh(default_model)
    tex = _gradient(64)
    base = tmp_path / "face"
    files = textured_face.write_textured_meshes(str(base), lay, v, n, tex)
    names = sorted(p.name for p in map(__import__("pathlib").Path, files))
    assert names == ["face.glb", "face_texture.png", "face_textured.mtl", "face_textured.obj"]
    # OBJ: read here line by line
    lines = (tmp_path / "face_textured.obj").read_text().splitlines()
    vs = np.array([list(map(float, ln.split()[1:])) for ln in lines if ln.startswith("v ")])
    vts = np.array([list(map(float, ln.split()[1:])) for ln in lines if ln.startswith("vt ")])
    faces = [[tuple(int(x) - 1 for x in tok.split("/")) for tok in ln.split()[1:]]
             for ln in lines if ln.startswith("f ")]
    np.testing.assert_allclose(vs, v, atol=1e-6)
    np.testing.assert_allclose(vts, lay.uv, atol=1e-6)
    np.testing.assert_array_equal([[c[0] for c in f] for f in faces], lay.triangles)
    np.testing.assert_array_equal([[c[1] for c in f] for f in faces], lay.corner_uv)
    assert "map_Kd face_texture.png" in (tmp_path / "face_textured.mtl").read_text()
    obj = trimesh.load(tmp_path / "face_textured.obj", process=False)
    assert obj.visual.kind == "texture" and obj.visual.material.image.size == (64, 64)
    # GLB: the container by hand, then trimesh
    data = (tmp_path / "face.glb").read_bytes()
    magic, version, length = struct.unpack("<III", data[:12])
    assert (magic, version, length) == (0x46546C67, 2, len(data))
    jlen, jtype = struct.unpack("<II", data[12:20])
    gltf = json.loads(data[20:20 + jlen])
    assert jtype == 0x4E4F534A and gltf["images"][0]["mimeType"] == "image/jpeg"
    scene = trimesh.load(tmp_path / "face.glb")
    (mesh,) = scene.geometry.values()
    vertex_of, uv, tris = lay.split_seams()
    np.testing.assert_allclose(mesh.vertices, v[vertex_of] * textured_face.GLB_SCALE, atol=1e-6)
    np.testing.assert_array_equal(mesh.faces, tris)
    np.testing.assert_allclose(mesh.visual.uv, uv, atol=1e-6)        # back to v up
    img = np.asarray(mesh.visual.material.baseColorTexture.convert("RGB"), np.float64)
    assert img.shape == (64, 64, 3) and np.abs(img - tex).mean() < 4       # JPEG


def test_person_texture_is_the_weighted_member_average(default_model, tmp_path):
    size = 64
    lay = uv_layout.for_model(default_model)
    v, n = _mesh(default_model)
    red, green = np.zeros((size, size, 3), np.uint8), np.zeros((size, size, 3), np.uint8)
    red[..., 0], green[..., 1] = 200, 200
    w_left, w_top = np.zeros((size, size), np.uint8), np.zeros((size, size), np.uint8)
    w_left[:, :size // 2] = 255                      # member A saw the left half
    w_top[:size // 2] = 255                          # member B the top half
    members = []
    for name, t, w in (("a", red, w_left), ("b", green, w_top)):
        Image.fromarray(t).save(tmp_path / f"{name}_texture.png")
        Image.fromarray(w).save(tmp_path / f"{name}_texture_weight.png")
        members.append((tmp_path / f"{name}_texture.png", tmp_path / f"{name}_texture_weight.png"))
    # a third member at half the size (another --texture_size) that saw nothing
    Image.fromarray(np.full((size // 2, size // 2, 3), 90, np.uint8)).save(tmp_path / "c.png")
    Image.fromarray(np.zeros((size // 2, size // 2), np.uint8)).save(tmp_path / "c_w.png")
    members.append((tmp_path / "c.png", tmp_path / "c_w.png"))
    albedo = np.full((default_model.n_vertices, 3), 0.1)
    out = textured_face.write_person(tmp_path / "person", default_model, v, n, albedo, members)
    assert out["texture_members"] == 3
    tex = np.asarray(Image.open(tmp_path / "person_texture.png"), np.float64)
    from facerecon_jax.render import texture
    chart = texture.texel_map(lay, size).chart
    h = size // 2
    q = {"tl": (slice(2, h - 2), slice(2, h - 2)), "tr": (slice(2, h - 2), slice(h + 2, -2)),
         "bl": (slice(h + 2, -2), slice(2, h - 2)), "br": (slice(h + 2, -2), slice(h + 2, -2))}
    expect = {"tl": (100, 100, 0), "tr": (0, 200, 0), "bl": (200, 0, 0),
              "br": (200, 0, 0)}                    # bottom right: nobody, mirrored from A
    for k, (rows, cols) in q.items():
        sel = chart[rows, cols]
        assert sel.sum() > 20, k
        np.testing.assert_allclose(tex[rows, cols][sel], np.broadcast_to(expect[k],
                                                                          (sel.sum(), 3)),
                                   atol=2, err_msg=k)
    assert (tmp_path / "person.glb").exists() and (tmp_path / "person_textured.obj").exists()
