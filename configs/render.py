"""Rendering defaults: camera (docs/design.md §4), light mode, renderer back end."""
import ml_collections


def get_config():
    c = ml_collections.ConfigDict()
    c.light = "rgb"                 # "mono" (paper, 9 SH coefficients) or "rgb" (27)
    c.camera = ml_collections.ConfigDict(dict(focal=1015.0, cx=112.0, cy=112.0, width=224,
                                              height=224, distance=10.0))
    c.backend = "scatter"           # visibility: "scatter" (CPU/GPU) or "tiled" (TPU)
    c.soft = False                  # rasterize-then-splat silhouettes
    c.size = 512                    # output picture size (the camera is scaled to it)
    return c
