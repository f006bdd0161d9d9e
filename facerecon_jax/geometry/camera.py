"""Pose and perspective camera (docs/design.md §4).

Rotation from Euler angles (radians) R = Rz Ry Rx; points are posed as S R^T + t. The camera sits
at z = `distance` looking down -z: z_cam = distance - z, u = f X / z_cam + cx, v = f Y / z_cam + cy
in a y-up frame. Image rows run down, so image coordinates are (x_img, y_img) = (u, H - 1 - v),
with pixel centres at integer coordinates (no half-pixel offset).
"""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class Camera:
    focal: float = 1015.0
    cx: float = 112.0
    cy: float = 112.0
    width: int = 224
    height: int = 224
    distance: float = 10.0

    def scaled(self, size: int) -> "Camera":
        """The same field of view at a square image of `size` pixels."""
        s = size / self.width
        return Camera(self.focal * s, self.cx * s, self.cy * s, size, size, self.distance)

    def resampled(self, size: int) -> "Camera":
        """The camera of this camera's square picture resampled to `size` pixels (pixel centres
        map as x' = (x + 0.5) s - 0.5, as image resizing maps them; with the y flip of
        `yup_to_image` the principal point maps the same way): renders with it line up with
        the resized picture, where `scaled` is off by (1 - s) / 2 pixels."""
        s = size / self.width
        return Camera(self.focal * s, (self.cx + 0.5) * s - 0.5, (self.cy + 0.5) * s - 0.5,
                      size, size, self.distance)


def euler_rotation(angles):
    """(..., 3) angles (x, y, z) in radians -> (..., 3, 3) R = Rz @ Ry @ Rx."""
    x, y, z = angles[..., 0], angles[..., 1], angles[..., 2]
    one, zero = jnp.ones_like(x), jnp.zeros_like(x)
    cx, sx, cy, sy, cz, sz = jnp.cos(x), jnp.sin(x), jnp.cos(y), jnp.sin(y), jnp.cos(z), jnp.sin(z)
    rx = jnp.stack([one, zero, zero, zero, cx, -sx, zero, sx, cx], -1).reshape(x.shape + (3, 3))
    ry = jnp.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).reshape(x.shape + (3, 3))
    rz = jnp.stack([cz, -sz, zero, sz, cz, zero, zero, zero, one], -1).reshape(x.shape + (3, 3))
    return rz @ ry @ rx


def pose(points, rotation, translation):
    """S R^T + t for points (..., V, 3), rotation (..., 3, 3), translation (..., 3)."""
    return points @ jnp.swapaxes(rotation, -1, -2) + translation[..., None, :]


def rotate(vectors, rotation):
    """Direction vectors (normals) rotated: n R^T."""
    return vectors @ jnp.swapaxes(rotation, -1, -2)


def project(points, camera: Camera):
    """World points (..., V, 3) -> (..., V, 3) of (u, v, z_cam), u, v in the y-up pixel frame."""
    z_cam = camera.distance - points[..., 2]
    u = camera.focal * points[..., 0] / z_cam + camera.cx
    v = camera.focal * points[..., 1] / z_cam + camera.cy
    return jnp.stack([u, v, z_cam], axis=-1)


def yup_to_image(uv, height: int):
    """(u, v) in the y-up frame -> (x, y) image pixels, y down: y = H - 1 - v."""
    return jnp.stack([uv[..., 0], height - 1 - uv[..., 1]], axis=-1)


def image_to_yup(xy, height: int):
    """(x, y) image pixels, y down -> (u, v) in the y-up frame (the same flip)."""
    return yup_to_image(xy, height)


def unproject(uvz, camera: Camera):
    """Inverse of `project`: (u, v, z_cam) -> world points."""
    z = camera.distance - uvz[..., 2]
    x = (uvz[..., 0] - camera.cx) * uvz[..., 2] / camera.focal
    y = (uvz[..., 1] - camera.cy) * uvz[..., 2] / camera.focal
    return jnp.stack([x, y, z], axis=-1)


def to_screen(points, camera: Camera):
    """World points -> (..., V, 3) of (x_img, y_img, z_cam): what the rasterizer takes."""
    uvz = project(points, camera)
    xy = yup_to_image(uvz[..., :2], camera.height)
    return jnp.concatenate([xy, uvz[..., 2:]], axis=-1)
