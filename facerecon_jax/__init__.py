"""facerecon-jax: 3D face reconstruction in JAX/Flax.

Subpackages, bottom to top (a module imports only from its own subpackage and those above it
in this list; tests/test_package.py checks it):

  io           assets, atomic files, config files, export, the command-line frame, progress
  models       face models: the FaceModel arrays, ICT (default), BFM, a test grid, mirror maps
  geometry     coefficients, 3DMM shape and albedo, camera, spherical-harmonics light, metrics,
               the coefficients of a picture flipped left-right
  render       rasterizer (not differentiated), barycentrics / interpolation, splatting,
               the renderer, texture maps, overlays
  photo        detection and landmarks, alignment, skin mask, the face embedding
  fit          the hybrid loss and the compiled fitting solver, the landmark embedding
  aggregation  k-means and the multi-image aggregation modes
  training     R-Net, the data pipeline, generated faces, the train step (its held-out report
               aggregates several images of a person)
  pipeline     the photo-folder jobs behind the command-line tools, the results page
  eval         the evaluation benchmark

The names below are the short path to the public API (imported on first use, so importing the
package stays cheap); the functions `render` and `fit` share their names with subpackages, so
they are reached through their modules:

  from facerecon_jax import load_face_model, CoeffLayout, RenderConfig
  from facerecon_jax.render import renderer
  model = load_face_model("default")
"""
import importlib

__version__ = "0.1.0"

_API = {
    # face models
    "FaceModel": "models.face_model",
    "load_face_model": "models.model_loading",
    "load_bfm": "models.bfm",
    # face formation
    "CoeffLayout": "geometry.coefficients",
    "Camera": "geometry.camera",
    "RenderConfig": "render.renderer",
    # photos and fitting
    "FaceDetector": "photo.detection",
    "LossWeights": "fit.losses",
    "FitConfig": "fit.fitting",
    # several images of a person
    "kmeans": "aggregation.kmeans",
    "aggregate_person": "aggregation.aggregate",
    "read_coefficients": "aggregation.aggregate",
    # scoring
    "micc_rmse": "geometry.metrics",
}
__all__ = sorted(_API)


def __getattr__(name):
    if name in _API:
        value = getattr(importlib.import_module(f"facerecon_jax.{_API[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'facerecon_jax' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_API))
