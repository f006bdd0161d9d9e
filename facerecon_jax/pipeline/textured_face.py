"""The textured face of one photo or one person, as files: what reconstruct and aggregate write.

Per face (`write_face`), beside the other outputs of `<base>`:
  <base>_texture.png         the texture map (S x S, the model's UV layout): the photo sampled
                             where the face is seen, divided by the fitted SH shading in
                             "albedo" mode (the default) or as is in "photo" mode; unseen texels
                             from the mirror texel, else the fitted albedo (lit colour in photo
                             mode), blended (`texture.fill`)
  <base>_texture_weight.png  how much each texel owes to the photo: blend weight x cosine of the
                             normal with the view direction (0..255); aggregate averages with it
  <base>_textured.obj/.mtl   the posed mesh with per-corner UVs (model units)
  <base>.glb                 the same as binary glTF (metres, y up, facing +z), for viewers
and, in the summary, the texture's PSNR: the textured mesh redrawn with the fitted camera against
the aligned crop, over the face's skin pixels (rendered and skin attention = 1), beside the PSNR
of the fitted model's own colours on the same pixels.

Per person (`write_person`): the members' textures averaged with their weight maps, filled the
same way (the aggregate's albedo alone when no member has a texture), on the person's neutral
mesh: <person>_texture.png, <person>_textured.obj/.mtl, <person>.glb.
"""
from __future__ import annotations

import pathlib
from typing import Sequence

import cv2
import jax.numpy as jnp
import numpy as np
from PIL import Image

from facerecon_jax.geometry import lighting
from facerecon_jax.io import export
from facerecon_jax.models import uv_layout
from facerecon_jax.photo import alignment
from facerecon_jax.render import texture

GLB_SCALE = 0.1            # model units (decimetres) -> glTF's metres
TEXTURE_MODES = ("albedo", "photo")


def _texel_fill(tm, layout, model, colour, weight, fallback_vertex_colours) -> np.ndarray:
    fallback = texture.at_texels(tm, layout.triangles, fallback_vertex_colours)
    mirror_xy = texture.mirror_texels(tm, layout, model.mean_shape)
    filled = texture.fill(colour, weight, mirror_xy, fallback)
    return export.to_uint8(texture.pad_chart(filled, tm.chart))


def write_textured_meshes(base: str, layout, vertices, normals, tex8) -> list:
    """<base>_texture.png (tex8: (S, S, 3) uint8), <base>_textured.obj/.mtl (model units) and
    <base>.glb (metres, UV seams split) for a mesh (V, 3) with its normals; the paths."""
    files = [export.save_png(f"{base}_texture.png", tex8)]
    files += export.save_textured_obj(f"{base}_textured.obj", vertices, layout.triangles,
                                      layout.uv, layout.corner_uv,
                                      pathlib.Path(f"{base}_texture.png").name)
    vertex_of, uv, tris = layout.split_seams()
    files.append(export.save_glb(f"{base}.glb", np.asarray(vertices)[vertex_of] * GLB_SCALE,
                                 tris, np.asarray(normals)[vertex_of], uv, tex8,
                                 name=pathlib.Path(base).name))
    return files


def bake_face(model, layout, tm, verts: dict, gamma, camera, photo, align: alignment.Alignment,
              depth, mode: str = "albedo"):
    """(texture (S, S, 3) uint8, weight (S, S) in [0, 1], irradiance (V, 3) or None) for one
    fitted face; `verts` holds unbatched (V, 3) posed, normals, albedo and colour; depth: the
    fitted render's z-buffer (crop pixels)."""
    if mode not in TEXTURE_MODES:
        raise ValueError(f"texture mode must be one of {TEXTURE_MODES}, got {mode!r}")
    irr = np.asarray(lighting.irradiance(jnp.asarray(verts["normals"]), jnp.asarray(gamma)),
                     np.float64)
    bake = texture.bake_photo(tm, layout.triangles, verts["posed"], verts["normals"], camera,
                              photo, lambda xy: alignment.crop_to_image(xy, align), depth,
                              irradiance=irr if mode == "albedo" else None)
    fallback = verts["albedo"] if mode == "albedo" else verts["colour"]
    tex8 = _texel_fill(tm, layout, model, bake.colour, bake.weight, fallback)
    return tex8, bake.weight * bake.cosine, irr if mode == "albedo" else None


def write_face(base, model, verts: dict, gamma, camera, photo, align: alignment.Alignment,
               crop, skin_attention, tri_id, depth, model_colour, mode: str = "albedo",
               size: int = 1024) -> dict:
    """Every texture output of one fitted face (module docstring); returns the summary:
    texture mode and size, texture_psnr_db, render_psnr_db, files. `verts`: unbatched (V, 3)
    posed, normals, albedo, colour, screen; crop (224, 224, 3) uint8; skin_attention, tri_id and
    depth (224, 224) as reconstruct has them; model_colour (224, 224, 3): the fitted render's
    colour."""
    base = str(base)
    layout = uv_layout.for_model(model)
    tm = texture.texel_map(layout, size)
    tex8, weight, irr = bake_face(model, layout, tm, verts, gamma, camera, photo, align, depth,
                                  mode)
    files = write_textured_meshes(base, layout, verts["posed"], verts["normals"], tex8)
    files.append(export.save_png(f"{base}_texture_weight.png",
                                 np.round(np.clip(weight, 0, 1) * 255).astype(np.uint8)))
    redrawn = texture.render_textured(verts["screen"], layout.triangles, layout.corner_coords,
                                      tri_id, tex8, irr)
    target = np.asarray(crop, np.float64) / 255.0
    mask = (np.asarray(tri_id) >= 0) & (np.asarray(skin_attention) > 0.5)
    return {"texture": mode, "texture_size": size,
            "texture_psnr_db": texture.psnr(np.clip(redrawn, 0, 1), target, mask),
            "render_psnr_db": texture.psnr(np.clip(model_colour, 0, 1), target, mask),
            "files": [str(f) for f in files]}


def read_weighted_texture(texture_path, weight_path):
    """A member's texture (S, S, 3) in [0, 1] and weight map (S, S) in [0, 1]."""
    tex = np.asarray(Image.open(texture_path).convert("RGB"), np.float64) / 255.0
    w = np.asarray(Image.open(weight_path).convert("L"), np.float64) / 255.0
    if w.shape != tex.shape[:2]:
        raise ValueError(f"{weight_path} is {w.shape[1]}x{w.shape[0]}, its texture "
                         f"{texture_path} {tex.shape[1]}x{tex.shape[0]}")
    return tex, w


def _resized(tex, weight, size: int):
    """A member texture and weight map of another size (--texture_size), resampled to `size`."""
    t = cv2.resize(np.asarray(tex, np.float32), (size, size), interpolation=cv2.INTER_LINEAR)
    w = cv2.resize(np.asarray(weight, np.float32), (size, size), interpolation=cv2.INTER_LINEAR)
    return t.astype(np.float64), w.astype(np.float64)


def write_person(base, model, vertices, normals, albedo, member_textures: Sequence[tuple],
                 blank_size: int = 512) -> dict:
    """The person's texture: the members' (texture, weight map) files averaged by weight (at the
    largest member size), filled from mirror texels and the aggregate's albedo (V, 3) where no
    member saw the face; written with the person's mesh (vertices, normals (V, 3)) like
    `write_face`. Returns a summary (files, the number of member textures used, the share of
    chart texels some member saw)."""
    base = str(base)
    layout = uv_layout.for_model(model)
    pairs = [read_weighted_texture(t, w) for t, w in member_textures]
    if not pairs:       # nobody to average: the albedo alone
        pairs = [(np.zeros((blank_size, blank_size, 3)), np.zeros((blank_size, blank_size)))]
    size = max(t.shape[0] for t, _ in pairs)
    pairs = [(t, w) if t.shape[0] == size else _resized(t, w, size) for t, w in pairs]
    tm = texture.texel_map(layout, size)
    avg, total = texture.average([t for t, _ in pairs], [w for _, w in pairs])
    # one frontal view is a full sample; the blend weight saturates there
    weight = np.where(tm.chart, np.clip(total, 0.0, 1.0), 0.0)
    tex8 = _texel_fill(tm, layout, model, avg, weight, albedo)
    files = write_textured_meshes(base, layout, vertices, normals, tex8)
    return {"texture_members": len(member_textures),
            "texture_seen_fraction": float(np.mean(total[tm.chart] > 0)),
            "files": [str(f) for f in files]}


def write_fitted(base, face, model, parts: dict, verts: dict, rendered: dict, camera,
                 mode="albedo", size: int = 1024) -> dict:
    """`write_face` for what `reconstruct.write_outputs` has (batch of one): a PreparedFace,
    the split coefficients, `renderer.face_vertices` and `render_vertices` outputs. A face model
    without a UV layout (BFM) or mode None writes no texture: {"texture": None}."""
    if mode is None:
        return {"texture": None}
    try:
        uv_layout.for_model(model)
    except uv_layout.UVLayoutError as e:
        return {"texture": None, "texture_skipped": str(e)}
    one = {k: np.asarray(verts[k][0]) for k in ("posed", "normals", "albedo", "colour", "screen")}
    return write_face(base, model, one, np.asarray(parts["gamma"][0]), camera, face.image,
                      face.align, face.crop, face.attention, np.asarray(rendered["tri_id"][0]),
                      np.asarray(rendered["depth"][0]), np.asarray(rendered["colour"][0]), mode,
                      size)


def member_bases(images: Sequence[str], person: str, coeff_dirs: dict) -> dict:
    """Where each image's reconstruct outputs live, `{image: folder / stem}`, for aggregate's
    image names: "<person folder>/<stem>" (paper mode) or a bare stem in `person`'s folder."""
    out = {}
    for image in images:
        head, _, rest = image.partition("/")
        if rest and head in coeff_dirs:
            out[image] = pathlib.Path(coeff_dirs[head]) / rest
        elif person in coeff_dirs:
            out[image] = pathlib.Path(coeff_dirs[person]) / image
    return out


def write_aggregate(base, model, verts: dict, bases: dict, size: int = 512) -> dict:
    """`write_person` for what facerecon-aggregate has: the person's `renderer.face_vertices`
    (batch of one) and `member_bases` of the images used. Members without texture files are
    left out; with none, the texture is the aggregate's albedo (`size` texels). A face model
    without a UV layout writes nothing: {"texture_skipped": why}."""
    try:
        uv_layout.for_model(model)
    except uv_layout.UVLayoutError as e:
        return {"texture_skipped": str(e)}
    pairs = [(pathlib.Path(f"{b}_texture.png"), pathlib.Path(f"{b}_texture_weight.png"))
             for b in bases.values()]
    pairs = [(t, w) for t, w in pairs if t.exists() and w.exists()]
    one = {k: np.asarray(verts[k][0]) for k in ("shape", "normals", "albedo")}
    return write_person(base, model, one["shape"], one["normals"], one["albedo"], pairs,
                        blank_size=size)
