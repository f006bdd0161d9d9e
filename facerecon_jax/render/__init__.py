"""The renderer, split as in diffren: visibility that is not differentiated, differentiable
barycentrics and interpolation, soft compositing; texture maps and overlays.

  rasterizer     visibility (triangle id per pixel), not differentiated
  interpolate    differentiable barycentrics and attribute interpolation
  splat          soft (rasterize-then-splat) compositing with silhouette gradients
  renderer       the whole face formation: coefficients to image
  texture        texture maps: baking a photo, mirror / albedo fill, averages, textured renders
  visualize      overlays and landmark drawings

Imports from: io, models, geometry.
"""
