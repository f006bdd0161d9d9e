"""Face formation: coefficients to a rendered image (docs/design.md §3-§6).

Deferred, in three stages:
1. vertex stage (differentiable): coefficients -> shape, albedo, normals, SH colours, posed and
   projected vertices, 2D landmarks (`face_vertices`);
2. visibility (`rasterizer.rasterize`, not differentiated): triangle id per pixel;
3. interpolation (differentiable): barycentrics recomputed from the projected vertices, colours,
   depth, normals and masks interpolated; hard compositing, or soft (`splat`) for silhouette
   gradients.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Optional

import jax
import jax.numpy as jnp

from facerecon_jax.geometry import camera as cam
from facerecon_jax.geometry import lighting, morphable
from facerecon_jax.render import interpolate, rasterizer, splat
from facerecon_jax.geometry.coefficients import CoeffLayout
from facerecon_jax.models.face_model import FaceModel


@dataclasses.dataclass(frozen=True)
class RenderConfig:
    camera: cam.Camera = cam.Camera()
    backend: str = "scatter"          # visibility back end: "scatter" (CPU/GPU) or "tiled" (TPU)
    soft: bool = False                # rasterize-then-splat compositing (silhouette gradients)
    sigma: float = 0.5                # splat radius in pixels (soft mode)
    area_weighted_normals: bool = False
    front_only: bool = False          # draw only the model's front-face triangles
    window: int = 3                   # scatter back end: pixels per job side
    chunk: int = 1 << 15              # scatter back end: jobs per while-loop step
    tile: int = 16                    # tiled back end
    tile_capacity: int = 64
    colour_only: bool = False         # interpolate the lit colour only (no albedo, normals,
                                      # depth outputs): what the losses need, ~35% less work


def screen_vertices(model: FaceModel, parts: Dict[str, jnp.ndarray], camera: cam.Camera):
    """(shape (B, V, 3), rotation, posed, screen (B, V, 3)): the geometry of `face_vertices`
    alone, for callers that need where the vertices land and not their colour."""
    shape = morphable.shape(model, parts["id"], parts["exp"])              # (B, V, 3)
    rot = cam.euler_rotation(parts["angles"])
    posed = cam.pose(shape, rot, parts["trans"])
    return shape, rot, posed, cam.to_screen(posed, camera)


def face_vertices(model: FaceModel, parts: Dict[str, jnp.ndarray], camera: cam.Camera,
                  area_weighted_normals: bool = False) -> Dict[str, jnp.ndarray]:
    """Vertex stage for split coefficients (each (B, n)). Everything differentiable."""
    shape, rot, posed, screen = screen_vertices(model, parts, camera)
    albedo = morphable.albedo(model, parts["tex"])
    normals = morphable.vertex_normals(shape, model.triangles, model.vertex_faces,
                                       area_weighted=area_weighted_normals)
    normals_posed = cam.rotate(normals, rot)
    colour = lighting.shade(albedo, normals_posed, parts["gamma"])
    return {"shape": shape, "albedo": albedo, "normals": normals_posed, "posed": posed,
            "rotation": rot, "colour": colour, "screen": screen,
            "landmarks": screen[..., model.landmarks, :2]}


def rasterize(model: FaceModel, screen, config: RenderConfig):
    c = config.camera
    return rasterizer.rasterize(
        screen, model.triangles, height=c.height, width=c.width,
        tri_mask=model.front_mask if config.front_only else None, backend=config.backend,
        window=config.window, chunk=config.chunk, tile=config.tile,
        tile_capacity=config.tile_capacity)


def render_vertices(model: FaceModel, verts: Dict[str, jnp.ndarray], config: RenderConfig,
                    background: Optional[jnp.ndarray] = None) -> Dict[str, jnp.ndarray]:
    """Stages 2-3 for the output of `face_vertices`."""
    frags = rasterize(model, verts["screen"], config)
    out = shade_pixels(model, verts, frags.tri_id, config, background)
    out["n_large"] = frags.n_large
    return out


def shade_pixels(model: FaceModel, verts: Dict[str, jnp.ndarray], tri_id, config: RenderConfig,
                 background: Optional[jnp.ndarray] = None) -> Dict[str, jnp.ndarray]:
    """Stage 3 for a given visibility (tri_id (B, H, W)): interpolation and compositing."""
    screen = verts["screen"]
    pix = interpolate.barycentrics(screen, model.triangles, tri_id)
    b, h, w = tri_id.shape
    if config.colour_only:
        colour = interpolate.interpolate(verts["colour"], pix)
    else:
        attrs = jnp.concatenate([verts["colour"], verts["albedo"], verts["normals"],
                                 screen[..., 2:3]], axis=-1)
        px = interpolate.interpolate(attrs, pix)
        colour, alb, nrm, depth = px[..., 0:3], px[..., 3:6], px[..., 6:9], px[..., 9]
    mask = pix.mask.astype(colour.dtype)
    front = (jnp.asarray(model.front_mask)[jnp.maximum(tri_id, 0)] & pix.mask).astype(colour.dtype)
    if config.soft:
        colour_c, alpha = splat.splat(screen, pix, colour, config.sigma)
    else:
        colour_c, alpha = colour * mask[..., None], mask
    if background is None:
        background = jnp.zeros((b, h, w, 3), colour.dtype)
    background = jnp.broadcast_to(background, (b, h, w, 3))
    image = colour_c + (1.0 - alpha[..., None]) * background
    out = {"image": image, "alpha": alpha, "mask": mask, "front": front, "colour": colour,
           "tri_id": tri_id, "landmarks": verts["landmarks"], "screen": screen}
    if not config.colour_only:
        out.update(albedo=alb, normals=nrm, depth=jnp.where(pix.mask, depth, 0.0))
    return out


def render(model: FaceModel, coeffs, layout: CoeffLayout, config: RenderConfig = RenderConfig(),
           background=None) -> Dict[str, jnp.ndarray]:
    """Render coefficient vectors (B, layout.size) into images (B, H, W, 3).

    Returns a dict: image (composited over `background`), alpha (coverage, soft in soft mode),
    mask (hard coverage), front (hard coverage by the model's front-face triangles), colour (lit,
    unclipped), albedo, normals, depth (z_cam, 0 = none),
    tri_id, landmarks ((B, 68, 2) image pixels, y down), screen ((B, V, 3) projected vertices:
    x, y image pixels, z_cam), n_large.
    """
    parts = layout.split(coeffs)
    verts = face_vertices(model, parts, config.camera, config.area_weighted_normals)
    return render_vertices(model, verts, config, background)


render_jit = jax.jit(render, static_argnames=("layout", "config"))
