"""The coefficients of a picture flipped left-right: the same face's mirror image.

A picture flipped left-right (columns c -> W - 1 - c) shows the scene mirrored through the
camera's plane x = 0, up to the half-pixel between the flipped picture's centre (W - 1) / 2 and
the camera's cx. Its face is the mirror image of the picture's face, another face of the model
(`models.mirror.coefficient_mirror` maps the shape and texture coefficients); the pose, the
translation and the light follow from the reflection P = diag(-1, 1, 1).
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from facerecon_jax.geometry import lighting
from facerecon_jax.models import mirror


def mirror_coefficients(x, layout, maps: mirror.CoefficientMirror, camera):
    """Coefficient vectors x (..., layout.size) of faces seen by `camera` -> those of the same
    scenes mirrored left-right, i.e. of the pictures flipped left-right (columns c -> W - 1 - c):
    identity, expression and texture through `maps`, the rotation R -> P R P (P = diag(-1, 1,
    1): pitch kept, yaw and roll negated), the translation's x negated and shifted by the
    (W - 1 - 2 cx) pixels between the flipped picture's centre and the camera's (at the head's
    depth), the light's x-odd SH bands negated (per channel)."""
    p = layout.split(jnp.asarray(x))
    angles = p["angles"] * jnp.array([1.0, -1.0, -1.0])
    depth = camera.distance - p["trans"][..., 2]
    shift = (camera.width - 1 - 2 * camera.cx) * depth / camera.focal
    trans = jnp.stack([-p["trans"][..., 0] + shift, p["trans"][..., 1], p["trans"][..., 2]], -1)
    sign = np.ones(9, np.float32)
    sign[list(lighting.X_ODD_BANDS)] = -1.0
    gamma = p["gamma"] * jnp.asarray(np.tile(sign, p["gamma"].shape[-1] // 9))
    return layout.join({"id": maps.id_offset + p["id"] @ maps.id_map,
                        "exp": p["exp"] @ maps.exp_map,
                        "tex": maps.tex_offset + p["tex"] @ maps.tex_map,
                        "angles": angles, "gamma": gamma, "trans": trans})
